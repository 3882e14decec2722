//! `tether audit verify`: proves the status branch, or names each commit it cannot prove.

use super::super::{CliError, Format, Outcome};
use crate::audit::signers::AllowedSigners;
use crate::audit::{self, log, verify};
use std::path::PathBuf;

/// Check every status commit: signed by a key the allowed signers allow for its committer,
/// trailers well formed, each following the one before (one parent, a fleet commit that only
/// moves forward), each provider action id named once. Exits 1 on any finding, naming the
/// commit and its author, so CI or a cron can run it.
#[derive(Debug, clap::Args)]
pub(super) struct VerifyArgs {
    /// The fleet repository.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// The status branch.
    #[arg(long, default_value = audit::STATUS_BRANCH)]
    status_branch: String,
    /// Fetch the status branch from this remote (a name or URL) and verify what it holds;
    /// without it, the local branch is verified.
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
    /// The allowed-signers file (ssh-keygen's format); default: the repository's
    /// `gpg.ssh.allowedSignersFile`, as `git verify-commit` reads it.
    #[arg(long, value_name = "FILE")]
    allowed_signers: Option<PathBuf>,
    /// Only commits made at or after this date (`2026-11-01` or RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub(super) format: Format,
}

/// Runs `tether audit verify`.
pub(super) fn cmd_verify(a: &VerifyArgs) -> Result<Outcome, CliError> {
    let since = a.since.as_deref().map(super::parse_date).transpose()?;
    let repo = git2::Repository::open(&a.repo).map_err(|e| {
        CliError::failed(
            format!("cannot open `{}`: {}", a.repo.display(), e.message()),
            "pass --repo with the fleet repository",
        )
    })?;
    let signers = allowed_signers(a, &repo)?;
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
    let result = verify::verify(&repo, &status_ref, since, &signers).map_err(|e| {
        CliError::failed(
            format!("cannot read `{status_ref}`: {}", e.message()),
            "pass --status-branch, or --remote to fetch it",
        )
    })?;
    if a.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        );
    } else {
        for finding in &result.findings {
            println!("{finding}");
        }
        println!(
            "{} status commits checked: {} signed by an allowed key, {} provider actions accounted for, {} findings",
            result.checked,
            result.signed,
            result.actions,
            result.findings.len()
        );
    }
    Ok(if result.findings.is_empty() {
        Outcome::Success
    } else {
        Outcome::Problems
    })
}

/// The allowed signers from --allowed-signers, else from git's configuration.
fn allowed_signers(a: &VerifyArgs, repo: &git2::Repository) -> Result<AllowedSigners, CliError> {
    let path = a.allowed_signers.clone().or_else(|| {
        repo.config()
            .ok()
            .and_then(|c| c.get_path("gpg.ssh.allowedSignersFile").ok())
    });
    let Some(path) = path else {
        return Err(CliError::usage(
            "no allowed signers: nothing to verify the signatures against",
            "pass --allowed-signers FILE, or set git's gpg.ssh.allowedSignersFile",
        ));
    };
    AllowedSigners::read(&path).map_err(|e| {
        CliError::failed(
            e.to_string(),
            "write one line per key: `tether@FLEET ssh-ed25519 AAAA…` (see docs/operations.md, For auditors)",
        )
    })
}
