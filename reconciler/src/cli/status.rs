//! `tether status`: the fleet in one table, read from the status branch (fetched first) and the
//! spec it reflects. Read-only and offline: nothing here asks a cloud API.

use super::style::{Style, Tone};
use super::{CliError, Format, Outcome};
use crate::audit::overview::{self, Filter};
use crate::audit::{self, log};
use git2::Repository;
use std::path::PathBuf;

/// Show every agent's phase, server and device as the status branch last recorded them.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The fleet repository.
    #[arg(long = "git", value_name = "REPO", default_value = ".")]
    repo: PathBuf,
    /// The status branch.
    #[arg(long, default_value = audit::STATUS_BRANCH)]
    status_branch: String,
    /// Fetch the status branch from this remote (a name or URL) first; default: `origin` when
    /// the repository has it. `--remote ""` reads only what is local.
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
    /// Only this agent.
    #[arg(long)]
    agent: Option<String>,
    /// Only agents whose spec has this `customer` label.
    #[arg(long, value_name = "ID")]
    customer: Option<String>,
    /// Only agents in this phase: pending, provisioning, ready, degraded, deleting, failed,
    /// orphaned or quarantined.
    #[arg(long)]
    phase: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

impl StatusArgs {
    /// Whether output (and so an error) is JSON.
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }
}

/// Runs `tether status`.
///
/// # Errors
/// An unknown `--phase` (usage), or a repository or status branch that cannot be read.
pub fn cmd_status(args: &StatusArgs) -> Result<Outcome, CliError> {
    let phase = args
        .phase
        .as_deref()
        .map(|p| {
            overview::phase_named(p).ok_or_else(|| {
                CliError::usage(
                    format!("`{p}` is not a phase"),
                    "use one of pending, provisioning, ready, degraded, deleting, failed, orphaned, quarantined",
                )
            })
        })
        .transpose()?;
    let filter = Filter {
        agent: args.agent.clone(),
        customer: args.customer.clone(),
        phase,
    };
    let unreadable = |e: git2::Error| {
        CliError::failed(
            format!(
                "cannot read the status branch `{}` in {}: {}",
                args.status_branch,
                args.repo.display(),
                e.message()
            ),
            "pass --git with the fleet repository tether applies",
        )
    };
    let repo = Repository::open(&args.repo).map_err(unreadable)?;
    let Some(refname) = newest_status_ref(args, &repo) else {
        return Err(CliError::failed(
            format!(
                "the status branch `{}` is neither in {} nor on its remote",
                args.status_branch,
                args.repo.display()
            ),
            "has tether applied this fleet yet? pass --remote with the remote it pushes to, or --status-branch",
        ));
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (view, warning) =
        audit::view::read_overview(&args.repo, &refname, &filter, now).map_err(unreadable)?;
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    if args.json() {
        println!(
            "{}",
            serde_json::to_string_pretty(&view).unwrap_or_default()
        );
    } else {
        let style = super::style::current();
        print!("{}", view.render(&|p, t| paint(style, p, t)));
    }
    Ok(Outcome::Success)
}

fn paint(style: Style, phase: &str, text: &str) -> String {
    match phase {
        "Ready" => style.out(Tone::Good, text),
        "Failed" => style.out(Tone::Bad, text),
        "Degraded" | "Orphaned" | "Quarantined" => style.out(Tone::Warn, text),
        _ => style.out(Tone::Faint, text),
    }
}

/// The local status branch and the remote's (fetched; `origin` unless `--remote` says
/// otherwise): whichever tip was committed last. A failed fetch is a warning: the local
/// branch is then shown.
fn newest_status_ref(args: &StatusArgs, repo: &Repository) -> Option<String> {
    let local = format!("refs/heads/{}", args.status_branch);
    let remote = args
        .remote
        .clone()
        .or_else(|| repo.find_remote("origin").ok().map(|_| "origin".to_owned()));
    let fetched = match remote.as_deref().filter(|r| !r.is_empty()) {
        Some(remote) => log::fetch_status(&args.repo, remote, &args.status_branch)
            .unwrap_or_else(|e| {
                eprintln!(
                    "warning: cannot fetch the status branch `{}` from `{remote}` ({}); showing the local one",
                    args.status_branch,
                    e.message()
                );
                None
            }),
        None => None,
    };
    let time = |name: &str| {
        repo.find_reference(name)
            .and_then(|r| r.peel_to_commit())
            .map(|c| c.time().seconds())
            .ok()
    };
    [Some(local), fetched]
        .into_iter()
        .flatten()
        .filter_map(|r| time(&r).map(|t| (t, r)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, r)| r)
}
