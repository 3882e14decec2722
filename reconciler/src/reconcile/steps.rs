//! The steps of a pass, in order: [`prepare`] (the pass's time, the status branch and the
//! planning context), [`load`] (the fleet, the fleet as last applied, the daemon's projects),
//! [`observe`] (the inventory and billing's confirmations), [`plan`], [`check`] (what Hetzner
//! offers, the approved hash), [`apply`] (the runtime, the key sweep, the executor) and
//! [`refresh`] (the inventory and keys again). [`all`] runs them and says how the pass ended,
//! with what it knew then, for the record.

use super::{PassError, PassOptions, StatusTarget};
use crate::apply::{self, ApplyError, ApplyReport};
use crate::audit::ledger::{Deletion, Ledger, LedgerError};
use crate::audit::ledgers::LedgerCache;
use crate::cloud::Compute;
use crate::cloud::retry::Clock;
use crate::cloud::tailscale::{AuthKey, Tailnet};
use crate::observe::{self, ObserveError};
use crate::plan::offer::{self, NotOffered};
use crate::plan::{self, Context, Observed, Plan};
use crate::runtime::history::{History, serve_what_they_ran};
use crate::source::fleets::Loaded;
use crate::source::publish;
use std::collections::BTreeSet;
use tether_schema::{Fleet, load_fleet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

/// What a pass knows before it has a plan: read by every ending's record.
#[derive(Debug)]
pub(super) struct Known {
    /// The pass's time, read once from the clock.
    pub now: OffsetDateTime,
    /// The fleet commit, when read from git.
    pub commit: Option<String>,
    /// The status branch as the pass read it; `None` until read, or when it could not be.
    pub ledger: Option<Ledger>,
}

impl Known {
    /// A pass of `commit` starting now, as `clock` tells.
    pub fn new(commit: Option<String>, clock: &impl Clock) -> Known {
        Known {
            now: OffsetDateTime::from(clock.now()),
            commit,
            ledger: None,
        }
    }
}

/// A fleet, the inventory and the plan made from them, with the status branch they were
/// planned against.
#[derive(Debug)]
pub(super) struct Planned {
    pub ledger: Ledger,
    pub fleet: Fleet,
    pub observed: Observed,
    pub plan: Plan,
    pub ctx: Context,
}

/// The inventory after an apply, and the tailnet's keys.
#[derive(Debug)]
pub(super) struct After {
    /// Re-read servers and devices; `None` when nothing was applied (the planned inventory
    /// stands).
    pub observed: Option<Observed>,
    /// The keys, when they could be listed.
    pub keys: Option<Vec<AuthKey>>,
}

/// How a pass ended, with what the record needs.
#[derive(Debug)]
pub(super) enum Ending {
    /// It stopped before it applied anything.
    Stopped(PassError),
    /// The plan was refused: nothing was applied.
    Refused {
        planned: Box<Planned>,
        error: ApplyError,
    },
    /// The plan was applied (every action may have failed, or the fleet be suspended); the
    /// refresh may have failed.
    Applied {
        planned: Box<Planned>,
        report: ApplyReport,
        after: Result<After, ObserveError>,
    },
}

/// Every step, in order.
pub(super) async fn all<C: Compute, T: Tailnet>(
    known: &mut Known,
    loaded: Loaded,
    compute: &C,
    tailnet: &T,
    options: &PassOptions<'_>,
    stop: watch::Receiver<bool>,
) -> Ending {
    let planned = match planned(known, loaded, compute, tailnet, options).await {
        Ok(planned) => planned,
        Err(e) => return Ending::Stopped(e),
    };
    if let Err(e) = check(&planned, options) {
        return Ending::Stopped(e);
    }
    let report = match apply(&planned, known.now, compute, tailnet, options, stop).await {
        Ok(report) => report,
        Err(error) => {
            return Ending::Refused {
                planned: Box::new(planned),
                error,
            };
        }
    };
    let after = refresh(&planned.observed, &report, compute, tailnet).await;
    Ending::Applied {
        planned: Box::new(planned),
        report,
        after,
    }
}

/// The steps up to a plan: prepare, load, observe, plan, and the offer check.
pub(super) async fn planned<C: Compute, T: Tailnet>(
    known: &mut Known,
    loaded: Loaded,
    compute: &C,
    tailnet: &T,
    options: &PassOptions<'_>,
) -> Result<Planned, PassError> {
    let ledger = known.ledger.insert(prepare(options, known.now)?);
    let mut ctx = context_at(
        known.commit.as_deref(),
        ledger,
        options.allow_shrink,
        known.now,
    );
    let fleet = load(loaded, ledger, options, &mut ctx)?;
    let observed = observe(&fleet, compute, tailnet, &mut ctx).await?;
    let ledger = known.ledger.take().unwrap_or_default();
    let plan = plan::plan(&fleet, &observed, &ctx);
    tracing::info!(fleet = %fleet.settings.name, commit = known.commit.as_deref().unwrap_or("working-tree"), plan_hash = %plan.plan_hash, actions = plan.actions.len(), "planned");
    let unoffered = offer::check(&fleet, &observed.offer, &plan);
    if !unoffered.is_empty() {
        known.ledger = Some(ledger);
        return Err(NotOffered(unoffered).into());
    }
    Ok(Planned {
        ledger,
        fleet,
        observed,
        plan,
        ctx,
    })
}

/// Prepare: the status branch, fetched first when it has a remote, with the deletions of
/// earlier passes whose record failed counted at `now` (fail closed).
fn prepare(options: &PassOptions<'_>, now: OffsetDateTime) -> Result<Ledger, PassError> {
    let mut ledger = match &options.status {
        Some(target) => read_ledger(target, options.ledgers)?,
        None => Ledger::default(),
    };
    let at = now.format(&Rfc3339).unwrap_or_default();
    for action in options.unrecorded.iter().flat_map(|r| &r.actions) {
        if let Some(server_id) = action.deleted_server {
            ledger.deletions.push(Deletion {
                at: at.clone(),
                agent: action.agent.clone(),
                server_id,
            });
        }
    }
    Ok(ledger)
}

/// Load: the fleet, the fleet as last applied (for the plan's old values), and the daemon's
/// projects as the fleet declares them.
fn load(
    loaded: Loaded,
    ledger: &Ledger,
    options: &PassOptions<'_>,
    ctx: &mut Context,
) -> Result<Fleet, PassError> {
    let fleet = loaded.fleet?;
    ctx.previous = options
        .status
        .as_ref()
        .and_then(|target| match options.fleets {
            Some(fleets) => {
                let revision = ledger.baseline.as_ref()?.revision.as_deref()?;
                fleets.read(target.repo, revision).ok()?.fleet.ok()
            }
            None => previous_fleet(target.repo, ledger),
        });
    if let Some(projects) = options.projects {
        projects
            .prepare(&fleet.settings.project_names(), &|var| {
                std::env::var(var).ok()
            })
            .map_err(ObserveError::from)?;
    }
    Ok(fleet)
}

/// Observe: the inventory, and billing's confirmations of the subscriptions it names.
async fn observe<C: Compute, T: Tailnet>(
    fleet: &Fleet,
    compute: &C,
    tailnet: &T,
    ctx: &mut Context,
) -> Result<Observed, PassError> {
    let observed = observe::observe(compute, tailnet).await?;
    ctx.subscriptions = crate::billing::confirm::confirmations(fleet, &observed).await;
    Ok(observed)
}

/// Check: the plan is the approved one; then it is shown.
fn check(planned: &Planned, options: &PassOptions<'_>) -> Result<(), PassError> {
    if let Some(expected) = options.expect_plan_hash
        && expected != planned.plan.plan_hash
    {
        return Err(PassError::PlanChanged {
            expected: expected.to_owned(),
            actual: planned.plan.plan_hash.clone(),
        });
    }
    if let Some(show) = options.on_plan {
        show(&planned.plan);
    }
    Ok(())
}

/// Apply: the runtime's view of the fleet, the sweep of leftover keys, then the executor.
async fn apply<C: Compute, T: Tailnet>(
    planned: &Planned,
    now: OffsetDateTime,
    compute: &C,
    tailnet: &T,
    options: &PassOptions<'_>,
    stop: watch::Receiver<bool>,
) -> Result<ApplyReport, ApplyError> {
    let Planned {
        ledger,
        fleet,
        observed,
        plan,
        ctx,
    } = planned;
    if let Some(service) = options.runtime {
        crate::audit::runtime::seed(service, ledger);
        service.sync(fleet, &observed.servers);
        let history = options.status.as_ref().map(|target| History {
            repo: target.repo,
            commit: ctx.revision.as_deref(),
            fleets: options.fleets,
        });
        let fleets = (fleet, ctx.previous.as_ref());
        serve_what_they_ran(service, fleets, &observed.servers, history.as_ref());
        apply::runtime::write_rotated_keys(compute, fleet, service, &observed.servers).await;
    }
    let owned = plan::device_ownership(fleet, observed, ctx);
    // A remedy in progress is a killed remedy's: its key is revoked at once, not awaited.
    let remedied = plan::heal::remedies_in_progress(fleet, observed, ctx);
    let awaiting: BTreeSet<String> = apply::keys::awaiting_enrolment(fleet, observed, &owned)
        .into_iter()
        .filter(|agent| !remedied.contains(agent))
        .collect();
    apply::keys::sweep_logged(tailnet, &fleet.settings.name, &awaiting, now).await;
    let applied = apply::apply_with(
        plan,
        fleet,
        compute,
        tailnet,
        &options.apply,
        options.runtime,
        stop,
    );
    applied.await
}

/// Refresh: the servers the apply touched and the devices, read again, and the keys.
async fn refresh<C: Compute, T: Tailnet>(
    before: &Observed,
    report: &ApplyReport,
    compute: &C,
    tailnet: &T,
) -> Result<After, ObserveError> {
    let observed = if report.actions.is_empty() {
        None
    } else {
        Some(observe::refresh_touched(compute, tailnet, before.clone(), report).await?)
    };
    let keys = match tailnet.list_keys().await {
        Ok(keys) => Some(keys),
        Err(e) => {
            tracing::warn!(error = %e, "listing the auth keys failed; the live-key invariant is not judged this pass");
            None
        }
    };
    Ok(After { observed, keys })
}

/// The planning context the ledger gives, at `commit` (`None`: a working tree) and `now`.
fn context_at(
    commit: Option<&str>,
    ledger: &Ledger,
    allow_shrink: bool,
    now: OffsetDateTime,
) -> Context {
    Context {
        revision: commit.map(str::to_owned),
        previous: None,
        previous_agents: ledger.baseline.as_ref().map(|b| b.agents),
        allow_shrink,
        owned_devices: ledger.devices.clone(),
        recent_deletions: Some(ledger.recent_deletions(now).len()),
        subscriptions: std::collections::BTreeMap::new(),
        now: Some(now),
        heal: ledger.heal.clone(),
        halted_rollout: crate::audit::runtime::halted(ledger),
        env_key: crate::plan::env::EnvKey::default(),
    }
}

/// The fleet as last applied: the status branch's baseline revision, read from `repo`. `None`
/// when there is no baseline or it cannot be read or loaded; a replacement's plan then says
/// its spec-only old values are unknown.
fn previous_fleet(repo: &std::path::Path, ledger: &Ledger) -> Option<Fleet> {
    let revision = ledger.baseline.as_ref()?.revision.as_deref()?;
    let snapshot = crate::source::git::read(repo, revision).ok()?;
    load_fleet(&snapshot.files).ok()
}

/// Fetches the status branch (when it has a remote) and reads it, through `ledgers` when the
/// daemon keeps them.
///
/// # Errors
/// The remote or the repository cannot be read.
fn read_ledger(
    target: &StatusTarget<'_>,
    ledgers: Option<&LedgerCache>,
) -> Result<Ledger, LedgerError> {
    if let Some(remote) = target.remote {
        let fetched = git2::Repository::open(target.repo)
            .and_then(|repo| publish::fetch_branch(&repo, remote, target.branch));
        if let Err(e) = fetched {
            return Err(LedgerError::new(target.repo, target.branch, e.message()));
        }
    }
    match ledgers {
        Some(ledgers) => ledgers.read(target.repo, target.branch),
        None => Ledger::read(target.repo, target.branch),
    }
}
