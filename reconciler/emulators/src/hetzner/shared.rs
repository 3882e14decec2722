//! [`Shared`]: what every handler and lifecycle task holds — the model, the catalog, the
//! settings, the rate limiter, the machine hooks and the stop signal.

use super::catalog::Catalog;
use super::ratelimit::Limiter;
use super::state::{HookEvent, Model};
use super::timing::Timing;
use crate::MachineHooks;
use crate::Token;
use crate::emulator::{Faults, RequestLog};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use tokio::sync::watch;

/// State shared by the HTTP handlers, the lifecycle tasks and the [`super::HetznerEmulator`]
/// handle.
#[derive(Debug)]
pub struct Shared {
    /// Servers, actions and SSH keys.
    pub model: Mutex<Model>,
    /// Locations, server types and images.
    pub catalog: Catalog,
    /// Action latencies and boot delay.
    pub timing: Timing,
    /// Most servers the project may have.
    pub server_limit: usize,
    /// Tokens that authenticate (one project).
    pub tokens: Vec<Token>,
    /// Per-token buckets.
    pub limiter: Limiter,
    /// Who hears about boots and stops.
    pub hooks: RwLock<Option<Arc<dyn MachineHooks>>>,
    /// Injected faults (also settable over `/_emulator/faults`).
    pub faults: Arc<Faults>,
    /// Request counters.
    pub requests: Arc<RequestLog>,
    /// Set to `true` on shutdown; lifecycle tasks stop.
    pub stop: watch::Sender<bool>,
    /// A misbehaving cloud for tests: servers are created without the labels asked for.
    pub drop_labels: AtomicBool,
}

impl Shared {
    /// Locks the model (a panicked holder cannot leave it half-changed: every change is one
    /// assignment, so the poisoned value is still consistent).
    pub fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls the hooks for `events`, in order; call without holding the model lock.
    pub fn fire(&self, events: Vec<HookEvent>) {
        if events.is_empty() {
            return;
        }
        let hooks = self
            .hooks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(hooks) = hooks else {
            return;
        };
        for event in events {
            match event {
                HookEvent::Booted(server) => hooks.booted(&server),
                HookEvent::Stopped(id) => hooks.stopped(id),
                HookEvent::Rebuilt(id) => hooks.rebuilt(id),
            }
        }
    }
}
