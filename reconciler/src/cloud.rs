//! The outside world, behind small traits in plain data: [`Compute`] (Hetzner Cloud) and
//! `tailscale::Tailnet`. The planner and executor see only the domain types, which live in the
//! pure core (`tether_core::compute`, `tether_core::tailnet`) and are re-exported here; each
//! provider's JSON lives in its own `wire` module.
//!
//! - [`hetzner`]: the Hetzner Cloud client;
//! - [`tailscale`]: the Tailscale client;
//! - [`retry`]: the one retry policy both use;
//! - [`transport`]: failed requests in words (endpoint and root cause);
//! - [`projects`]: one fleet over several Hetzner projects, one client per project;
//! - [`fence`]: both behind the single-writer lease: mutations refused once it is lost.

#[cfg(test)]
pub mod expect;
pub mod fence;
pub mod hetzner;
pub mod projects;
pub mod retry;
pub mod tailscale;
pub mod transport;

pub use tether_core::compute::{
    Action, ActionId, ActionStatus, Created, Euros, Image, Location, NewServer, Server, ServerId,
    ServerStatus, ServerType, SshKey,
};

use std::collections::BTreeMap;
use std::future::Future;

/// Hetzner Cloud, as tether uses it. The real implementation is [`hetzner::Client`].
pub trait Compute: Send + Sync {
    /// Every server matching `label_selector` (all pages).
    fn list_servers(
        &self,
        label_selector: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Server>, hetzner::Error>> + Send;
    /// The server named `name`, if any.
    fn find_server(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Server>, hetzner::Error>> + Send;
    /// The server with `id`, or `None` when it does not exist.
    fn get_server(
        &self,
        id: ServerId,
    ) -> impl Future<Output = Result<Option<Server>, hetzner::Error>> + Send;
    /// Creates a server. Never retried blindly: see [`hetzner::Client::create_server`].
    fn create_server(
        &self,
        new: &NewServer,
    ) -> impl Future<Output = Result<Created, hetzner::Error>> + Send;
    /// Deletes a server; `None` when it was already gone.
    fn delete_server(
        &self,
        id: ServerId,
    ) -> impl Future<Output = Result<Option<Action>, hetzner::Error>> + Send;
    /// Renames the server (when `name` is given) and replaces its labels with `labels`.
    fn update_server(
        &self,
        id: ServerId,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Server, hetzner::Error>> + Send;
    /// Powers the server on.
    fn power_on(&self, id: ServerId)
    -> impl Future<Output = Result<Action, hetzner::Error>> + Send;
    /// Cuts the power.
    fn power_off(
        &self,
        id: ServerId,
    ) -> impl Future<Output = Result<Action, hetzner::Error>> + Send;
    /// Sends an ACPI shutdown.
    fn shutdown(&self, id: ServerId)
    -> impl Future<Output = Result<Action, hetzner::Error>> + Send;
    /// Changes the server type (the server must be off).
    fn change_type(
        &self,
        id: ServerId,
        server_type: &str,
        upgrade_disk: bool,
    ) -> impl Future<Output = Result<Action, hetzner::Error>> + Send;
    /// Waits until every action has finished, polling them together; returns their final states.
    fn wait_for_actions(
        &self,
        ids: &[ActionId],
    ) -> impl Future<Output = Result<Vec<Action>, hetzner::Error>> + Send;
    /// Server types with prices.
    fn server_types(&self) -> impl Future<Output = Result<Vec<ServerType>, hetzner::Error>> + Send;
    /// Locations.
    fn locations(&self) -> impl Future<Output = Result<Vec<Location>, hetzner::Error>> + Send;
    /// Images.
    fn images(&self) -> impl Future<Output = Result<Vec<Image>, hetzner::Error>> + Send;
    /// SSH keys.
    fn ssh_keys(&self) -> impl Future<Output = Result<Vec<SshKey>, hetzner::Error>> + Send;
    /// Rebuilds the server from `image` with new cloud-init: its disk is wiped, its id kept.
    fn rebuild(
        &self,
        id: ServerId,
        image: &str,
        user_data: &crate::secret::Secret<String>,
    ) -> impl Future<Output = Result<Action, hetzner::Error>> + Send;
    /// Hard-resets the server (a power cycle).
    fn reset(&self, id: ServerId) -> impl Future<Output = Result<Action, hetzner::Error>> + Send;
}
