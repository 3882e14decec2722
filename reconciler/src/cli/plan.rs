//! `tether plan`: what applying the fleet would change, for people, PR comments and machines.

use super::common::{self, SourceArgs};
use super::error::Failure;
use super::github::{self, Reporter};
use super::prhead;
use super::{CliError, Outcome};
use crate::audit::{self, commit::Identity};
use crate::cloud::hetzner::ratelimit::Observed;
use crate::cloud::retry::TokioClock;
use crate::forge::{PrNumber, StatusState};
use crate::plan::Plan;
use crate::plan::offer::NotOffered;
use crate::plan::render::{self, markdown, text};
use crate::reconcile::{self, PassError, PassOptions, StatusTarget};
use crate::source::Snapshot;
use crate::source::fleets::Loaded;

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
    /// Fetch the status branch from this remote (name or URL) of the --git repository first,
    /// as `tether apply --push-status` does, so the plan sees what the last apply recorded.
    #[arg(long, value_name = "REMOTE", requires = "git")]
    status_remote: Option<String>,
    /// Post the plan as tether's one comment on this pull request (edited on every later
    /// run) and set the `tether/<fleet>` status on its head commit. Needs GITHUB_TOKEN and
    /// GITHUB_REPOSITORY.
    #[arg(long, value_name = "NUMBER")]
    github_pr: Option<u64>,
    /// Also save the plan (its JSON form: hash, fleet, revision, actions; never a secret) to
    /// FILE, for `tether apply FILE`, which applies it only if nothing changed meanwhile.
    #[arg(long, value_name = "FILE")]
    out: Option<std::path::PathBuf>,
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
    if let (Some(r), Some(pr)) = (&reporter, pr) {
        prhead::ensure_head(&args.source, &snapshot, pr, r.sha())?;
        r.status(StatusState::Pending, "tether is planning this change")?;
    }
    let result = compute_plan(args, &snapshot, &rt);
    if let (Some(r), Some(pr)) = (&reporter, pr) {
        let plan = result.as_ref().map(|(plan, _)| plan);
        report(r, pr, &snapshot, plan)?;
    }
    let (plan, bucket) = result?;
    if let Some(path) = &args.out {
        save(&plan, path)?;
    }
    match args.format {
        PlanFormat::Text => println!(
            "{}{}",
            text::render(&plan, super::style::current().enabled_for_stdout()),
            render::budget::line(plan.summary.api_calls, bucket)
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

/// Writes `plan`'s JSON form to `path` for `tether apply FILE`.
fn save(plan: &Plan, path: &std::path::Path) -> Result<(), CliError> {
    let json = serde_json::to_string_pretty(plan).unwrap_or_default();
    std::fs::write(path, format!("{json}\n")).map_err(|e| {
        CliError::failed(
            format!("cannot save the plan to {}: {e}", path.display()),
            "check that the folder exists and is writable",
        )
    })
}

fn compute_plan(
    args: &PlanArgs,
    snapshot: &Snapshot,
    rt: &tokio::runtime::Runtime,
) -> Result<(Plan, Observed), Failure> {
    let (compute, tailnet) = common::clients_for(snapshot).map_err(Failure::Cli)?;
    let identity = Identity::default();
    let options = PassOptions {
        allow_shrink: args.allow_shrink,
        status: args.source.git.as_deref().map(|repo| StatusTarget {
            repo,
            remote: args.status_remote.as_deref(),
            branch: &args.status_branch,
            source_branch: "",
            identity: &identity,
        }),
        ..PassOptions::new("plan")
    };
    let loaded = Loaded::from_snapshot(snapshot);
    let result = rt.block_on(reconcile::plan_only(
        loaded,
        &compute,
        &tailnet,
        &TokioClock,
        &options,
    ));
    result
        .map(|(_, _, plan)| (plan, compute.rate_limit()))
        .map_err(Failure::Pass)
}

/// The plan comment and the verdict on the pull request's head.
///
/// # Guarantees
/// The `tether/<fleet>` status never stays `pending`: when the comment cannot be posted the
/// status still ends, as `error` with the reason; when the verdict's reason is refused by the
/// secret guard, a generic description is sent instead ([`Reporter::status`]).
fn report(
    reporter: &Reporter,
    pr: PrNumber,
    snapshot: &Snapshot,
    result: Result<&Plan, &Failure>,
) -> Result<(), CliError> {
    let (comment, state, description) = verdict(snapshot, result);
    let commented = comment.map_or(Ok(()), |body| reporter.comment(pr, &body));
    let status = match &commented {
        Ok(()) => reporter.status(state, &description),
        Err(e) => reporter.status(
            StatusState::Error,
            &format!("the plan comment could not be posted: {}", e.message),
        ),
    };
    commented.and(status)
}

/// The comment to post (if any), and the status that ends the check.
fn verdict(
    snapshot: &Snapshot,
    result: Result<&Plan, &Failure>,
) -> (Option<String>, StatusState, String) {
    match result {
        Ok(plan) => {
            let comment = Some(markdown::render(plan, markdown::GITHUB_COMMENT_LIMIT));
            match &plan.refusal {
                None => (comment, StatusState::Success, render::summary_line(plan)),
                Some(refusal) => (
                    comment,
                    StatusState::Failure,
                    format!(
                        "refused: {}",
                        refusal.reasons.first().map_or("", String::as_str)
                    ),
                ),
            }
        }
        Err(Failure::Pass(PassError::Load(e))) => (
            Some(github::invalid_fleet_comment(e, snapshot)),
            StatusState::Failure,
            format!("{e}; run `tether validate`"),
        ),
        Err(Failure::Pass(PassError::NotOffered(e))) => (
            Some(not_offered_comment(e)),
            StatusState::Failure,
            e.0.first().map_or_else(String::new, ToString::to_string),
        ),
        Err(Failure::Pass(e)) => (
            None,
            StatusState::Error,
            format!("tether could not plan: {e}"),
        ),
        Err(Failure::Cli(e)) => (
            None,
            StatusState::Error,
            format!("tether could not plan: {}", e.message),
        ),
    }
}

/// The comment for a plan that asks for what Hetzner does not offer.
fn not_offered_comment(e: &NotOffered) -> String {
    let problems: String = e.0.iter().map(|p| format!("- {p}\n")).collect();
    format!(
        "{}\n### tether plan: 🛑 Hetzner does not offer what the fleet asks for\n\nNothing can be applied until every field names what Hetzner offers now:\n\n{problems}",
        crate::plan::render::markdown::MARKER
    )
}

impl PlanArgs {
    /// Whether output (and so an error) is JSON.
    pub fn json(&self) -> bool {
        self.format == PlanFormat::Json
    }
}
