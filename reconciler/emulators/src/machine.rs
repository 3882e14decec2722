//! How an emulated VM's life (boot, power off, rebuild, delete) reaches other emulators: the
//! Hetzner emulator reports through [`MachineHooks`], and the Tailscale emulator's enroller
//! implements them, so a booted server can enrol in the emulated tailnet from its cloud-init.

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
