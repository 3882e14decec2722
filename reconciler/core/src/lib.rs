//! tether's pure core: the domain types the planner reasons about and the planner itself.
//!
//! - [`compute`]: Hetzner Cloud as tether sees it (servers, actions, the catalog);
//! - [`operation`]: the multi-step operations recorded on a server while under way;
//! - [`tailnet`]: Tailscale as tether sees it (devices, auth keys);
//! - [`secret`]: [`secret::Secret`], a value that is never printed;
//! - [`ratelimit`]: the arithmetic of Hetzner's request budget;
//! - [`plan`]: `plan(desired, observed, context) -> Plan` with its safety rules;
//! - [`escape`]: one escaper per output untrusted text lands in (terminal, Markdown, Slack, HTML).
//!
//! No I/O, no async, no network: CI fails if tokio, reqwest, git2, octocrab, hyper or axum enter
//! this crate's dependency tree. The product crate (`tether`) re-exports these modules under
//! their old paths (`tether::plan`, `tether::secret`, `tether::cloud::Server`, …).

pub mod compute;
pub mod escape;
pub mod operation;
pub mod plan;
pub mod ratelimit;
pub mod secret;
pub mod tailnet;
#[cfg(test)]
mod testing;
