//! Fencing: [`Fenced`] wraps a [`Compute`] and a [`Tailnet`] and asks a [`Fence`] before every
//! mutating call, so a process that lost the fleet's single-writer lease sends no further
//! change. Reads pass through unchecked. The daemon's and `tether apply`'s fence is the lease
//! guard (`crate::daemon::lock::LeaseGuard`); the design is `docs/decisions/011-*.md`.
//!
//! # Guarantees
//! - No mutating request is sent while [`Fence::check`] refuses; the call fails at once with
//!   the provider's `Fenced` error naming the call and the reason.
//! - Every mutating call that was sent is recorded as one `tether::fence` debug event with the
//!   holder, the call, and when it started and finished (milliseconds since the Unix epoch):
//!   the per-mutation holder record.
//!
//! # Assumptions
//! - A request let through finishes before the lease could pass to someone else: the fence
//!   refuses a margin (a quarter of the TTL) before the lease expires. A lease cannot stop a
//!   request already in flight.

use super::tailscale::{
    self, AuthKey, AuthKeyId, CreatedAuthKey, Device, DeviceId, DeviceQuery, NewAuthKey, Tailnet,
};
use super::{
    Action, ActionId, Compute, Created, Image, Location, NewServer, Server, ServerId, ServerType,
    SshKey, hetzner,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};
use tether_schema::names::TailnetTag;

/// Decides whether this process may change the outside world now.
pub trait Fence: Send + Sync + std::fmt::Debug {
    /// `Ok` while mutating calls may be sent; else why not (naming the lease and its holder).
    ///
    /// # Errors
    /// The reason mutations are refused.
    fn check(&self) -> Result<(), String>;
    /// Who is acting, for the per-mutation record.
    fn holder(&self) -> &str;
}

/// A [`Compute`] and [`Tailnet`] whose mutating calls pass a [`Fence`] first.
#[derive(Debug, Clone)]
pub struct Fenced<I, F> {
    inner: I,
    fence: F,
}

impl<I, F: Fence> Fenced<I, F> {
    /// `inner`, fenced by `fence`.
    pub fn new(inner: I, fence: F) -> Self {
        Fenced { inner, fence }
    }

    /// Runs `call` if the fence allows, recording it; else returns `refused(reason)`.
    async fn mutate<T, E>(
        &self,
        name: &str,
        refused: impl FnOnce(String) -> E,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.fence.check().map_err(refused)?;
        let started = millis(SystemTime::now());
        let result = call.await;
        tracing::debug!(
            target: "tether::fence",
            holder = self.fence.holder(),
            call = name,
            started_ms = started,
            finished_ms = millis(SystemTime::now()),
            ok = result.is_ok(),
            "mutation"
        );
        result
    }
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn hetzner_refused(operation: &str) -> impl FnOnce(String) -> hetzner::Error + '_ {
    move |reason| hetzner::Error::Fenced {
        operation: operation.to_owned(),
        reason,
    }
}

fn tailscale_refused(operation: &str) -> impl FnOnce(String) -> tailscale::Error + '_ {
    move |reason| tailscale::Error::Fenced {
        operation: operation.to_owned(),
        reason,
    }
}

