//! The fault injector: [`Injected`] wraps tether's real Hetzner and Tailscale clients (the
//! `Compute` and `Tailnet` traits, as `cloud/fence.rs` does) and, following a [`Script`], counts
//! every provider call that is a step of an operation and, at the chosen step, answers with an
//! error, loses the answer of a call it performed, or "kills the process" right after the call.
//!
//! # Guarantees
//! - An [`Fault::Error`] call is never sent: the provider's state is untouched and the caller
//!   gets a 503 answer, as the client returns it once its own retries ran out.
//! - A [`Fault::Lost`] call is sent and finishes; the caller gets a timeout instead of the
//!   answer (the request may have applied, and did).
//! - After a [`Fault::Kill`] no call of that process is sent or answered again: the call that
//!   was killed and every later one stay pending forever, and the harness, woken through
//!   [`Script::killed`], drops the pass.

use super::answers::{Faults, hetzner_faults, tailscale_faults};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use tether::cloud::tailscale::{
    self, AuthKey, AuthKeyId, CreatedAuthKey, Device, DeviceId, DeviceQuery, NewAuthKey, Tailnet,
};
use tether::cloud::{
    Action, ActionId, Compute, Created, Image, Location, NewServer, Server, ServerId, ServerType,
    SshKey, hetzner,
};
use tether::secret::Secret;
use tether_schema::names::TailnetTag;
use tokio::sync::watch;

/// What goes wrong at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The call is not performed; a 503 comes back.
    Error,
    /// The call is performed; its answer never arrives (a timeout comes back).
    Lost,
    /// The call is performed, then the process dies: nothing more of the pass runs.
    Kill,
}

impl Fault {
    /// Every kind, in the order the matrix tries them.
    pub const ALL: [Fault; 3] = [Fault::Error, Fault::Lost, Fault::Kill];

    /// The kind's name in case identifiers.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Error => "error",
            Fault::Lost => "lost",
            Fault::Kill => "kill",
        }
    }
}

/// One provider call a pass made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The trait method, e.g. `create_server`.
    pub method: &'static str,
    /// Its target, e.g. `server 3` or `a`.
    pub target: String,
    /// Its position among the steps of the pass.
    pub step: usize,
    /// The fault injected at it, if any.
    pub fault: Option<Fault>,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.target)
    }
}

/// The faults of one process (one pass) and what it did: shared by its two clients.
#[derive(Debug)]
pub struct Script {
    faults: BTreeMap<usize, Fault>,
    state: Mutex<ScriptState>,
    dead: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct ScriptState {
    calls: Vec<Call>,
    steps: usize,
    answered: BTreeSet<u64>,
}

impl Script {
    /// A process that injects `faults`, by step.
    pub fn new(faults: BTreeMap<usize, Fault>) -> Arc<Script> {
        Arc::new(Script {
            faults,
            state: Mutex::new(ScriptState::default()),
            dead: watch::channel(false).0,
        })
    }

