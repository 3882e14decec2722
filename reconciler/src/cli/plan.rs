//! `tether plan`: what applying the fleet would change, for people, PR comments and machines.

use super::common::{self, SourceArgs};
use super::error::Failure;
use super::github::{self, Reporter};
use super::{CliError, Outcome};
use crate::audit::{self, ledger::Ledger};
use crate::forge::{PrNumber, StatusState};
use crate::plan::Plan;
use crate::plan::render::{self, markdown, text};
use crate::reconcile::{self, PassError};
use crate::source::Snapshot;

/// Show what applying the fleet would change, without changing anything.
///
/// Exit status: 0 no changes, 1 error, 2 changes (with --detailed-exitcode), 3 refused by the
/// safety policy, 4 an API failure that may pass; see docs/operations.md.
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
    /// Post the plan as tether's one comment on this pull request (edited on every later
    /// run) and set the `tether/<fleet>` status on its head commit. Needs GITHUB_TOKEN and
    /// GITHUB_REPOSITORY.
    #[arg(long, value_name = "NUMBER")]
    github_pr: Option<u64>,
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
/// The fleet, the credentials or the inventory cannot be read, or GitHub refused a report.
pub fn cmd_plan(args: &PlanArgs) -> Result<Outcome, CliError> {
    common::init_logging(common::LogFormat::Text, "warn");
    let snapshot = args.source.snapshot()?;
    let rt = common::runtime()?;
    let pr = args.github_pr.map(PrNumber);
    let reporter = pr
        .map(|pr| Reporter::for_pull_request(&rt, &snapshot, pr))
        .transpose()?;
    if let Some(r) = &reporter {
        r.status(StatusState::Pending, "tether is planning this change")?;
    }
    let result = compute_plan(args, &snapshot, &rt);
    if let (Some(r), Some(pr)) = (&reporter, pr) {
        report(r, pr, &snapshot, &result)?;
    }
    let plan = result?;
    match args.format {
        PlanFormat::Text => print!(
            "{}",
            text::render(&plan, super::style::current().enabled_for_stdout())
        ),
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
        Outcome::Refused
    } else if args.detailed_exitcode && !plan.is_empty() {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}

fn compute_plan(
    args: &PlanArgs,
    snapshot: &Snapshot,
    rt: &tokio::runtime::Runtime,
) -> Result<Plan, Failure> {
    let (compute, tailnet) = common::clients().map_err(Failure::Cli)?;
    let ledger = match args.source.git.as_deref() {
        Some(repo) => Ledger::read(repo, &args.status_branch)
            .map_err(|e| Failure::Pass(PassError::Ledger(e)))?,
        None => Ledger::default(),
    };
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let ctx = reconcile::context(snapshot, &ledger, args.allow_shrink, &now);
    let result = rt.block_on(reconcile::plan_only(snapshot, &compute, &tailnet, &ctx));
    result.map(|(_, _, plan)| plan).map_err(Failure::Pass)
}

/// The plan comment and the verdict on the pull request's head.
fn report(
    reporter: &Reporter,
    pr: PrNumber,
    snapshot: &Snapshot,
    result: &Result<Plan, Failure>,
) -> Result<(), CliError> {
    match result {
        Ok(plan) => {
            reporter.comment(pr, &markdown::render(plan, markdown::GITHUB_COMMENT_LIMIT))?;
            match &plan.refusal {
                None => reporter.status(StatusState::Success, &render::summary_line(plan)),
                Some(refusal) => reporter.status(
                    StatusState::Failure,
                    &format!(
                        "refused: {}",
                        refusal.reasons.first().map_or("", String::as_str)
                    ),
                ),
            }
        }
        Err(Failure::Pass(PassError::Load(e))) => {
            reporter.comment(pr, &github::invalid_fleet_comment(e, snapshot))?;
            reporter.status(StatusState::Failure, &format!("{e}; run `tether validate`"))
        }
        Err(_) => reporter.status(
            StatusState::Error,
            "tether could not plan (an API or credentials failed); see the run log",
        ),
    }
}

impl PlanArgs {
    /// Whether output (and so an error) is JSON.
    pub fn json(&self) -> bool {
        self.format == PlanFormat::Json
    }
}
