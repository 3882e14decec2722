//! The building blocks of `tether run`, the long-running reconciler: what makes a reconcile
//! happen, who may act, and how the process is configured, observed and stopped. Operators'
//! view: `docs/operations.md`.
//!
//! - [`config`]: the configuration file plus environment, validated into `DaemonConfig`;
//! - [`trigger`]: reasons to reconcile, the coalescer that batches them, the jittered interval;
//! - [`budget`]: the rate-limit budget that sets the interval from the last pass's requests;
//! - [`watch`]: file changes in a local fleet directory as triggers;
//! - [`webhook`]: signed GitHub pushes as triggers;
//! - [`lock`]: the single-writer lease, a ref compare-and-swapped in the fleet repository;
//! - [`metrics`]: Prometheus counters, gauges and the reconcile histogram;
//! - [`http`]: `/healthz`, `/readyz`, `/metrics` and `/webhook`;
//! - [`notify`]: notifications of failures, refusals, unhealthy agents and recoveries;
//! - [`events`]: delivery of the agents' lifecycle events to the app, by the lease holder;
//! - [`pass`]: one pass and its account (metrics, readiness, one log line);
//! - [`readiness`]: whether the daemon is ready, which a pass sets and `/readyz` reports;
//! - [`projects`]: per-project request counting and the pace the slowest project sets;
//! - [`run`]: the loop that ties them together.
//!
//! The remote fleet repository's local mirror is [`crate::source::remote`]; shutdown on signals
//! and the Prometheus exposition are shared with the other servers in [`crate::process`].

pub mod budget;
pub mod config;
pub mod events;
pub mod http;
pub mod lock;
pub mod metrics;
pub mod notify;
mod pass;
pub mod projects;
pub mod readiness;
pub mod run;
pub mod trigger;
pub mod watch;
pub mod webhook;
