//! One reconcile pass, with one owner: `tether apply`, `tether run` and the sandbox all run
//! [`run`], which goes through named steps, prepare → load → observe → plan → check → apply →
//! refresh ([`steps`]), and then writes the pass's record once, whatever step it stopped at
//! ([`record`]). `tether plan` and apply's preview run the first steps only ([`plan_only`]).
//! Each caller supplies only what differs: where the fleet comes from ([`Loaded`]), the clients
//! and clock, and [`PassOptions`].
//!
//! # Guarantees
//! - Every ending writes a record on the status branch (when there is one): an unreadable or
//!   invalid fleet, an unreadable status branch or inventory, a plan Hetzner cannot serve, a
//!   changed plan, a refused plan, an apply (whatever its actions' outcomes), a failed refresh.
//!   A record that cannot be written is an error that still carries the pass's outcome
//!   ([`PassError::Unrecorded`]), so its account is never lost.
//! - A record after an apply always holds the apply report, with its provider action ids, in
//!   its commit message; a failed refresh records it with the inventory read before the apply.
//! - Level-triggered status: every pass derives the status documents from what it observes and
//!   commits whenever they differ materially from the branch, so a pass killed between its last
//!   action and its status commit is recorded by the next one; reports whose record failed are
//!   handed to the next pass ([`PassOptions::unrecorded`]), which records them with its own.
//! - A refused or failed pass never moves the baseline (`agents`, `revision`, `planHash` of
//!   `status/fleet.yaml`); it records why in `lastError`, once per distinct cause.
//! - The pass's time is read once, from the injected clock, in the prepare step.

mod record;
mod steps;

use crate::apply::{ApplyError, ApplyReport, Options};
use crate::audit::commit::{self, CommitError};
use crate::audit::invariants::Breach;
use crate::audit::ledger::LedgerError;
use crate::audit::ledgers::LedgerCache;
use crate::cloud::Compute;
use crate::cloud::projects::tokens::Registry;
use crate::cloud::retry::Clock;
use crate::cloud::tailscale::Tailnet;
use crate::observe::ObserveError;
use crate::plan::offer::NotOffered;
use crate::plan::{Observed, Plan};
use crate::source::fleets::{FleetCache, Loaded};
use steps::Known;
use tether_schema::{Fleet, LoadError};
use tokio::sync::watch;

/// Where status commits go: the status branch of the fleet repository (or its mirror).
pub type StatusTarget<'a> = commit::Target<'a>;

/// What a pass needs besides its fleet, clients and clock. [`PassOptions::new`] gives the
/// defaults; callers change what differs.
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
    /// The daemon's agent API, when it serves one: runtime updates roll out through it.
    pub runtime: Option<&'a crate::runtime::Service>,
    /// The daemon's loaded fleets, which the status baseline's fleet is taken from when its
    /// tree was loaded before; `None` loads it afresh.
    pub fleets: Option<&'a FleetCache>,
    /// The daemon's last status branch read, taken again while the branch's `status/` tree
    /// is unchanged; `None` reads it afresh.
    pub ledgers: Option<&'a LedgerCache>,
    /// The daemon's Hetzner projects, prepared from the loaded fleet's declared projects
    /// before the inventory is read.
    pub projects: Option<&'a Registry>,
    /// Apply reports of earlier passes whose record could not be written: this pass's record
    /// carries them (their deletions count against the hourly budget).
    pub unrecorded: &'a [ApplyReport],
}

impl<'a> PassOptions<'a> {
    /// The options of a plain pass with run id `run`: no approved hash, no status branch,
    /// default executor options.
    pub fn new(run: &'a str) -> PassOptions<'a> {
        PassOptions {
            expect_plan_hash: None,
            allow_shrink: false,
            on_plan: None,
            apply: Options::default(),
            status: None,
            run,
            runtime: None,
            fleets: None,
            ledgers: None,
            projects: None,
            unrecorded: &[],
        }
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The fleet is invalid or could not be read: nothing was read or changed.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// The inventory could not be read (or a declared project has no token): nothing was
    /// changed.
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
    /// The plan was applied, but the inventory could not be read again afterwards: the record
    /// holds the apply report and the inventory from before the apply.
    #[error(
        "the plan was applied ({}), but reading the inventory again failed: {source}",
        crate::audit::message::summary_line(&outcome.report)
    )]
    Refresh {
        /// Why the inventory could not be read.
        source: ObserveError,
        /// The pass, recorded.
        outcome: Box<PassOutcome>,
    },
    /// The pass's record could not be written to the status branch; `pass` is how it ended
    /// (after an apply, its outcome holds the account).
    #[error(
        "{}; and its status record could not be written: {source}",
        ended(pass)
    )]
    Unrecorded {
        /// Why the status commit failed.
        source: CommitError,
        /// How the pass ended.
        pass: Box<Result<PassOutcome, PassError>>,
    },
}

fn ended(pass: &Result<PassOutcome, PassError>) -> String {
    match pass {
        Ok(outcome) => format!(
            "the plan was applied ({})",
            crate::audit::message::summary_line(&outcome.report)
        ),
        Err(e) => e.to_string(),
    }
}

impl PassError {
    /// The pass's outcome when it applied before it stopped: its report holds the account and
    /// the provider action ids.
    pub fn outcome(&self) -> Option<&PassOutcome> {
        match self {
            PassError::Refresh { outcome, .. } => Some(outcome),
            PassError::Unrecorded { pass, .. } => match pass.as_ref() {
                Ok(outcome) => Some(outcome),
                Err(e) => e.outcome(),
            },
            _ => None,
        }
    }

    /// The error that ended the pass, looking through a record that could not be written.
    pub fn cause(&self) -> Option<&PassError> {
        match self {
            PassError::Unrecorded { pass, .. } => pass.as_ref().as_ref().err()?.cause(),
            e => Some(e),
        }
    }
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
    /// The invariants found broken at the end of the pass.
    pub breaches: Vec<Breach>,
}

/// Loads the fleet, reads the status branch and the inventory, and plans, without changing
/// anything or writing a record: the first steps of [`run`], for `tether plan` and apply's
/// preview.
///
/// # Errors
/// [`PassError::Ledger`], [`PassError::Load`], [`PassError::Observe`] or
/// [`PassError::NotOffered`].
pub async fn plan_only<C: Compute, T: Tailnet>(
    loaded: Loaded,
    compute: &C,
    tailnet: &T,
    clock: &impl Clock,
    options: &PassOptions<'_>,
) -> Result<(Fleet, Observed, Plan), PassError> {
    let mut known = Known::new(loaded.commit.clone(), clock);
    let planned = steps::planned(&mut known, loaded, compute, tailnet, options).await?;
    Ok((planned.fleet, planned.observed, planned.plan))
}

/// A full pass: prepare, load, observe, plan, check, apply, refresh, then the record, written
/// once for every ending.
///
/// # Errors
/// See [`PassError`]. A refused or changed plan changes nothing; every ending is recorded on
/// the status branch, and a record that cannot be written is [`PassError::Unrecorded`].
pub async fn run<C: Compute, T: Tailnet>(
    loaded: Loaded,
    compute: &C,
    tailnet: &T,
    clock: &impl Clock,
    options: &PassOptions<'_>,
    stop: watch::Receiver<bool>,
) -> Result<PassOutcome, PassError> {
    let mut known = Known::new(loaded.commit.clone(), clock);
    let ended = steps::all(&mut known, loaded, compute, tailnet, options, stop).await;
    record::write(known, ended, options)
}

#[cfg(test)]
mod exits_tests;
#[cfg(test)]
mod tests;
