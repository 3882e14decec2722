//! `tether plan`: what applying the fleet would change, for people, PR comments and machines.

use super::common::{self, SourceArgs};
use super::{CliError, Outcome};
use crate::audit::{self, status};
use crate::plan::render::{markdown, text};
use crate::reconcile::{self, PassError};
use std::io::IsTerminal;

/// Show what applying the fleet would change, without changing anything.
///
/// Exit status: 0 no changes, 1 error or refused plan, 2 changes (with --detailed-exitcode).
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: PlanFormat,
    /// Exit 2 when the plan has changes.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Accept a shrink of the fleet beyond the deletion budget (the circuit breaker).
    #[arg(long)]
    allow_shrink: bool,
    /// The status branch holding the last applied revision (read with --git).
    #[arg(long, default_value = audit::STATUS_BRANCH)]
    status_branch: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PlanFormat {
    Text,
    Markdown,
    Json,
}

/// Runs `tether plan`.
///
/// # Errors
/// The fleet, the credentials or the inventory cannot be read.
pub fn cmd_plan(args: &PlanArgs) -> Result<Outcome, CliError> {
    common::init_logging(common::LogFormat::Text, "warn");
    let snapshot = args.source.snapshot()?;
    let (compute, tailnet) = (common::hetzner()?, common::tailscale()?);
    let previous = args
        .source
        .git
        .as_deref()
        .and_then(|repo| status::previous(repo, &args.status_branch))
        .map(|p| p.agents);
    let result = common::runtime()?.block_on(reconcile::plan_only(
        &snapshot,
        &compute,
        &tailnet,
        args.allow_shrink,
        previous,
    ));
    let (_, plan) = result.map_err(pass_error)?;
    match args.format {
        PlanFormat::Text => print!("{}", text::render(&plan, std::io::stdout().is_terminal())),
        PlanFormat::Markdown => print!(
            "{}",
            markdown::render(&plan, markdown::GITHUB_COMMENT_LIMIT)
        ),
        PlanFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plan).unwrap_or_default()
        ),
    }
    Ok(if !plan.accepted() {
        Outcome::Problems
    } else if args.detailed_exitcode && !plan.is_empty() {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}

/// A failed pass as a user-facing error.
pub fn pass_error(e: PassError) -> CliError {
    let hint = match &e {
        PassError::Load(_) => {
            "run `tether validate` for every problem with its location; nothing was read or changed"
        }
        PassError::Observe(_) => "check the API endpoints and credentials; nothing was changed",
        PassError::PlanChanged { .. } => "re-run `tether plan`, review it, and apply the new hash",
        PassError::Refused(_) => "see `tether plan` for the refused actions and what to do",
        PassError::Status(_) => {
            "the changes were applied; the status branch can be written on the next run"
        }
    };
    CliError::failed(e.to_string(), hint)
}
