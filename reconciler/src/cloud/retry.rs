//! Retries: one policy for every provider. Each client classifies its own failures
//! ([`Retry`], next to the client); this module decides how long to wait ([`Backoff`]) and runs
//! the loop ([`retry`]), logging every retry with its reason. Time comes from a [`Clock`], so
//! tests of retry behaviour take no real time.

use rand::Rng;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What a failed request means for trying again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Worth retrying after a backoff (5xx, timeouts, resets, `conflict`).
    Transient(String),
    /// Rate limited: retry once the limit allows, not before `until` (UNIX time).
    Throttled {
        /// Why.
        reason: String,
        /// When it is safe again.
        until: Option<SystemTime>,
    },
    /// No connection could be made (refused, DNS, unreachable host): nothing was sent. Retried
    /// a few times within about a second ([`UNREACHABLE`]), since an endpoint that refuses now
    /// rarely answers a moment later, and the user should hear about it quickly.
    Unreachable(String),
    /// Retrying cannot help (4xx validation, auth, uniqueness, protection).
    Terminal,
}

/// The backoff for [`Retry::Unreachable`]: 3 retries from 250 ms, at most about 1.75 s in all.
pub const UNREACHABLE: Backoff = Backoff {
    base: Duration::from_millis(250),
    cap: Duration::from_secs(1),
    max_retries: 3,
};

/// Jittered, capped exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
    /// Most retries after the first attempt.
    pub max_retries: u32,
}

impl Default for Backoff {
    /// Matches the official hcloud clients: 1 s doubling, capped at 60 s, 5 retries.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_retries: 5,
        }
    }
}

impl Backoff {
    /// The delay before retry number `retry` (0-based): a random point in the upper half of
    /// `min(cap, base * 2^retry)` ("equal jitter"), so retries spread out but never collapse to 0.
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let exp = self.base.saturating_mul(2u32.saturating_pow(retry.min(30)));
        let ceiling = exp.min(self.cap);
        let half = ceiling / 2;
        half + rng.random_range(Duration::ZERO..=half)
    }
}

/// Time as seen by retry loops and pollers: real in production, virtual in tests.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;
}

/// The real clock, backed by tokio.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }
}

/// Any [`Clock`] behind a shared pointer, for code that holds its clock in plain data rather
/// than a type parameter (the executor's [`crate::apply::Options`]). The real clock by default.
#[derive(Clone)]
pub struct SharedClock(Arc<dyn DynClock>);

impl SharedClock {
    /// `clock`, shared.
    pub fn new(clock: impl Clock + 'static) -> SharedClock {
        SharedClock(Arc::new(clock))
    }
}

impl Default for SharedClock {
    fn default() -> Self {
        SharedClock::new(TokioClock)
    }
}

impl std::fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Clock for SharedClock {
    fn now(&self) -> SystemTime {
        self.0.now()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        self.0.boxed_sleep(duration)
    }
}

/// [`Clock`] in a form a `dyn` pointer can hold.
trait DynClock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> SystemTime;
    fn boxed_sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl<K: Clock + 'static> DynClock for K {
    fn now(&self) -> SystemTime {
        Clock::now(self)
    }

    fn boxed_sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(Clock::sleep(self, duration))
    }
}

/// A virtual clock: `sleep` returns at once and advances time; every sleep is recorded.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<(SystemTime, Vec<Duration>)>>,
}

impl ManualClock {
    /// A clock starting at `start`.
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            inner: Arc::new(Mutex::new((start, Vec::new()))),
        }
    }

    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().1.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (SystemTime, Vec<Duration>)> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.lock().0
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        let mut state = self.lock();
        state.0 += duration;
        state.1.push(duration);
        std::future::ready(())
    }
}

/// The wait before retry number `retries` (0-based) after a failure classified as `decision`,
/// with the reason to log; `None` when the failure is terminal or the budget is spent
/// (`backoff.max_retries`, or [`UNREACHABLE`]'s for an unreachable endpoint). Throttled
/// failures wait until their reset time, at least the backoff delay.
pub fn next_delay(
    backoff: &Backoff,
    decision: Retry,
    retries: u32,
    now: SystemTime,
) -> Option<(Duration, String)> {
    match decision {
        Retry::Terminal => None,
        Retry::Unreachable(reason) => (retries < UNREACHABLE.max_retries.min(backoff.max_retries))
            .then(|| (UNREACHABLE.delay(retries, &mut rand::rng()), reason)),
        _ if retries >= backoff.max_retries => None,
        Retry::Transient(reason) => Some((backoff.delay(retries, &mut rand::rng()), reason)),
        Retry::Throttled { reason, until } => {
            let delay = backoff.delay(retries, &mut rand::rng());
            let wait = until.and_then(|u| u.duration_since(now).ok());
            Some((wait.map_or(delay, |w| delay.max(w)), reason))
        }
    }
}

