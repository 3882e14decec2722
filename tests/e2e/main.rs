//! tether's end-to-end tests, one binary: each module drives the real `tether` executable
//! against real folders and git repositories and checks what a user would see.

mod apply_interrupt;
mod audit_remote;
mod audit_timeline;
mod billing;
mod billing_confirm;
mod billing_serve;
mod chaos;
mod common;
mod converge;
mod daemon;
mod daemon_time;
mod dashboard;
mod events;
mod exit_codes;
mod github;
mod heal;
mod heal_kills;
mod lease;
mod matrix;
mod module_graph;
mod notify;
mod offer;
mod operations;
mod projects;
mod quarantine;
mod review;
mod runtime;
mod runtime_restart;
mod safety;
mod sandbox_cmd;
mod sandbox_demo;
mod sandbox_live;
mod schema_cmd;
mod status_cmd;
mod validate;
