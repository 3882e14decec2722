//! Local emulators of the outside APIs (Hetzner Cloud, Tailscale, GitHub), for trying tether
//! without credentials and for every test. They are product code: they answer like the real APIs,
//! including errors, pagination, rate limits and asynchronous actions, and they are stricter
//! where that catches bugs.
//!
//! - [`bench`]: the converge benchmark (N agents at real-world timing, scaled);
//! - [`emulator`]: the HTTP server, fault injection and request counters they share;
//! - [`github`]: the GitHub REST emulator (comments, statuses, pull requests) octocrab talks to;
//! - [`stripe`]: subscriptions, signed webhook deliveries and the subscription lookup;
//! - [`MachineHooks`]: how an emulated VM's life (boot, power off, delete) reaches other
//!   emulators, so a booted server can enrol in the emulated tailnet from its cloud-init.

pub mod agents;
pub mod bench;
pub mod demo;
pub mod emulator;
pub mod github;
pub mod hetzner;
pub mod live;
pub mod stack;
pub mod stripe;
pub mod tailscale;

/// A server that finished booting, as the Hetzner emulator reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootedServer {
    /// Hetzner server id.
    pub id: u64,
    /// Server name (the agent name).
    pub name: String,
    /// The server's `user_data` (cloud-init), exactly as given at create time.
    pub user_data: Option<String>,
}

/// Receives the life events of emulated VMs. Implemented by the Tailscale emulator to enrol
/// devices the way a real VM's cloud-init would.
pub trait MachineHooks: Send + Sync + std::fmt::Debug {
    /// The server finished booting (status `running`): run its cloud-init.
    fn booted(&self, server: &BootedServer);
    /// The server stopped running (powered off, shut down, or deleted): its node goes offline.
    fn stopped(&self, server_id: u64);
    /// The server's disk was wiped and re-imaged (`rebuild`): its next boot is a first boot
    /// that runs its (new) cloud-init again.
    fn rebuilt(&self, server_id: u64);
}
