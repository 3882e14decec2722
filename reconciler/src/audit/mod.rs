//! The audit trail in git: [`status`] derives each agent's phase and the status documents;
//! [`message`] writes the commit messages and [`trailers`] reads their trailers with git's rules; [`ledger`] reads back what the status branch remembers (baseline, device record, recent
//! deletions) and decides what changed, with [`ledgers`] keeping the daemon's last one read; [`commit`] commits and pushes safely; [`log`] reads the
//! history of both branches back for `tether audit log`, with [`timeline`] reading each agent's
//! phases from the status branch; [`view`] reads `tether status`'s overview (and the dashboard's),
//! [`overview`] renders it and [`live`] adds the lease and the live inventory; [`heal`] keeps
//! self-healing's records; [`runtime`] writes `status/runtime.yaml` for runtime rollouts;
//! [`invariants`] checks what must hold at the end of every pass; [`signing`] signs commits with
//! an SSH key, [`signers`] reads the allowed signers and [`verify`] proves the status branch;
//! [`report`] exports a period's activity; [`journal`] keeps the applies made without a status
//! branch until one imports them.

pub mod commit;
#[cfg(test)]
mod forgery_tests;
pub mod heal;
pub mod invariants;
pub mod journal;
pub mod ledger;
pub mod ledgers;
pub mod live;
pub mod log;
pub mod message;
pub mod overview;
pub mod report;
pub mod runtime;
pub mod signers;
pub mod signing;
pub mod status;
pub mod timeline;
pub mod trailers;
pub mod verify;
pub mod view;

/// The default status branch; never the branch billing writes.
pub const STATUS_BRANCH: &str = "tether/status";
/// Trailer naming the fleet commit a status commit reflects.
pub const TRAILER_SOURCE: &str = "Tether-Source-Commit";
/// Trailer naming the applied plan.
pub const TRAILER_PLAN: &str = "Tether-Plan-Hash";
/// Trailer naming the run.
pub const TRAILER_RUN: &str = "Tether-Run";
/// Trailer naming who asked for an event that is not a pass (`tether agent purge`).
pub const TRAILER_REQUESTED_BY: &str = "Tether-Requested-By";
