//! [`LeaseGuard`]: a held [`Lease`] kept alive in the background and turned into a
//! [`Fence`] for the provider clients. Start at [`LeaseGuard::start`].
//!
//! # Guarantees
//! - The lease is renewed every [`Lease::renew_every`] (a third of the TTL) for as long as the
//!   guard lives, whatever the holder is doing (a pass waiting minutes for Hetzner actions).
//! - [`LeaseGuard::fence`] refuses mutations from the moment the lease has less than
//!   [`Lease::margin`] left without a successful renewal, or a renewal found it taken over;
//!   from then on the guard is lost for good ([`LeaseGuard::lost`] completes) and its holder
//!   must acquire a new lease before acting again.

use super::{Lease, LockError, rfc3339};
use crate::cloud::fence::Fence;
use crate::cloud::retry::Clock;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether the guarded lease may still be acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    /// Mutations are allowed until this time (the expiry minus the margin).
    Until(SystemTime),
    /// Lost for good, with the reason.
    Lost(String),
}

/// A lease renewed in the background. Dropping it stops the renewals (the lease then expires
/// on its own); [`LeaseGuard::release`] gives it up at once.
#[derive(Debug)]
pub struct LeaseGuard<C: Clock + Clone + 'static> {
    lease: Arc<Mutex<Lease<C>>>,
    state: watch::Receiver<Held>,
    fence: LeaseFence<C>,
    renewer: Renewer,
}

/// The renewal task and the switch that stops it between renewals; aborted when dropped.
#[derive(Debug)]
struct Renewer {
    task: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Drop for Renewer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The guard's view for the provider clients: cheap to clone.
#[derive(Debug, Clone)]
pub struct LeaseFence<C> {
    state: watch::Receiver<Held>,
    holder: String,
    fleet: String,
    clock: C,
}

impl<C: Clock + Clone + 'static> LeaseGuard<C> {
    /// Guards `lease`: renews it every [`Lease::renew_every`] from now on.
    pub fn start(lease: Lease<C>, clock: C) -> LeaseGuard<C> {
        let until = lease.record().expires_at - lease.margin();
        let (tx, state) = watch::channel(Held::Until(until));
        let fence = LeaseFence {
            state: state.clone(),
            holder: lease.record().holder.clone(),
            fleet: lease.fleet.clone(),
            clock: clock.clone(),
        };
        let every = lease.renew_every();
        let lease = Arc::new(Mutex::new(lease));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(renew_loop(lease.clone(), tx, every, clock, stopped));
        let renewer = Renewer {
            task: Some(task),
            stop,
        };
        LeaseGuard {
            lease,
            state,
            fence,
            renewer,
        }
    }

    /// The fence for [`crate::cloud::fence::Fenced`] clients.
    pub fn fence(&self) -> LeaseFence<C> {
        self.fence.clone()
    }

    /// Why the lease was lost, once it was.
    pub fn lost_reason(&self) -> Option<String> {
        match &*self.state.borrow() {
            Held::Lost(reason) => Some(reason.clone()),
            Held::Until(_) => None,
        }
    }

    /// Completes (with the reason) once the lease is lost; never while it is held.
    pub async fn lost(&self) -> String {
        let mut state = self.state.clone();
        match state.wait_for(|h| matches!(h, Held::Lost(_))).await {
            Ok(held) => match &*held {
                Held::Lost(reason) => reason.clone(),
                Held::Until(_) => String::new(),
            },
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops renewing and gives the lease up so another process can take it at once.
    ///
    /// # Errors
    /// The lease was lost or cannot be written; it then expires on its own.
    pub async fn release(self) -> Result<(), String> {
        let LeaseGuard {
            lease, mut renewer, ..
        } = self;
        let _ = renewer.stop.send(true);
        if let Some(task) = renewer.task.take() {
            let _ = task.await;
        }
        tokio::task::spawn_blocking(move || match Arc::try_unwrap(lease) {
            Ok(lease) => lease
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .release()
                .map_err(|e| e.to_string()),
            Err(_) => Err("a renewal is still in flight".to_owned()),
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// Renews every `every`; marks the lease lost when a renewal finds it taken, or when its
/// margin passes without a successful renewal (a renewal that hangs included).
async fn renew_loop<C: Clock + Clone + 'static>(
    lease: Arc<Mutex<Lease<C>>>,
    tx: watch::Sender<Held>,
    every: Duration,
    clock: C,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_error: Option<String> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let Held::Until(until) = tx.borrow().clone() else {
            return;
        };
        let left = until.duration_since(clock.now()).unwrap_or_default();
        let wait = if last_error.is_some() {
            (every / 4).min(left)
        } else {
            every.min(left)
        };
        tokio::select! {
            () = clock.sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if clock.now() >= until {
            let reason = match last_error.take() {
                Some(e) => format!("the lease could not be renewed before its margin ran out: {e}"),
                None => "the lease could not be renewed before its margin ran out".to_owned(),
            };
            tracing::error!(%reason, "single-writer lease lost");
            let _ = tx.send(Held::Lost(reason));
            return;
        }
        let renewal = {
            let lease = lease.clone();
            tokio::task::spawn_blocking(move || {
                let mut lease = lease.lock().unwrap_or_else(PoisonError::into_inner);
                lease
                    .renew()
                    .map(|()| lease.record().expires_at - lease.margin())
            })
        };
        // A renewal that hangs (a git remote that stops answering) is bounded in real time.
        let left = until.duration_since(clock.now()).unwrap_or_default();
        let outcome = tokio::select! {
            r = renewal => r,
            () = tokio::time::sleep(left) => {
                last_error = Some("the renewal did not finish in time".to_owned());
                continue;
            }
        };
        match outcome {
            Ok(Ok(until)) => {
                last_error = None;
                tracing::debug!(valid_until = %rfc3339(until), "lease renewed");
                let _ = tx.send(Held::Until(until));
            }
            Ok(Err(e @ LockError::Lost { .. })) => {
                tracing::error!(error = %e, "single-writer lease lost");
                let _ = tx.send(Held::Lost(e.to_string()));
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, hint = e.hint(), "lease renewal failed; retrying");
                last_error = Some(e.to_string());
            }
            Err(e) => last_error = Some(format!("the renewal task failed: {e}")),
        }
    }
}

impl<C: Clock> Fence for LeaseFence<C> {
    fn check(&self) -> Result<(), String> {
        match &*self.state.borrow() {
            Held::Lost(reason) => Err(format!(
                "`{}` no longer holds the single-writer lease on fleet `{}`: {reason}",
                self.holder, self.fleet
            )),
            Held::Until(until) if self.clock.now() < *until => Ok(()),
            Held::Until(until) => Err(format!(
                "`{}`'s single-writer lease on fleet `{}` was not renewed in time (valid until {})",
                self.holder,
                self.fleet,
                rfc3339(*until)
            )),
        }
    }

    fn holder(&self) -> &str {
        &self.holder
    }
}

#[cfg(test)]
mod tests;