/// Runs `op` until it succeeds, fails terminally, or exhausts its retry budget
/// ([`next_delay`]).
///
/// `classify` decides per error. Every retry is logged with `provider`, `operation`, the
/// attempt and the reason: at WARN, except an unreachable endpoint's few quick retries, at
/// DEBUG (the final error names the endpoint and the cause). The error of the last attempt is
/// returned.
pub async fn retry<T, E, Fut>(
    backoff: &Backoff,
    clock: &impl Clock,
    provider: &'static str,
    operation: &str,
    classify: impl Fn(&E) -> Retry,
    mut op: impl FnMut() -> Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut retries = 0;
    loop {
        let err = match op().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let decision = classify(&err);
        let quiet = matches!(decision, Retry::Unreachable(_));
        let Some((delay, reason)) = next_delay(backoff, decision, retries, clock.now()) else {
            return Err(err);
        };
        retries += 1;
        let delay_ms = delay.as_millis() as u64;
        if quiet {
            tracing::debug!(provider, operation, attempt = retries, delay_ms, %reason, "retrying");
        } else {
            tracing::warn!(provider, operation, attempt = retries, delay_ms, %reason, "retrying");
        }
        clock.sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_with_jitter_and_respects_the_cap() {
        let b = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(8),
            max_retries: 10,
        };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for (retry, ceiling) in [(0, 1), (1, 2), (2, 4), (3, 8), (4, 8), (20, 8)] {
            let d = b.delay(retry, &mut rng);
            let ceiling = Duration::from_secs(ceiling);
            assert!(d >= ceiling / 2 && d <= ceiling, "retry {retry}: {d:?}");
        }
    }

    #[tokio::test]
    async fn retry_stops_at_terminal_errors_and_after_max_retries() {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        let b = Backoff {
            max_retries: 3,
            ..Backoff::default()
        };
        let mut calls = 0;
        let r: Result<(), &str> = retry(
            &b,
            &clock,
            "test",
            "op",
            |_| Retry::Transient("503".into()),
            || {
                calls += 1;
                std::future::ready(Err("boom"))
            },
        )
        .await;
        assert_eq!((r, calls, clock.sleeps().len()), (Err("boom"), 4, 3));

        let mut calls = 0;
        let r: Result<(), &str> = retry(
            &b,
            &clock,
            "test",
            "op",
            |_| Retry::Terminal,
            || {
                calls += 1;
                std::future::ready(Err("invalid_input"))
            },
        )
        .await;
        assert_eq!((r, calls), (Err("invalid_input"), 1));
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_gives_up_within_two_seconds() {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        let mut calls = 0;
        let r: Result<(), &str> = retry(
            &Backoff::default(),
            &clock,
            "test",
            "op",
            |_| Retry::Unreachable("connection refused".into()),
            || {
                calls += 1;
                std::future::ready(Err("refused"))
            },
        )
        .await;
        let waited: Duration = clock.sleeps().iter().sum();
        assert_eq!((r, calls), (Err("refused"), 4));
        assert!(waited <= Duration::from_millis(1750), "{waited:?}");
    }

    #[tokio::test]
    async fn throttled_retries_wait_until_the_reset_time() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let clock = ManualClock::new(start);
        let until = Some(start + Duration::from_secs(30));
        let mut calls = 0;
        let r: Result<u32, &str> = retry(
            &Backoff::default(),
            &clock,
            "test",
            "op",
            |_| Retry::Throttled {
                reason: "429".into(),
                until,
            },
            || {
                calls += 1;
                std::future::ready(if calls < 2 { Err("429") } else { Ok(calls) })
            },
        )
        .await;
        assert_eq!(r, Ok(2));
        assert!(
            clock.sleeps()[0] >= Duration::from_secs(30),
            "{:?}",
            clock.sleeps()
        );
    }
}