    /// A process without faults.
    pub fn clean() -> Arc<Script> {
        Script::new(BTreeMap::new())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ScriptState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every step made, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The Hetzner action ids answered to the pass.
    pub fn answered_actions(&self) -> BTreeSet<u64> {
        self.state().answered.clone()
    }

    /// Resolves once the process was killed.
    pub async fn killed(&self) {
        let mut dead = self.dead.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = dead.wait_for(|d| *d).await;
    }

    fn is_dead(&self) -> bool {
        *self.dead.borrow()
    }

    fn answered(&self, ids: impl IntoIterator<Item = ActionId>) {
        self.state().answered.extend(ids.into_iter().map(|a| a.0));
    }

    /// Runs `call`, a read that is no step: only that a dead process never sends it.
    async fn read<T>(&self, call: impl Future<Output = T>) -> T {
        if self.is_dead() {
            return std::future::pending().await;
        }
        call.await
    }

    /// Runs `call`, step `method target`, with the fault scripted for it.
    async fn step<T, E>(
        &self,
        method: &'static str,
        target: String,
        faults: &Faults<E>,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        if self.is_dead() {
            return std::future::pending().await;
        }
        let fault = {
            let mut state = self.state();
            let step = state.steps;
            state.steps += 1;
            let fault = self.faults.get(&step).copied();
            state.calls.push(Call {
                method,
                target,
                step,
                fault,
            });
            fault
        };
        match fault {
            None => call.await,
            Some(Fault::Error) => Err((faults.error)()),
            Some(Fault::Lost) => {
                let _performed = call.await;
                Err((faults.lost)().await)
            }
            Some(Fault::Kill) => {
                let _performed = call.await;
                self.dead.send_replace(true);
                std::future::pending().await
            }
        }
    }
}

/// A client of tether whose calls follow a [`Script`].
#[derive(Debug, Clone)]
pub struct Injected<I> {
    inner: I,
    script: Arc<Script>,
}

impl<I> Injected<I> {
    /// `inner`, following `script`.
    pub fn new(inner: I, script: Arc<Script>) -> Self {
        Injected { inner, script }
    }
}

impl<I: Compute> Compute for Injected<I> {
    async fn list_servers(
        &self,
        label_selector: Option<&str>,
    ) -> Result<Vec<Server>, hetzner::Error> {
        self.script
            .read(self.inner.list_servers(label_selector))
            .await
    }

    async fn find_server(&self, name: &str) -> Result<Option<Server>, hetzner::Error> {
        self.script.read(self.inner.find_server(name)).await
    }

    async fn get_server(&self, id: ServerId) -> Result<Option<Server>, hetzner::Error> {
        self.script.read(self.inner.get_server(id)).await
    }

    async fn create_server(&self, new: &NewServer) -> Result<Created, hetzner::Error> {
        let faults = hetzner_faults(format!("create server {}", new.name));
        let created = self
            .script
            .step(
                "create_server",
                new.name.clone(),
                &faults,
                self.inner.create_server(new),
            )
            .await?;
        self.script.answered(
            std::iter::once(created.action.id).chain(created.next_actions.iter().map(|a| a.id)),
        );
        Ok(created)
    }

    async fn delete_server(&self, id: ServerId) -> Result<Option<Action>, hetzner::Error> {
        let faults = hetzner_faults(format!("delete server {id}"));
        let deleted = self
            .script
            .step(
                "delete_server",
                format!("server {id}"),
                &faults,
                self.inner.delete_server(id),
            )
            .await?;
        self.script.answered(deleted.iter().map(|a| a.id));
        Ok(deleted)
    }

