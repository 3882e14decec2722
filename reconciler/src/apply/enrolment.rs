//! The device watch of one apply pass: every create waiting for its server to enrol registers
//! here, and one poller ([`DeviceWatch::run`]) lists the tailnet's devices once per tick for
//! all of them. Fifty servers booting at once cost one `GET /tailnet/-/devices` per tick, not
//! fifty.
//!
//! The tick starts at [`Options::device_poll`](super::Options) and grows by half after each
//! listing that enrolled nobody, up to [`CAP_FACTOR`] times it; a listing that enrolled
//! someone brings it back to the start (enrolments come in waves: the servers of one pass
//! boot together).
//!
//! A create learns which of its agent's devices existed before its server from
//! [`DeviceWatch::known`]: the newest listing of the pass, taken once for the first create and
//! kept fresh by the poller. So no create lists the devices itself.

use crate::cloud::retry::{Clock, SharedClock};
use crate::cloud::tailscale::{Device, DeviceId, DeviceQuery, Tailnet};
use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tether_schema::Agent;
use tokio::sync::{Notify, OnceCell, oneshot};

/// The tick grows up to this many times [`Options::device_poll`](super::Options).
pub const CAP_FACTOR: u32 = 4;

type Reply = oneshot::Sender<Result<DeviceId, String>>;

/// One create waiting for its device.
struct Waiter {
    hostname: String,
    tags: Vec<String>,
    before: BTreeSet<DeviceId>,
    reply: Reply,
}

impl Waiter {
    /// A device that is this waiter's new one: its hostname, all its tags, online, and not
    /// one of the devices that existed before its server.
    fn finds<'d>(&self, devices: &'d [Device]) -> Option<&'d Device> {
        devices.iter().find(|d| {
            d.online
                && d.hostname == self.hostname
                && self.tags.iter().all(|t| d.tags.contains(t))
                && !self.before.contains(&d.id)
        })
    }
}

#[derive(Default)]
struct State {
    waiters: HashMap<u64, Waiter>,
    next_id: u64,
    latest: Option<Arc<Vec<Device>>>,
}

/// The shared device watch of one pass. Drive it with [`DeviceWatch::run`] alongside the
/// actions.
pub(super) struct DeviceWatch {
    base: Duration,
    clock: SharedClock,
    state: Mutex<State>,
    wake: Notify,
    first: OnceCell<Arc<Vec<Device>>>,
}

impl DeviceWatch {
    /// A watch ticking from `base` (at least a millisecond) on `clock`.
    pub fn new(base: Duration, clock: SharedClock) -> Self {
        DeviceWatch {
            base: base.max(Duration::from_millis(1)),
            clock,
            state: Mutex::default(),
            wake: Notify::new(),
            first: OnceCell::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The devices of `agent` (its hostname) in the newest listing of this pass; the first
    /// call of a pass lists the devices (once, however many ask at the same time).
    ///
    /// # Errors
    /// The first listing failed (the message names it).
    pub async fn known<T: Tailnet>(
        &self,
        tailnet: &T,
        agent: &Agent,
    ) -> Result<BTreeSet<DeviceId>, String> {
        let latest = self.state().latest.clone();
        let listing = match latest {
            Some(listing) => listing,
            None => self
                .first
                .get_or_try_init(|| async {
                    let listed = list(tailnet).await?;
                    let mut state = self.state();
                    Ok::<_, String>(state.latest.get_or_insert(listed).clone())
                })
                .await?
                .clone(),
        };
        Ok(listing
            .iter()
            .filter(|d| d.hostname == agent.name.as_str())
            .map(|d| d.id.clone())
            .collect())
    }

    /// Waits until `deadline` for an online device of `agent` that is not in `before`.
    /// `Ok(None)`: none came in time.
    ///
    /// # Errors
    /// A listing failed while this create was waiting.
    pub async fn wait(
        &self,
        agent: &Agent,
        before: BTreeSet<DeviceId>,
        deadline: SystemTime,
    ) -> Result<Option<DeviceId>, String> {
        let (reply, rx) = oneshot::channel();
        let id = {
            let mut state = self.state();
            let id = state.next_id;
            state.next_id += 1;
            state.waiters.insert(
                id,
                Waiter {
                    hostname: agent.name.as_str().to_owned(),
                    tags: agent.tags.iter().map(|t| t.as_str().to_owned()).collect(),
                    before,
                    reply,
                },
            );
            id
        };
        self.wake.notify_one();
        let mut rx = std::pin::pin!(rx);
        let left = deadline
            .duration_since(self.clock.now())
            .unwrap_or_default();
        let answer = tokio::select! {
            answer = &mut rx => Some(answer),
            () = self.clock.sleep(left) => None,
        };
        match answer {
            Some(Ok(found)) => found.map(Some),
            Some(Err(_)) => Err("the device watch stopped before the device enrolled".to_owned()),
            None => {
                let gone = self.state().waiters.remove(&id).is_none();
                match rx.try_recv() {
                    Ok(found) if gone => found.map(Some),
                    _ => Ok(None),
                }
            }
        }
    }

    /// The poller: while anyone waits, lists the devices each tick and answers every waiter
    /// whose device is there. Never returns; the pass drops it once its actions are done.
    pub async fn run<T: Tailnet>(&self, tailnet: &T) -> Infallible {
        loop {
            while self.state().waiters.is_empty() {
                self.wake.notified().await;
            }
            let mut pause = self.base;
            loop {
                self.clock.sleep(pause).await;
                let listed = list(tailnet).await;
                let found = self.deliver(listed);
                pause = if found > 0 {
                    self.base
                } else {
                    (pause.mul_f64(1.5)).min(self.base * CAP_FACTOR)
                };
                if self.state().waiters.is_empty() {
                    break;
                }
            }
        }
    }

    /// Answers the waiters a listing settles; returns how many enrolled.
    fn deliver(&self, listed: Result<Arc<Vec<Device>>, String>) -> usize {
        let mut state = self.state();
        match listed {
            Ok(devices) => {
                let done: Vec<(u64, DeviceId)> = state
                    .waiters
                    .iter()
                    .filter_map(|(id, w)| w.finds(&devices).map(|d| (*id, d.id.clone())))
                    .collect();
                for (id, device) in &done {
                    if let Some(waiter) = state.waiters.remove(id) {
                        let _ = waiter.reply.send(Ok(device.clone()));
                    }
                }
                state.latest = Some(devices);
                done.len()
            }
            Err(reason) => {
                for (_, waiter) in state.waiters.drain() {
                    let _ = waiter.reply.send(Err(reason.clone()));
                }
                0
            }
        }
    }
}

async fn list<T: Tailnet>(tailnet: &T) -> Result<Arc<Vec<Device>>, String> {
    tailnet
        .list_devices(&DeviceQuery::default())
        .await
        .map(Arc::new)
        .map_err(|e| format!("listing devices: {e}"))
}
