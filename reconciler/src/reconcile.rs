//! One reconcile pass, as `tether apply` and the daemon run it: read what the status branch
//! remembers, load the fleet, read the inventory, plan, check the plan, apply, and record the
//! outcome on the status branch. Every step's failure is typed; a fleet that fails to load
//! stops the pass before anything is read or changed, and every ending (applied, refused,
//! failed) is recorded.
//!
//! # Guarantees
//! - Level-triggered status: every pass derives the status documents from what it observes and
//!   commits whenever they differ materially from the branch, so a pass killed between its last
//!   action and its status commit is recorded by the next one.
//! - A refused or failed pass never moves the baseline (`agents`, `revision`, `planHash` of
//!   `status/fleet.yaml`); it records why in `lastError`, once per distinct cause.

use crate::apply::{self, ApplyError, ApplyReport, Options};
use crate::audit::commit::{self, CommitError};
use crate::audit::ledger::{self, Ledger, LedgerError};
use crate::audit::message;
use crate::audit::status::{self, Inputs, Verdict};
use crate::cloud::tailscale::Tailnet;
use crate::cloud::{Compute, ServerStatus};
use crate::observe::{ObserveError, observe, refresh_touched};
use crate::plan::offer::{self, NotOffered};
use crate::plan::{self, Context, Observed, Plan};
use crate::runtime::history::{History, serve_what_they_ran};
use crate::source::fleets::{FleetCache, Loaded};
use crate::source::{Snapshot, publish};
use std::collections::BTreeSet;
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
    /// Called with the plan once it is made and checked against `expect_plan_hash`, before
    /// anything is changed (`tether apply --auto-approve` shows it there).
    pub on_plan: Option<fn(&Plan)>,
    /// Executor options.
    pub apply: Options,
    /// Where to write status, if anywhere.
    pub status: Option<StatusTarget<'a>>,
    /// Run id for trailers and logs.
    pub run: &'a str,
    /// RFC 3339 time of the run.
    pub now: &'a str,
    /// The daemon's agent API, when it serves one: runtime updates roll out through it.
    pub runtime: Option<&'a crate::runtime::Service>,
    /// The daemon's loaded fleets, which the status baseline's fleet is taken from when its
    /// tree was loaded before; `None` loads it afresh.
    pub fleets: Option<&'a FleetCache>,
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
    /// The plan asks for a server type, location or image Hetzner does not offer: nothing was
    /// changed.
    #[error("{0}")]
    NotOffered(#[from] NotOffered),
    /// The status branch could not be fetched or read: nothing was changed, because the
    /// baseline and the device record it holds are needed to act safely.
    #[error("{0}; nothing was changed (tether needs the status branch's records to act safely)")]
    Ledger(#[from] LedgerError),
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
    Status(#[from] CommitError),
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

/// The planning context the ledger and the run give.
pub fn context(snapshot: &Snapshot, ledger: &Ledger, allow_shrink: bool, now: &str) -> Context {
    context_at(snapshot.commit.as_deref(), ledger, allow_shrink, now)
}

/// [`context`] at `commit` (`None`: a working tree).
fn context_at(commit: Option<&str>, ledger: &Ledger, allow_shrink: bool, now: &str) -> Context {
    let now = time::OffsetDateTime::parse(now, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
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
        halted_rollout: crate::runtime::status::halted(ledger),
    }
}

/// The fleet as last applied: the status branch's baseline revision, read from `repo`. `None`
/// when there is no baseline or it cannot be read or loaded; a replacement's plan then says
/// its spec-only old values are unknown.
pub fn previous_fleet(repo: &std::path::Path, ledger: &Ledger) -> Option<Fleet> {
    let revision = ledger.baseline.as_ref()?.revision.as_deref()?;
    let snapshot = crate::source::git::read(repo, revision).ok()?;
    load_fleet(&snapshot.files).ok()
}

/// [`previous_fleet`], taken from `fleets` when the baseline's tree was loaded before.
fn previous_cached(repo: &std::path::Path, ledger: &Ledger, fleets: &FleetCache) -> Option<Fleet> {
    let revision = ledger.baseline.as_ref()?.revision.as_deref()?;
    fleets.read(repo, revision).ok()?.fleet.ok()
}

/// Loads the fleet, reads the inventory and plans, without changing anything.
///
/// # Errors
/// [`PassError::Load`], [`PassError::Observe`] or [`PassError::NotOffered`].
pub async fn plan_only<C: Compute, T: Tailnet>(
    snapshot: &Snapshot,
    compute: &C,
    tailnet: &T,
    ctx: &Context,
) -> Result<(Fleet, Observed, Plan), PassError> {
    plan_fleet(load_fleet(&snapshot.files)?, compute, tailnet, ctx).await
}

/// [`plan_only`] for a fleet already loaded.
async fn plan_fleet<C: Compute, T: Tailnet>(
    fleet: Fleet,
    compute: &C,
    tailnet: &T,
    ctx: &Context,
) -> Result<(Fleet, Observed, Plan), PassError> {
    let observed = observe(compute, tailnet).await?;
    let ctx = Context {
        subscriptions: crate::billing::confirm::confirmations(&fleet, &observed).await,
        ..ctx.clone()
    };
    let plan = plan::plan(&fleet, &observed, &ctx);
    let unoffered = offer::check(&fleet, &observed.offer, &plan);
    if !unoffered.is_empty() {
        return Err(NotOffered(unoffered).into());
    }
    Ok((fleet, observed, plan))
}

/// Fetches the status branch (when it has a remote) and reads it.
///
/// # Errors
/// The remote or the repository cannot be read.
pub fn read_ledger(target: &StatusTarget<'_>) -> Result<Ledger, LedgerError> {
    if let Some(remote) = target.remote {
        let fetched = git2::Repository::open(target.repo)
            .and_then(|repo| publish::fetch_branch(&repo, remote, target.branch));
        if let Err(e) = fetched {
            return Err(LedgerError::new(target.repo, target.branch, e.message()));
        }
    }
    Ledger::read(target.repo, target.branch)
}

/// A full pass: plan, check, apply, and record.
///
/// # Errors
/// See [`PassError`]. A refused or changed plan changes nothing; failures and refusals are
/// still recorded on the status branch.
pub async fn run<C: Compute, T: Tailnet>(
    snapshot: &Snapshot,
    compute: &C,
    tailnet: &T,
    options: &PassOptions<'_>,
    stop: watch::Receiver<bool>,
) -> Result<PassOutcome, PassError> {
    run_loaded(
        Loaded::from_snapshot(snapshot),
        compute,
        tailnet,
        options,
        stop,
    )
    .await
}

/// [`run`] for a fleet already loaded (or that failed to load), as the daemon's
/// [`FleetCache`] hands it over.
///
/// # Errors
/// See [`PassError`]; a fleet that failed to load is [`PassError::Load`], recorded.
pub async fn run_loaded<C: Compute, T: Tailnet>(
    loaded: Loaded,
    compute: &C,
    tailnet: &T,
    options: &PassOptions<'_>,
    stop: watch::Receiver<bool>,
) -> Result<PassOutcome, PassError> {
    let commit = loaded.commit.as_deref();
    let ledger = match &options.status {
        Some(target) => read_ledger(target)?,
        None => Ledger::default(),
    };
    let mut ctx = context_at(commit, &ledger, options.allow_shrink, options.now);
    ctx.previous = options
        .status
        .as_ref()
        .and_then(|target| match options.fleets {
            Some(fleets) => previous_cached(target.repo, &ledger, fleets),
            None => previous_fleet(target.repo, &ledger),
        });
    let planned = match loaded.fleet {
        Ok(fleet) => plan_fleet(fleet, compute, tailnet, &ctx).await,
        Err(e) => Err(e.into()),
    };
    let (fleet, observed, plan) = match planned {
        Ok(planned) => planned,
        Err(e) => {
            record_failure(options, &ledger, commit, &e.to_string())?;
            return Err(e);
        }
    };
    tracing::info!(fleet = %fleet.settings.name, commit = commit.unwrap_or("working-tree"), plan_hash = %plan.plan_hash, actions = plan.actions.len(), "planned");
    if let Some(expected) = options.expect_plan_hash
        && expected != plan.plan_hash
    {
        return Err(PassError::PlanChanged {
            expected: expected.to_owned(),
            actual: plan.plan_hash.clone(),
        });
    }
    if let Some(show) = options.on_plan {
        show(&plan);
    }
    if let Some(service) = options.runtime {
        crate::runtime::status::seed(service, &ledger);
        service.sync(&fleet, &observed.servers);
        let history = options.status.as_ref().map(|target| History {
            repo: target.repo,
            commit,
            fleets: options.fleets,
        });
        let fleets = (&fleet, ctx.previous.as_ref());
        serve_what_they_ran(service, fleets, &observed.servers, history.as_ref());
        apply::runtime::write_rotated_keys(compute, &fleet, service, &observed.servers).await;
    }
    let awaiting = awaiting_enrolment(&fleet, &observed, &ctx);
    apply::keys::sweep_logged(tailnet, &fleet.settings.name, &awaiting).await;
    let applied = apply::apply_with(
        &plan,
        &fleet,
        compute,
        tailnet,
        &options.apply,
        options.runtime,
        stop,
    );
    let report = match applied.await {
        Ok(report) => report,
        Err(refused) => {
            let empty = ApplyReport {
                plan_hash: plan.plan_hash.clone(),
                revision: plan.revision.clone(),
                actions: Vec::new(),
            };
            let inputs = Inputs {
                fleet: &fleet,
                observed: &observed,
                report: &empty,
                ledger: &ledger,
                verdict: Verdict::Refused(&plan),
                now: options.now,
                run: options.run,
            };
            record(
                options,
                &ledger,
                &inputs,
                &message::refusal_message(&plan, options.run),
            )?;
            return Err(refused.into());
        }
    };
    let observed = if report.actions.is_empty() {
        observed
    } else {
        refresh_touched(compute, tailnet, observed, &report).await?
    };
    let inputs = Inputs {
        fleet: &fleet,
        observed: &observed,
        report: &report,
        ledger: &ledger,
        verdict: if plan.suspended {
            Verdict::Suspended(&plan)
        } else {
            Verdict::Applied(&plan)
        },
        now: options.now,
        run: options.run,
    };
    let status_commit = record(
        options,
        &ledger,
        &inputs,
        &message::commit_message(&report, options.run),
    )?;
    Ok(PassOutcome {
        fleet,
        plan,
        report,
        status_commit,
    })
}

/// Agents whose server of this fleet is being created, booting or running without an online
/// device of its own: a key minted for them by a run that was cut short may still be used.
/// Not agents with a remedy in progress: their key is a killed remedy's, revoked at once.
fn awaiting_enrolment(fleet: &Fleet, observed: &Observed, ctx: &Context) -> BTreeSet<String> {
    let remedied = plan::heal::remedies_in_progress(fleet, observed, ctx);
    let owned = plan::device_ownership(fleet, observed, ctx);
    let online: BTreeSet<&str> = observed
        .devices
        .iter()
        .filter(|d| d.online)
        .filter_map(|d| owned.get(&d.id).map(String::as_str))
        .collect();
    plan::managed_servers(fleet, observed)
        .into_iter()
        .filter(|(agent, s)| {
            matches!(
                s.status,
                ServerStatus::Initializing | ServerStatus::Starting | ServerStatus::Running
            ) && !online.contains(agent)
                && !remedied.contains(*agent)
        })
        .map(|(agent, _)| agent.to_owned())
        .collect()
}

/// Commits the status documents of `inputs` when they differ materially from the branch.
fn record(
    options: &PassOptions<'_>,
    ledger: &Ledger,
    inputs: &Inputs<'_>,
    message: &str,
) -> Result<Option<String>, PassError> {
    let mut files = status::files(inputs);
    crate::runtime::status::add(&mut files, options.runtime, inputs.fleet, ledger);
    commit_changed(options, ledger, files, message)
}

/// Records a pass that failed before it could plan: `lastError` in `status/fleet.yaml`, every
/// other document untouched.
fn record_failure(
    options: &PassOptions<'_>,
    ledger: &Ledger,
    commit: Option<&str>,
    error: &str,
) -> Result<(), PassError> {
    let files = status::failure_files(ledger, error, options.now, options.run);
    let message = message::failure_message(error, commit, options.run);
    commit_changed(options, ledger, files, &message).map(|_| ())
}

/// Commits `files` to the status branch, when there is one and they differ materially from
/// what it holds ([`ledger::settle`]).
fn commit_changed(
    options: &PassOptions<'_>,
    ledger: &Ledger,
    files: std::collections::BTreeMap<String, String>,
    message: &str,
) -> Result<Option<String>, PassError> {
    let Some(target) = &options.status else {
        return Ok(None);
    };
    let Some(files) = ledger::settle(&ledger.files, files) else {
        return Ok(None);
    };
    Ok(commit::write(target, &files, message)?.map(|oid| oid.to_string()))
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
