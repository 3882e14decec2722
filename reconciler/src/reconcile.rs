//! One reconcile pass, as `tether apply` and the daemon run it: load the fleet, read the
//! inventory, plan, check the plan, apply, read the inventory again, and write the status
//! commit. Every step's failure is typed; a fleet that fails to load stops the pass before
//! anything is read or changed.

use crate::apply::{self, ApplyError, ApplyReport, Options};
use crate::audit::{commit, status};
use crate::cloud::Compute;
use crate::cloud::tailscale::Tailnet;
use crate::observe::{ObserveError, observe};
use crate::plan::{self, Context, Plan};
use crate::source::Snapshot;
use tether_schema::{Fleet, LoadError, load_fleet};
use tokio::sync::watch;

/// Where status commits go: the status branch of the fleet repository (or its mirror).
pub type StatusTarget<'a> = commit::Target<'a>;

/// What a pass needs besides the clients.
#[derive(Debug, Clone)]
pub struct PassOptions<'a> {
    /// Only apply if a fresh plan has this hash.
    pub expect_plan_hash: Option<&'a str>,
    /// Override the shrink circuit breaker.
    pub allow_shrink: bool,
    /// Executor options.
    pub apply: Options,
    /// Where to write status, if anywhere.
    pub status: Option<StatusTarget<'a>>,
    /// Run id for trailers and logs.
    pub run: &'a str,
    /// RFC 3339 time of the run.
    pub now: &'a str,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The fleet is invalid: nothing was read or changed.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// The inventory could not be read: nothing was changed.
    #[error("{0}")]
    Observe(#[from] ObserveError),
    /// The approved plan is not the plan a fresh look produces.
    #[error(
        "the plan changed since it was approved: expected {expected}, now {actual}; nothing was changed. Review the new plan (`tether plan`) and approve it"
    )]
    PlanChanged {
        /// The approved hash.
        expected: String,
        /// The fresh plan's hash.
        actual: String,
    },
    /// The plan breaks the safety policy: nothing was changed.
    #[error("{0}")]
    Refused(#[from] ApplyError),
    /// The status commit failed (the apply itself happened).
    #[error("{0}")]
    Status(#[from] commit::CommitError),
}

/// The result of a pass that ran.
#[derive(Debug, Clone)]
pub struct PassOutcome {
    /// The fleet.
    pub fleet: Fleet,
    /// The plan executed.
    pub plan: Plan,
    /// The account of the execution.
    pub report: ApplyReport,
    /// The status commit, when one was written.
    pub status_commit: Option<String>,
}

/// Loads the fleet, reads the inventory and plans, without changing anything.
///
/// # Errors
/// [`PassError::Load`] or [`PassError::Observe`].
pub async fn plan_only<C: Compute, T: Tailnet>(
    snapshot: &Snapshot,
    compute: &C,
    tailnet: &T,
    allow_shrink: bool,
    previous_agents: Option<usize>,
) -> Result<(Fleet, Plan), PassError> {
    let fleet = load_fleet(&snapshot.files)?;
    let observed = observe(compute, tailnet).await?;
    let ctx = Context {
        revision: snapshot.commit.clone(),
        previous_agents,
        allow_shrink,
    };
    let plan = plan::plan(&fleet, &observed, &ctx);
    Ok((fleet, plan))
}

/// A full pass: plan, check, apply, and record.
///
/// # Errors
/// See [`PassError`]. A refused or changed plan changes nothing; a refusal is still recorded
/// on the status branch the first time it is seen.
pub async fn run<C: Compute, T: Tailnet>(
    snapshot: &Snapshot,
    compute: &C,
    tailnet: &T,
    options: &PassOptions<'_>,
    stop: watch::Receiver<bool>,
) -> Result<PassOutcome, PassError> {
    let previous = options
        .status
        .as_ref()
        .and_then(|s| status::previous(s.repo, s.branch));
    let (fleet, plan) = plan_only(
        snapshot,
        compute,
        tailnet,
        options.allow_shrink,
        previous.as_ref().map(|p| p.agents),
    )
    .await?;
    tracing::info!(fleet = %fleet.settings.name, commit = ?snapshot.commit, plan_hash = %plan.plan_hash, actions = plan.actions.len(), "planned");
    if let Some(expected) = options.expect_plan_hash
        && expected != plan.plan_hash
    {
        return Err(PassError::PlanChanged {
            expected: expected.to_owned(),
            actual: plan.plan_hash.clone(),
        });
    }
    apply::keys::sweep_logged(tailnet, &fleet.settings.name).await;
    let report = match apply::apply(&plan, &fleet, compute, tailnet, &options.apply, stop).await {
        Ok(report) => report,
        Err(refused) => {
            let first_time = previous
                .as_ref()
                .is_none_or(|p| p.plan_hash != plan.plan_hash);
            if let (Some(target), true) = (&options.status, first_time) {
                let report = ApplyReport {
                    plan_hash: plan.plan_hash.clone(),
                    revision: plan.revision.clone(),
                    actions: Vec::new(),
                };
                let observed = observe(compute, tailnet).await?;
                let files = status::files(&fleet, &observed, &report, options.now, options.run);
                let message = status::refusal_message(&plan, options.run);
                commit::write(target, &files, &message)?;
            }
            return Err(refused.into());
        }
    };
    let status_commit = match &options.status {
        Some(target) if !report.actions.is_empty() => {
            let observed = observe(compute, tailnet).await?;
            let files = status::files(&fleet, &observed, &report, options.now, options.run);
            commit::write(
                target,
                &files,
                &status::commit_message(&report, options.run),
            )?
            .map(|oid| oid.to_string())
        }
        _ => None,
    };
    Ok(PassOutcome {
        fleet,
        plan,
        report,
        status_commit,
    })
}
