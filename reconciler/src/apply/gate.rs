//! The request gate of one apply pass: [`Options::concurrency`](super::Options) bounds the
//! requests in flight, not the actions. [`Gated`] wraps a [`Compute`] or a [`Tailnet`] so that
//! every call holds one permit while it runs (its retries and rate-limit pacing included), and
//! [`Compute::wait_for_actions`] holds none: a create waiting for its actions or its device
//! costs no slot, so a pass of 500 creates waits for all of them at once.

use crate::cloud::tailscale::{
    self, AuthKey, AuthKeyId, CreatedAuthKey, Device, DeviceId, DeviceQuery, NewAuthKey, Tailnet,
};
use crate::cloud::{
    Action, ActionId, Compute, Created, Image, Location, NewServer, Server, ServerId, ServerType,
    SshKey, hetzner,
};
use std::collections::BTreeMap;
use tether_schema::names::TailnetTag;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Permits for requests in flight.
#[derive(Debug)]
pub(super) struct Gate {
    permits: Semaphore,
}

impl Gate {
    /// A gate letting `concurrency` requests (at least one) through at once.
    pub fn new(concurrency: usize) -> Self {
        Gate {
            permits: Semaphore::new(concurrency.max(1)),
        }
    }

    /// Waits for a free request slot. The semaphore is never closed, so a permit always comes.
    pub async fn permit(&self) -> Option<SemaphorePermit<'_>> {
        self.permits.acquire().await.ok()
    }

    /// `inner`, with every request through this gate.
    pub fn wrap<'a, X>(&'a self, inner: &'a X) -> Gated<'a, X> {
        Gated { inner, gate: self }
    }
}

/// A provider whose requests pass through a [`Gate`].
#[derive(Debug)]
pub(super) struct Gated<'a, X> {
    inner: &'a X,
    gate: &'a Gate,
}

impl<C: Compute> Compute for Gated<'_, C> {
    async fn list_servers(
        &self,
        label_selector: Option<&str>,
    ) -> Result<Vec<Server>, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.list_servers(label_selector).await
    }

    async fn find_server(&self, name: &str) -> Result<Option<Server>, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.find_server(name).await
    }

    async fn get_server(&self, id: ServerId) -> Result<Option<Server>, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.get_server(id).await
    }

    async fn create_server(&self, new: &NewServer) -> Result<Created, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.create_server(new).await
    }

    async fn delete_server(&self, id: ServerId) -> Result<Option<Action>, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.delete_server(id).await
    }

    async fn update_server(
        &self,
        id: ServerId,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<Server, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.update_server(id, name, labels).await
    }

    async fn power_on(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.power_on(id).await
    }

    async fn power_off(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.power_off(id).await
    }

    async fn shutdown(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.shutdown(id).await
    }

    async fn change_type(
        &self,
        id: ServerId,
        server_type: &str,
        upgrade_disk: bool,
    ) -> Result<Action, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.change_type(id, server_type, upgrade_disk).await
    }

    /// Holds no slot: waiting is not a request of this caller (the client's shared poller
    /// makes the requests).
    async fn wait_for_actions(&self, ids: &[ActionId]) -> Result<Vec<Action>, hetzner::Error> {
        self.inner.wait_for_actions(ids).await
    }

    async fn server_types(&self) -> Result<Vec<ServerType>, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.server_types().await
    }

    async fn locations(&self) -> Result<Vec<Location>, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.locations().await
    }

    async fn images(&self) -> Result<Vec<Image>, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.images().await
    }

    async fn ssh_keys(&self) -> Result<Vec<SshKey>, hetzner::Error> {
        let _slot = self.gate.permit().await;
        self.inner.ssh_keys().await
    }
}

impl<T: Tailnet> Tailnet for Gated<'_, T> {
    async fn list_devices(&self, query: &DeviceQuery) -> Result<Vec<Device>, tailscale::Error> {
        let _slot = self.gate.permit().await;
        self.inner.list_devices(query).await
    }

    async fn get_device(&self, id: &DeviceId) -> Result<Option<Device>, tailscale::Error> {
        let _slot = self.gate.permit().await;
        self.inner.get_device(id).await
    }

    async fn delete_device(&self, id: &DeviceId) -> Result<bool, tailscale::Error> {
        let _slot = self.gate.permit().await;
        self.inner.delete_device(id).await
    }

    async fn set_tags(&self, id: &DeviceId, tags: &[TailnetTag]) -> Result<(), tailscale::Error> {
        let _slot = self.gate.permit().await;
        self.inner.set_tags(id, tags).await
    }

    async fn set_authorized(
        &self,
        id: &DeviceId,
        authorized: bool,
    ) -> Result<(), tailscale::Error> {
        let _slot = self.gate.permit().await;
        self.inner.set_authorized(id, authorized).await
    }

    async fn create_auth_key(&self, new: &NewAuthKey) -> Result<CreatedAuthKey, tailscale::Error> {
        let _slot = self.gate.permit().await;
        self.inner.create_auth_key(new).await
    }

    async fn list_keys(&self) -> Result<Vec<AuthKey>, tailscale::Error> {
        let _slot = self.gate.permit().await;
        self.inner.list_keys().await
    }

    async fn get_key(&self, id: &AuthKeyId) -> Result<Option<AuthKey>, tailscale::Error> {
        let _slot = self.gate.permit().await;
        self.inner.get_key(id).await
    }

    async fn delete_key(&self, id: &AuthKeyId) -> Result<bool, tailscale::Error> {
        let _slot = self.gate.permit().await;
        self.inner.delete_key(id).await
    }
}
