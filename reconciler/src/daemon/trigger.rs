//! Why a reconcile runs ([`Trigger`]) and the [`Coalescer`] that turns any number of triggers
//! into one reconcile: producers ([`TriggerSender`], cheap to clone, never blocking) add to a
//! bounded pending set; the reconcile loop awaits [`Coalescer::next`] and gets everything that
//! arrived, after a short settle window so a burst becomes one batch.
//!
//! A reconcile in progress plus any number of new triggers makes exactly one follow-up batch.
//! [`Schedule`] jitters the period so several daemons do not align; the periodic producer is
//! `super::budget::run_interval`, which stretches the period to the rate-limit budget.

use crate::cloud::retry::Clock;
use rand::Rng;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// Most distinct triggers kept for one batch; more are counted in [`TriggerSet::dropped`].
pub const MAX_PENDING: usize = 1024;
/// How long [`Coalescer::next`] waits after the first trigger of a batch for more to arrive.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(100);

/// A reason to reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// The periodic timer fired.
    Interval,
    /// A file under the watched fleet directory changed.
    FileChange {
        /// The changed path.
        path: PathBuf,
    },
    /// GitHub delivered a push to the watched branch.
    Webhook {
        /// The `X-GitHub-Delivery` id.
        delivery: String,
        /// The pushed commit (`after`).
        commit: String,
    },
    /// Asked for explicitly (a command, a test).
    Manual,
}

/// The triggers behind one reconcile, deduplicated, in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerSet {
    triggers: Vec<Trigger>,
    dropped: usize,
}

impl TriggerSet {
    /// The distinct triggers, first arrival first.
    pub fn triggers(&self) -> &[Trigger] {
        &self.triggers
    }

    /// Triggers not kept because the batch already held [`MAX_PENDING`].
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Whether the set holds no trigger.
    pub fn is_empty(&self) -> bool {
        self.triggers.is_empty() && self.dropped == 0
    }

    /// The commit of the last webhook trigger, if any.
    pub fn latest_webhook_commit(&self) -> Option<&str> {
        self.triggers.iter().rev().find_map(|t| match t {
            Trigger::Webhook { commit, .. } => Some(commit.as_str()),
            _ => None,
        })
    }

    /// A short description for logs: `interval, 3 file changes, 1 webhook`.
    pub fn summary(&self) -> String {
        let count = |f: fn(&Trigger) -> bool| self.triggers.iter().filter(|t| f(t)).count();
        let plural = |n: usize, noun: &str| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
        let files = count(|t| matches!(t, Trigger::FileChange { .. }));
        let hooks = count(|t| matches!(t, Trigger::Webhook { .. }));
        let mut parts = Vec::new();
        if self.triggers.contains(&Trigger::Interval) {
            parts.push("interval".to_owned());
        }
        if self.triggers.contains(&Trigger::Manual) {
            parts.push("manual".to_owned());
        }
        if files > 0 {
            parts.push(plural(files, "file change"));
        }
        if hooks > 0 {
            parts.push(plural(hooks, "webhook"));
        }
        if self.dropped > 0 {
            parts.push(format!("{} more not kept", self.dropped));
        }
        parts.join(", ")
    }
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<TriggerSet>,
    notify: Notify,
    closed: AtomicBool,
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, TriggerSet> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The producer side: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct TriggerSender {
    shared: Arc<Shared>,
}

impl TriggerSender {
    /// Adds `trigger` to the next batch (once, however often it is sent). Returns `false` when
    /// the [`Coalescer`] is gone and producers should stop.
    pub fn send(&self, trigger: Trigger) -> bool {
        if self.shared.closed.load(Ordering::Acquire) {
            return false;
        }
        {
            let mut pending = self.shared.pending();
            if !pending.triggers.contains(&trigger) {
                if pending.triggers.len() < MAX_PENDING {
                    pending.triggers.push(trigger);
                } else {
                    pending.dropped += 1;
                }
            }
        }
        self.shared.notify.notify_one();
        true
    }
}

/// The consumer side, owned by the reconcile loop.
#[derive(Debug)]
pub struct Coalescer<C: Clock> {
    shared: Arc<Shared>,
    clock: C,
    settle: Duration,
}

/// A connected sender and coalescer; each batch waits `settle` after its first trigger.
pub fn coalescer<C: Clock>(clock: C, settle: Duration) -> (TriggerSender, Coalescer<C>) {
    let shared = Arc::new(Shared::default());
    let sender = TriggerSender {
        shared: shared.clone(),
    };
    (
        sender,
        Coalescer {
            shared,
            clock,
            settle,
        },
    )
}

impl<C: Clock> Coalescer<C> {
    /// Another sender into this coalescer.
    pub fn sender(&self) -> TriggerSender {
        TriggerSender {
            shared: self.shared.clone(),
        }
    }

