//! Carrying out a plan against Hetzner and Tailscale: bounded concurrency, deletions last,
//! ownership re-checked before every destructive call, the deletion budget re-enforced, and an
//! exact account of every action.
//!
//! Start at [`apply`]. Each action's steps live in [`steps`]; [`report`] holds the account;
//! [`keys`] mints, revokes and sweeps the Tailscale auth keys; [`local_lock`] keeps two
//! folder-mode applies of one fleet from running at once. The pass is pipelined: `gate`
//! bounds the actions making requests (not those waiting), the Hetzner client's shared poller waits
//! for every action of the pass at once, and `enrolment` waits for every enrolment at once.

mod devices;
mod enrolment;
pub mod error;
mod gate;
mod heal;
pub mod keys;
pub mod local_lock;
mod quarantine;
pub mod report;
pub mod runtime;
mod steps;

pub use error::{Kind, StepError};
pub use report::{ActionReport, ApplyReport, Outcome};

use crate::cloud::Compute;
use crate::cloud::retry::SharedClock;
use crate::cloud::tailscale::Tailnet;
#[cfg(doc)]
use crate::plan::safety;
use crate::plan::{Action, Plan};
use futures_util::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tether_schema::Fleet;
use tokio::sync::watch;

/// How to execute.
#[derive(Debug, Clone)]
pub struct Options {
    /// Actions making requests at once (each makes one at a time, to Hetzner or Tailscale).
    /// Waiting for Hetzner actions and enrolments takes no slot: every action of a pass may be
    /// waiting at the same time.
    pub concurrency: usize,
    /// How long a create waits for the new server's device to come online.
    pub device_timeout: Duration,
    /// Interval between device checks while waiting.
    pub device_poll: Duration,
    /// Lifetime of minted auth keys (at most one hour).
    pub key_expiry: Duration,
    /// Where the executor's time and waits come from (the real clock by default).
    pub clock: SharedClock,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 8,
            device_timeout: Duration::from_secs(300),
            device_poll: Duration::from_secs(2),
            key_expiry: Duration::from_secs(3600),
            clock: SharedClock::default(),
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
/// Non-destructive actions (create, replace, resize, relabel, power) run first; deletions of
/// servers and devices run after all of them. Within each phase an agent's actions run one
/// after another, in plan order, and every agent is worked on at once: `options.concurrency`
/// bounds the actions making requests (`gate`), not the actions in progress, so a create
/// waiting for its Hetzner actions (polled together by the client) or its device (listed once
/// per tick for all, `enrolment`) holds no slot. An action starts once it gets a slot.
/// A failure of one agent does not stop the others. Once `stop` turns `true`, actions not yet
/// started are skipped; those in flight finish.
///
/// # Guarantees
/// - A refused plan executes nothing; a suspended one reports every action skipped.
/// - One agent, one action stream: two actions on the same agent never run at once.
/// - At most [`Plan::deletions_allowed`] servers are deleted, replacements' old servers
///   included, counted as deletions happen.
/// - A server is deleted, replaced, resized, relabelled or powered only if, right before the
///   call, it still carries this fleet's and the expected agent's labels ([`safety`]); a
///   protected server is never deleted.
/// - A created server that does not carry tether's ownership labels is reported as failed.
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
    apply_with(plan, fleet, compute, tailnet, options, None, stop).await
}

/// [`apply`] with the daemon's agent API: created servers get the on-VM agent, and the plan's
/// runtime updates run last, in health-gated waves ([`crate::runtime::rollout::run`]).
///
/// # Errors
/// [`ApplyError::Refused`] when the plan carries a refusal.
pub async fn apply_with<C: Compute, T: Tailnet>(
    plan: &Plan,
    fleet: &Fleet,
    compute: &C,
    tailnet: &T,
    options: &Options,
    agent_api: Option<&crate::runtime::Service>,
    stop: watch::Receiver<bool>,
) -> Result<ApplyReport, ApplyError> {
    if let Some(refusal) = &plan.refusal {
        return Err(ApplyError::Refused {
            reasons: refusal.reasons.clone(),
        });
    }
    if plan.suspended {
        return Ok(ApplyReport {
            plan_hash: plan.plan_hash.clone(),
            revision: plan.revision.clone(),
            actions: plan
                .actions
                .iter()
                .map(|a| {
                    ActionReport::skipped(
                        a,
                        "the fleet is suspended (`spec.suspend: true` in fleet.yaml)",
                    )
                })
                .collect(),
        });
    }
    let gate = gate::Gate::new(options.concurrency);
    let watch = enrolment::DeviceWatch::new(options.device_poll, options.clock.clone());
    let ctx = steps::Ctx {
        fleet,
        compute,
        tailnet,
        options,
        watch: &watch,
        deletions: AtomicUsize::new(0),
        budget: plan.deletions_allowed,
        runtime: agent_api,
    };
    let (updates, actions): (Vec<&Action>, Vec<&Action>) = plan
        .actions
        .iter()
        .partition(|a| agent_api.is_some() && matches!(a, Action::UpdateRuntime { .. }));
    let (late, early): (Vec<&Action>, Vec<&Action>) = actions
        .into_iter()
        .partition(|a| matches!(a, Action::Delete { .. } | Action::DeleteDevice { .. }));
    let mut reports = Vec::with_capacity(plan.actions.len());
    for phase in [early, late] {
        let work = by_agent(phase)
            .into_iter()
            .map(|chain| {
                let stop = stop.clone();
                let (ctx, gate) = (&ctx, &gate);
                async move {
                    let mut done = Vec::with_capacity(chain.len());
                    for action in chain {
                        let report = gate.active(|| async {
                            if *stop.borrow() {
                                ActionReport::skipped(
                                    action,
                                    "tether is shutting down; not started",
                                )
                            } else {
                                ctx.run(action).await
                            }
                        });
                        done.push(report.await);
                    }
                    done
                }
            })
            .collect::<futures_util::stream::FuturesUnordered<_>>()
            .collect::<Vec<Vec<ActionReport>>>();
        let chains = tokio::select! {
            chains = work => chains,
            never = watch.run(tailnet) => match never {},
        };
        reports.extend(chains.into_iter().flatten());
    }
    if let Some(service) = agent_api {
        let rollout =
            crate::runtime::rollout::run(&updates, fleet, compute, service, &stop, &options.clock)
                .await;
        reports.extend(rollout.into_iter().map(runtime::report));
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

/// The actions grouped by agent, each group in plan order.
fn by_agent(actions: Vec<&Action>) -> Vec<Vec<&Action>> {
    let mut groups: Vec<Vec<&Action>> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for action in actions {
        match index.get(action.agent()) {
            Some(&i) => groups[i].push(action),
            None => {
                index.insert(action.agent(), groups.len());
                groups.push(vec![action]);
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests;
