//! tether's fleet spec: pure types, parsing and validation; no I/O, no async, no network.
//!
//! Start at [`load_fleet`]: it takes the files of a fleet repository (as [`SourceFile`]s, read
//! by whoever has them: a directory walker, a git tree reader) and returns a validated
//! [`Fleet`] or every problem found, as [`Diagnostic`]s.
//!
//! Pipeline: bytes → [`yaml::node`] (positioned tree, hostile-input limits) → [`raw`] (serde
//! types, unknown fields collected) → [`validate`] (newtypes from [`names`], catalog and
//! cross-file rules) → [`model`].

pub mod cloud_init;
pub mod diagnostic;
pub mod grace;
pub mod heal;
pub mod incremental;
pub mod json_schema;
pub mod labels;
mod load;
#[cfg(test)]
mod load_props;
pub mod model;
pub mod names;
pub mod network;
pub mod projects;
pub mod public_env;
pub mod raw;
pub mod render;
mod report;
pub mod spanned;
pub mod text;
mod validate;
pub mod yaml;

pub use diagnostic::{Code, Diagnostic, Span};
pub use load::{
    AGENTS_DIR, Content, FLEET_FILE, LoadError, MAX_SPEC_BYTES, SourceFile, declared_projects,
    is_fleet_path, load_fleet,
};
pub use model::{Agent, ConfirmDeletes, Fleet, FleetSettings, Power};
