//! The slots of one apply pass: [`Options::concurrency`](super::Options) bounds the actions
//! *making requests* at once, not the actions in progress. An action takes a slot to start
//! ([`Gate::active`]) and gives it back for as long as it only waits ([`waiting`]: for its
//! Hetzner actions, polled together by the client, or for its device, listed once per tick
//! for all by the pass's device watch), then takes one again to go on. Each action makes one
//! request at a time, so at most `concurrency` requests of the pass's actions are in flight,
//! each still paced by the client's rate limiter; a pass of 500 creates waits for all of them
//! at once.
//!
//! The slot an action holds travels with it as a task-local value, so the steps need not pass
//! it around: [`waiting`] outside an action just waits.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slot of the action being polled, and where to get one back after waiting.
struct Held {
    slots: Arc<Semaphore>,
    permit: RefCell<Option<OwnedSemaphorePermit>>,
}

tokio::task_local! {
    static SLOT: Held;
}

/// The slots of one pass.
#[derive(Debug)]
pub(super) struct Gate {
    slots: Arc<Semaphore>,
}

impl Gate {
    /// `concurrency` slots (at least one).
    pub fn new(concurrency: usize) -> Self {
        Gate {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Waits for a free slot, then runs `start()`'s future holding it (except where it
    /// [`waiting`]s). `start` is called only once the slot is held: the moment the action
    /// starts, when it can still decide not to.
    pub async fn active<F: Future>(&self, start: impl FnOnce() -> F) -> F::Output {
        let permit = Arc::clone(&self.slots).acquire_owned().await.ok();
        let held = Held {
            slots: Arc::clone(&self.slots),
            permit: RefCell::new(permit),
        };
        SLOT.scope(held, start()).await
    }
}

/// Awaits `wait` without the current action's slot, and takes a slot again before returning.
pub(super) async fn waiting<F: Future>(wait: F) -> F::Output {
    let released = SLOT
        .try_with(|held| {
            held.permit
                .borrow_mut()
                .take()
                .map(|_| Arc::clone(&held.slots))
        })
        .ok()
        .flatten();
    let output = wait.await;
    if let Some(slots) = released {
        let permit = slots.acquire_owned().await.ok();
        let _ = SLOT.try_with(|held| *held.permit.borrow_mut() = permit);
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn waiting_actions_hold_no_slot_and_active_ones_never_exceed_the_slots() {
        let gate = Gate::new(2);
        let active = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let work = || async {
            for _ in 0..3 {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                active.fetch_sub(1, Ordering::SeqCst);
                waiting(tokio::time::sleep(Duration::from_millis(200))).await;
            }
        };
        let started = std::time::Instant::now();
        futures_util::future::join_all((0..20).map(|_| gate.active(work))).await;
        assert_eq!(most.load(Ordering::SeqCst), 2, "two slots, never more");
        assert!(
            started.elapsed() < Duration::from_millis(3 * 200 * 4),
            "twenty actions waited together, not two at a time: {:?}",
            started.elapsed()
        );
    }
}
