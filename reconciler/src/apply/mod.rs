//! Carrying out a plan against Hetzner and Tailscale: bounded concurrency, deletions last,
//! ownership re-checked before every destructive call, the deletion budget re-enforced, and an
//! exact account of every action.
//!
//! Start at [`apply`]. Each action's steps live in [`steps`]; [`report`] holds the account;
//! [`keys`] mints, revokes and sweeps the Tailscale auth keys.

pub mod keys;
pub mod report;
mod steps;

pub use report::{ActionReport, ApplyReport, Outcome};

use crate::cloud::Compute;
use crate::cloud::tailscale::Tailnet;
use crate::plan::{Action, Plan, safety};
use futures_util::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tether_schema::Fleet;
use tokio::sync::watch;

/// How to execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Actions in flight at once.
    pub concurrency: usize,
    /// How long a create waits for the new server's device to come online.
    pub device_timeout: Duration,
    /// Interval between device checks while waiting.
    pub device_poll: Duration,
    /// Lifetime of minted auth keys (at most one hour).
    pub key_expiry: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 8,
            device_timeout: Duration::from_secs(300),
            device_poll: Duration::from_secs(2),
            key_expiry: Duration::from_secs(3600),
        }
    }
}

/// Why a plan was not executed at all.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The plan breaks the safety policy.
    #[error("the plan is refused by the fleet's safety policy: {}", reasons.join("; "))]
    Refused {
        /// Every broken rule.
        reasons: Vec<String>,
    },
}

/// Executes `plan` for `fleet`.
///
/// Non-destructive actions (create, replace, resize, relabel, power) run first, up to
/// `options.concurrency` at a time; deletions of servers and devices run after all of them.
/// A failure of one agent does not stop the others. Once `stop` turns `true`, actions not yet
/// started are skipped; those in flight finish.
///
/// # Guarantees
/// - A refused plan executes nothing.
/// - At most [`safety::deletion_budget`] servers are deleted, counted as deletions happen.
/// - A server is deleted only if, right before the call, it still carries this fleet's and the
///   expected agent's labels.
/// - Every minted auth key is revoked before the action ends, used or not; a key whose
///   revocation fails is revoked by the next pass's [`keys::sweep`].
///
/// # Errors
/// [`ApplyError::Refused`] when the plan carries a refusal.
pub async fn apply<C: Compute, T: Tailnet>(
    plan: &Plan,
    fleet: &Fleet,
    compute: &C,
    tailnet: &T,
    options: &Options,
    stop: watch::Receiver<bool>,
) -> Result<ApplyReport, ApplyError> {
    if let Some(refusal) = &plan.refusal {
        return Err(ApplyError::Refused {
            reasons: refusal.reasons.clone(),
        });
    }
    let ctx = steps::Ctx {
        fleet,
        compute,
        tailnet,
        options,
        deletions: AtomicUsize::new(0),
        budget: safety::deletion_budget(fleet, plan.managed_servers),
    };
    let (late, early): (Vec<&Action>, Vec<&Action>) = plan
        .actions
        .iter()
        .partition(|a| matches!(a, Action::Delete { .. } | Action::DeleteDevice { .. }));
    let mut reports = Vec::with_capacity(plan.actions.len());
    for phase in [early, late] {
        let results: Vec<ActionReport> = futures_util::stream::iter(phase)
            .map(|action| {
                let stop = stop.clone();
                let ctx = &ctx;
                async move {
                    if *stop.borrow() {
                        return ActionReport::skipped(
                            action,
                            "tether is shutting down; not started",
                        );
                    }
                    ctx.run(action).await
                }
            })
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await;
        reports.extend(results);
    }
    reports.sort_by(|a, b| (a.order, &a.agent).cmp(&(b.order, &b.agent)));
    tracing::info!(
        deleted = ctx.deletions.load(Ordering::SeqCst),
        "apply finished"
    );
    Ok(ApplyReport {
        plan_hash: plan.plan_hash.clone(),
        revision: plan.revision.clone(),
        actions: reports,
    })
}
