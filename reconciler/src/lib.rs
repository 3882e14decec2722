//! tether: a declarative GitOps reconciler for a fleet of agent VMs.
//!
//! The desired fleet lives in a git repository (see the `tether-schema` crate for its format).
//! Modules, in pipeline order:
//! - [`source`]: read a fleet's files from a directory or a git revision;
//! - [`cloud`]: Hetzner and Tailscale clients behind small traits, and the retry policy;
//! - [`forge`]: GitHub: the plan comment on pull requests, commit statuses, opening pull
//!   requests;
//! - [`plan`]: the pure planner, desired vs. observed → a safe, reviewable plan;
//! - [`sandbox`]: local emulators of those APIs;
//! - [`cli`]: the `tether` command line, one file per subcommand.
//!
//! [`secret`] holds the type every token and auth key lives in.

pub mod cli;
pub mod cloud;
pub mod forge;
pub mod plan;
pub mod sandbox;
pub mod secret;
pub mod source;
