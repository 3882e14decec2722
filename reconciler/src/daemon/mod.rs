//! The building blocks of `tether run`, the long-running reconciler: what makes a reconcile
//! happen and how the process is observed and stopped.
//!
//! - [`trigger`]: reasons to reconcile, the coalescer that batches them, the jittered interval;
//! - [`shutdown`]: SIGTERM/SIGINT as a signal the loop checks between actions, a grace period.

pub mod config;
pub mod http;
pub mod lock;
pub mod metrics;
pub mod shutdown;
pub mod trigger;
pub mod watch;
pub mod webhook;