    /// Takes whatever is pending without waiting; `None` when nothing is.
    pub fn try_next(&mut self) -> Option<TriggerSet> {
        let mut pending = self.shared.pending();
        (!pending.is_empty()).then(|| std::mem::take(&mut *pending))
    }

    /// Waits for at least one trigger, then for the settle window, and returns everything that
    /// arrived: never an empty set. Triggers sent while the caller reconciles make up the next
    /// batch, which is then returned at once. Cancel-safe: dropped before it returns (e.g. in a
    /// `select!` with shutdown), it leaves every trigger pending.
    pub async fn next(&mut self) -> TriggerSet {
        loop {
            let notified = self.shared.notify.notified();
            if !self.shared.pending().is_empty() {
                self.clock.sleep(self.settle).await;
                return std::mem::take(&mut *self.shared.pending());
            }
            // A permit left by a trigger already taken only costs one more turn of the loop.
            notified.await;
        }
    }
}

impl<C: Clock> Drop for Coalescer<C> {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
    }
}

/// A period with relative jitter: each delay is uniform in `every × (1 ± jitter)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// The mean period.
    pub every: Duration,
    /// Relative spread, 0 to 0.5 (0.1 is ±10%).
    pub jitter: f64,
}

impl Schedule {
    /// The next delay, drawn from `rng`.
    pub fn next_delay(&self, rng: &mut impl Rng) -> Duration {
        let jitter = self.jitter.clamp(0.0, 0.5);
        if jitter == 0.0 {
            return self.every;
        }
        self.every
            .mul_f64(rng.random_range(1.0 - jitter..=1.0 + jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::retry::{ManualClock, TokioClock};
    use rand::SeedableRng;
    use std::time::SystemTime;

    fn file(n: usize) -> Trigger {
        Trigger::FileChange {
            path: PathBuf::from(format!("agents/a{n}.yaml")),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_fifty_file_events_within_100_ms_is_one_batch() {
        let (sender, mut coalescer) = coalescer(TokioClock, Duration::from_millis(150));
        let producer = tokio::spawn(async move {
            for n in 0..50 {
                sender.send(file(n));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        let batch = coalescer.next().await;
        assert_eq!(batch.triggers().len(), 50);
        assert_eq!(batch.summary(), "50 file changes");
        producer.await.expect("producer");
        let more = tokio::time::timeout(Duration::from_secs(60), coalescer.next()).await;
        assert!(more.is_err(), "no second batch: {more:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn triggers_during_a_reconcile_make_exactly_one_follow_up() {
        let (sender, mut coalescer) = coalescer(TokioClock, DEFAULT_SETTLE);
        sender.send(Trigger::Manual);
        let first = coalescer.next().await;
        assert_eq!(first.triggers(), [Trigger::Manual]);

        // The reconcile runs; meanwhile triggers keep coming, some twice.
        for n in 0..10 {
            sender.send(file(n % 4));
        }
        sender.send(Trigger::Interval);
        sender.send(Trigger::Webhook {
            delivery: "d-1".into(),
            commit: "abc".into(),
        });

        let follow_up = coalescer.next().await;
        assert_eq!(follow_up.triggers().len(), 6);
        assert_eq!(follow_up.summary(), "interval, 4 file changes, 1 webhook");
        assert_eq!(follow_up.latest_webhook_commit(), Some("abc"));
        let more = tokio::time::timeout(Duration::from_secs(60), coalescer.next()).await;
        assert!(more.is_err(), "exactly one follow-up: {more:?}");
    }

    #[test]
    fn pending_triggers_are_bounded_and_overflow_is_counted() {
        let (sender, mut coalescer) =
            coalescer(ManualClock::new(SystemTime::UNIX_EPOCH), DEFAULT_SETTLE);
        for n in 0..MAX_PENDING + 5 {
            assert!(sender.send(file(n)));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let batch = runtime.block_on(coalescer.next());
        assert_eq!((batch.triggers().len(), batch.dropped()), (MAX_PENDING, 5));
        drop(coalescer);
        assert!(
            !sender.send(Trigger::Manual),
            "a closed coalescer stops producers"
        );
    }

    #[test]
    fn jittered_delays_stay_within_ten_percent_and_vary() {
        let schedule = Schedule {
            every: Duration::from_secs(300),
            jitter: 0.1,
        };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let delays: Vec<_> = (0..200).map(|_| schedule.next_delay(&mut rng)).collect();
        assert!(
            delays
                .iter()
                .all(|d| (270.0..=330.0).contains(&d.as_secs_f64()))
        );
        assert!(delays.iter().any(|d| *d < Duration::from_secs(290)));
        assert!(delays.iter().any(|d| *d > Duration::from_secs(310)));
    }
}
