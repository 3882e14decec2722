//! tether driven against local emulators of the outside APIs, for trying it without
//! credentials: `tether sandbox` and what tests build on. The emulators themselves (Hetzner
//! Cloud, Tailscale, GitHub, Stripe) live in the `tether-emulators` crate; this module wires
//! them to tether. Behind the default-on cargo feature `sandbox`.
//!
//! - [`stack`]: the emulators started together, wired to one another and to tether's clients;
//! - [`agents`]: the in-process agent of every emulated VM;
//! - [`app`]: the product's endpoint receiving the signed lifecycle events;
//! - [`live`]: `tether sandbox` serving the emulators while tether runs against them;
//! - [`demo`]: `tether sandbox --demo`, a scripted tour;
//! - [`bench`]: the converge benchmark (N agents at real-world timing, scaled);
//! - [`pass_bench`]: the pass benchmark (the daemon's whole pass at N agents, no-op and 1 % changed).

pub mod agents;
pub mod app;
pub mod bench;
pub mod demo;
pub mod live;
pub mod pass_bench;
pub mod stack;