impl<I: Compute, F: Fence> Compute for Fenced<I, F> {
    fn list_servers(
        &self,
        label_selector: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Server>, hetzner::Error>> + Send {
        self.inner.list_servers(label_selector)
    }

    fn find_server(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Server>, hetzner::Error>> + Send {
        self.inner.find_server(name)
    }

    fn get_server(
        &self,
        id: ServerId,
    ) -> impl Future<Output = Result<Option<Server>, hetzner::Error>> + Send {
        self.inner.get_server(id)
    }

    async fn create_server(&self, new: &NewServer) -> Result<Created, hetzner::Error> {
        let operation = format!("create server {}", new.name);
        self.mutate(
            "create_server",
            hetzner_refused(&operation),
            self.inner.create_server(new),
        )
        .await
    }

    async fn delete_server(&self, id: ServerId) -> Result<Option<Action>, hetzner::Error> {
        let operation = format!("delete server {id}");
        self.mutate(
            "delete_server",
            hetzner_refused(&operation),
            self.inner.delete_server(id),
        )
        .await
    }

    async fn update_server(
        &self,
        id: ServerId,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<Server, hetzner::Error> {
        let operation = format!("update server {id}");
        self.mutate(
            "update_server",
            hetzner_refused(&operation),
            self.inner.update_server(id, name, labels),
        )
        .await
    }

    async fn power_on(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let operation = format!("power on server {id}");
        self.mutate(
            "poweron",
            hetzner_refused(&operation),
            self.inner.power_on(id),
        )
        .await
    }

    async fn power_off(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let operation = format!("power off server {id}");
        self.mutate(
            "poweroff",
            hetzner_refused(&operation),
            self.inner.power_off(id),
        )
        .await
    }

    async fn rebuild(
        &self,
        id: ServerId,
        image: &str,
        user_data: &crate::secret::Secret<String>,
    ) -> Result<Action, hetzner::Error> {
        let operation = format!("rebuild server {id}");
        self.mutate(
            "rebuild",
            hetzner_refused(&operation),
            self.inner.rebuild(id, image, user_data),
        )
        .await
    }

    async fn reset(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let operation = format!("reset server {id}");
        self.mutate("reset", hetzner_refused(&operation), self.inner.reset(id))
            .await
    }

    async fn shutdown(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let operation = format!("shut down server {id}");
        self.mutate(
            "shutdown",
            hetzner_refused(&operation),
            self.inner.shutdown(id),
        )
        .await
    }

    async fn change_type(
        &self,
        id: ServerId,
        server_type: &str,
        upgrade_disk: bool,
    ) -> Result<Action, hetzner::Error> {
        let operation = format!("change type of server {id}");
        self.mutate(
            "change_type",
            hetzner_refused(&operation),
            self.inner.change_type(id, server_type, upgrade_disk),
        )
        .await
    }

    fn wait_for_actions(
        &self,
        ids: &[ActionId],
    ) -> impl Future<Output = Result<Vec<Action>, hetzner::Error>> + Send {
        self.inner.wait_for_actions(ids)
    }

    fn server_types(&self) -> impl Future<Output = Result<Vec<ServerType>, hetzner::Error>> + Send {
        self.inner.server_types()
    }

    fn locations(&self) -> impl Future<Output = Result<Vec<Location>, hetzner::Error>> + Send {
        self.inner.locations()
    }

    fn images(&self) -> impl Future<Output = Result<Vec<Image>, hetzner::Error>> + Send {
        self.inner.images()
    }

    fn ssh_keys(&self) -> impl Future<Output = Result<Vec<SshKey>, hetzner::Error>> + Send {
        self.inner.ssh_keys()
    }
}

impl<I: Tailnet, F: Fence> Tailnet for Fenced<I, F> {
    fn list_devices(
        &self,
        query: &DeviceQuery,
    ) -> impl Future<Output = Result<Vec<Device>, tailscale::Error>> + Send {
        self.inner.list_devices(query)
    }

    fn get_device(
        &self,
        id: &DeviceId,
    ) -> impl Future<Output = Result<Option<Device>, tailscale::Error>> + Send {
        self.inner.get_device(id)
    }

    async fn delete_device(&self, id: &DeviceId) -> Result<bool, tailscale::Error> {
        let operation = format!("delete device {id}");
        self.mutate(
            "delete_device",
            tailscale_refused(&operation),
            self.inner.delete_device(id),
        )
        .await
    }

    async fn set_tags(&self, id: &DeviceId, tags: &[TailnetTag]) -> Result<(), tailscale::Error> {
        let operation = format!("set tags of device {id}");
        self.mutate(
            "set_tags",
            tailscale_refused(&operation),
            self.inner.set_tags(id, tags),
        )
        .await
    }

    async fn set_authorized(
        &self,
        id: &DeviceId,
        authorized: bool,
    ) -> Result<(), tailscale::Error> {
        let operation = format!("set authorization of device {id}");
        self.mutate(
            "set_authorized",
            tailscale_refused(&operation),
            self.inner.set_authorized(id, authorized),
        )
        .await
    }

    async fn create_auth_key(&self, new: &NewAuthKey) -> Result<CreatedAuthKey, tailscale::Error> {
        let operation = format!("create auth key `{}`", new.description);
        self.mutate(
            "create_auth_key",
            tailscale_refused(&operation),
            self.inner.create_auth_key(new),
        )
        .await
    }

    fn list_keys(&self) -> impl Future<Output = Result<Vec<AuthKey>, tailscale::Error>> + Send {
        self.inner.list_keys()
    }

    fn get_key(
        &self,
        id: &AuthKeyId,
    ) -> impl Future<Output = Result<Option<AuthKey>, tailscale::Error>> + Send {
        self.inner.get_key(id)
    }

    async fn delete_key(&self, id: &AuthKeyId) -> Result<bool, tailscale::Error> {
        let operation = format!("revoke auth key {id}");
        self.mutate(
            "delete_key",
            tailscale_refused(&operation),
            self.inner.delete_key(id),
        )
        .await
    }
}

#[cfg(test)]
mod tests;
