//! tether: a declarative GitOps reconciler for a fleet of agent VMs.
//!
//! The desired fleet lives in a git repository (see the `tether-schema` crate for its format).
//! Modules, in pipeline order:
//! - [`source`]: read a fleet's files from a directory or a git revision;
//! - [`cloud`]: Hetzner and Tailscale clients behind small traits, and the retry policy;
//! - [`observe`]: read the live inventory;
//! - [`forge`]: GitHub: the plan comment on pull requests, commit statuses, opening pull
//!   requests;
//! - [`plan`]: the pure planner, desired vs. observed → a safe, reviewable plan (it lives in
//!   the `tether-core` crate and is re-exported here);
//! - [`apply`]: carrying a plan out, safely;
//! - [`reconcile`]: one pass from fleet to status commit;
//! - [`audit`]: status commits and the audit log in git;
//! - [`billing`]: `tether agent add/remove`, the interface billing automation uses;
//! - [`events`]: the lifecycle events for the app, derived from the status branch, and their
//!   signature;
//! - [`process`]: what long-running processes share: shutdown on signals, the Prometheus
//!   exposition, durations in config files and flags;
//! - [`daemon`]: triggers, single-writer lock, metrics and HTTP endpoints of `tether run`;
//! - `sandbox` (cargo feature `sandbox`, on by default): tether driven against the emulators of
//!   those APIs in the `tether-emulators` crate (`tether sandbox`);
//! - [`cli`]: the `tether` command line, one file per subcommand.
//!
//! [`secret`] (from `tether-core`) holds the type every token and auth key lives in.

pub mod agent_client;
pub mod apply;
pub mod audit;
pub mod billing;
pub mod cli;
pub mod cloud;
pub mod daemon;
pub mod events;
pub mod forge;
#[cfg(test)]
mod fuzz;
pub mod observe;
pub mod process;
pub mod reconcile;
pub mod runtime;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod source;

pub use tether_core::{operation, plan, secret};
