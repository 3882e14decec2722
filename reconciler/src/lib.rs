//! tether: a declarative GitOps reconciler for a fleet of agent VMs.
//!
//! The desired fleet lives in a git repository (see the `tether-schema` crate for its format).
//! Modules, in pipeline order:
//! - [`source`]: read a fleet's files from a directory or a git revision;
//! - [`cli`]: the `tether` command line, one file per subcommand.

pub mod cli;
pub mod source;
