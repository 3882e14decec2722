//! tether's end-to-end tests, one binary: each module drives the real `tether` executable
//! against real folders and git repositories and checks what a user would see.

mod apply_interrupt;
mod billing;
mod chaos;
mod common;
mod converge;
mod daemon;
mod daemon_time;
mod exit_codes;
mod github;
mod lease;
mod safety;
mod sandbox_cmd;
mod sandbox_demo;
mod schema_cmd;
mod validate;
