//! `tether audit report`: a period's activity as CSV or JSON, for a compliance review.

use super::super::{CliError, Outcome};
use crate::audit::{self, log, report};
use std::path::PathBuf;

/// Every creation, deletion, quarantine, restore, resize, runtime rollout, power and label
/// change, and refused plan the status branch records in a period: one row each, with the
/// actor (the spec change's author, its reviewer and billing event), the spec commit, the plan
/// hash, the provider ids (Hetzner server and actions, Tailscale devices) and the time.
#[derive(Debug, clap::Args)]
pub(super) struct ReportArgs {
    /// The fleet repository.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// The fleet branch.
    #[arg(long, default_value = "main")]
    branch: String,
    /// The status branch.
    #[arg(long, default_value = audit::STATUS_BRANCH)]
    status_branch: String,
    /// Fetch the status branch from this remote (a name or URL) and report what it holds;
    /// without it, the local branch is read.
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
    /// From this date on (`2026-11-01` or RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Up to (not including) this date.
    #[arg(long)]
    until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub(super) format: ReportFormat,
}

/// How `tether audit report` writes its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ReportFormat {
    /// RFC 4180 CSV with a header line.
    Csv,
    /// One JSON array.
    Json,
}

/// Runs `tether audit report`.
pub(super) fn cmd_report(a: &ReportArgs) -> Result<Outcome, CliError> {
    let since = a.since.as_deref().map(super::parse_date).transpose()?;
    let until = a.until.as_deref().map(super::parse_date).transpose()?;
    let status_ref = match a.remote.as_deref() {
        Some(remote) => log::fetch_status(&a.repo, remote, &a.status_branch)
            .map_err(|e| {
                CliError::transient(
                    format!(
                        "cannot fetch `{}` from `{remote}`: {}",
                        a.status_branch,
                        e.message()
                    ),
                    "check the remote's address and credentials",
                )
            })?
            .ok_or_else(|| {
                CliError::failed(
                    format!("`{remote}` has no branch `{}`", a.status_branch),
                    "has tether applied this fleet yet?",
                )
            })?,
        None => format!("refs/heads/{}", a.status_branch),
    };
    let rows = report::rows(&a.repo, &a.branch, &status_ref, since, until).map_err(|e| {
        CliError::failed(
            e.to_string(),
            "pass --repo with the fleet repository, --branch with its fleet branch, and --remote when the status branch is only on the remote",
        )
    })?;
    match a.format {
        ReportFormat::Csv => print!("{}", report::csv(&rows)),
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        ),
    }
    Ok(Outcome::Success)
}