    async fn update_server(
        &self,
        id: ServerId,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<Server, hetzner::Error> {
        let faults = hetzner_faults(format!("update server {id}"));
        let target = match name {
            Some(name) => format!("server {id} as {name}"),
            None => format!("server {id}"),
        };
        self.script
            .step(
                "update_server",
                target,
                &faults,
                self.inner.update_server(id, name, labels),
            )
            .await
    }

    async fn power_on(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        self.action("power_on", id, self.inner.power_on(id)).await
    }

    async fn power_off(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        self.action("power_off", id, self.inner.power_off(id)).await
    }

    async fn shutdown(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        self.action("shutdown", id, self.inner.shutdown(id)).await
    }

    async fn change_type(
        &self,
        id: ServerId,
        server_type: &str,
        upgrade_disk: bool,
    ) -> Result<Action, hetzner::Error> {
        self.action(
            "change_type",
            id,
            self.inner.change_type(id, server_type, upgrade_disk),
        )
        .await
    }

    async fn wait_for_actions(&self, ids: &[ActionId]) -> Result<Vec<Action>, hetzner::Error> {
        let target = ids
            .iter()
            .map(|a| a.0.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let faults = hetzner_faults(format!("wait for actions {target}"));
        let actions = self
            .script
            .step(
                "wait_for_actions",
                format!("actions {target}"),
                &faults,
                self.inner.wait_for_actions(ids),
            )
            .await?;
        self.script.answered(actions.iter().map(|a| a.id));
        Ok(actions)
    }

    async fn server_types(&self) -> Result<Vec<ServerType>, hetzner::Error> {
        self.script.read(self.inner.server_types()).await
    }

    async fn locations(&self) -> Result<Vec<Location>, hetzner::Error> {
        self.script.read(self.inner.locations()).await
    }

    async fn images(&self) -> Result<Vec<Image>, hetzner::Error> {
        self.script.read(self.inner.images()).await
    }

    async fn ssh_keys(&self) -> Result<Vec<SshKey>, hetzner::Error> {
        self.script.read(self.inner.ssh_keys()).await
    }

    async fn rebuild(
        &self,
        id: ServerId,
        image: &str,
        user_data: &Secret<String>,
    ) -> Result<Action, hetzner::Error> {
        self.action("rebuild", id, self.inner.rebuild(id, image, user_data))
            .await
    }

    async fn reset(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        self.action("reset", id, self.inner.reset(id)).await
    }
}

impl<I: Compute> Injected<I> {
    /// A server action call (power, type, rebuild, reset) as a step, its action id noted.
    async fn action(
        &self,
        method: &'static str,
        id: ServerId,
        call: impl Future<Output = Result<Action, hetzner::Error>>,
    ) -> Result<Action, hetzner::Error> {
        let faults = hetzner_faults(format!("{method} server {id}"));
        let action = self
            .script
            .step(method, format!("server {id}"), &faults, call)
            .await?;
        self.script.answered([action.id]);
        Ok(action)
    }
}

impl<I: Tailnet> Tailnet for Injected<I> {
    async fn list_devices(&self, query: &DeviceQuery) -> Result<Vec<Device>, tailscale::Error> {
        self.script.read(self.inner.list_devices(query)).await
    }

    async fn get_device(&self, id: &DeviceId) -> Result<Option<Device>, tailscale::Error> {
        self.script.read(self.inner.get_device(id)).await
    }

    async fn delete_device(&self, id: &DeviceId) -> Result<bool, tailscale::Error> {
        let faults = tailscale_faults(format!("delete device {id}"));
        self.script
            .step(
                "delete_device",
                format!("device {id}"),
                &faults,
                self.inner.delete_device(id),
            )
            .await
    }

    async fn set_tags(&self, id: &DeviceId, tags: &[TailnetTag]) -> Result<(), tailscale::Error> {
        let faults = tailscale_faults(format!("set tags of device {id}"));
        self.script
            .step(
                "set_tags",
                format!("device {id}"),
                &faults,
                self.inner.set_tags(id, tags),
            )
            .await
    }

    async fn set_authorized(
        &self,
        id: &DeviceId,
        authorized: bool,
    ) -> Result<(), tailscale::Error> {
        let faults = tailscale_faults(format!("authorize device {id}"));
        self.script
            .step(
                "set_authorized",
                format!("device {id} {authorized}"),
                &faults,
                self.inner.set_authorized(id, authorized),
            )
            .await
    }

    async fn create_auth_key(&self, new: &NewAuthKey) -> Result<CreatedAuthKey, tailscale::Error> {
        let faults = tailscale_faults(format!("create auth key {}", new.description));
        self.script
            .step(
                "create_auth_key",
                new.description.clone(),
                &faults,
                self.inner.create_auth_key(new),
            )
            .await
    }

    async fn list_keys(&self) -> Result<Vec<AuthKey>, tailscale::Error> {
        self.script.read(self.inner.list_keys()).await
    }

    async fn get_key(&self, id: &AuthKeyId) -> Result<Option<AuthKey>, tailscale::Error> {
        self.script.read(self.inner.get_key(id)).await
    }

    async fn delete_key(&self, id: &AuthKeyId) -> Result<bool, tailscale::Error> {
        let faults = tailscale_faults(format!("revoke auth key {id}"));
        self.script
            .step(
                "delete_key",
                format!("key {id}"),
                &faults,
                self.inner.delete_key(id),
            )
            .await
    }
}
