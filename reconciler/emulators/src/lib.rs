//! Local emulators of the outside APIs tether talks to (Hetzner Cloud, Tailscale, GitHub,
//! Stripe), for trying tether without credentials and for every test. They answer like the real
//! APIs, including errors, pagination, rate limits and asynchronous actions, and are stricter
//! where that catches bugs. Their wire types are written from each API's documentation and share
//! nothing with tether's clients, so a field a client misreads shows up as a test failure.
//!
//! This crate depends on no tether crate. tether's `sandbox` feature and its tests use it over
//! HTTP: start an emulator, point a client at its `url()`.
//!
//! - [`emulator`]: the HTTP server, fault injection and request counters they share;
//! - [`hetzner`]: servers, actions, SSH keys and the catalog under `/v1`;
//! - [`tailscale`]: devices, auth keys, OAuth and enrolment from cloud-init;
//! - [`github`]: comments, statuses and pull requests, as octocrab reads them;
//! - [`stripe`]: subscriptions, signed webhook deliveries and the subscription lookup;
//! - [`MachineHooks`]: how an emulated VM's life reaches other emulators;
//! - [`vmbox`]: the opt-in mode where each booted server is a Debian container running its
//!   cloud-init;
//! - [`Token`]: a credential that prints as `[redacted]`.

pub mod emulator;
pub mod github;
pub mod hetzner;
mod machine;
pub mod stripe;
pub mod tailscale;
mod token;
pub mod vmbox;

pub use machine::{BootedServer, MachineHooks};
pub use token::Token;
