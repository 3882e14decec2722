//! The daemon's rate-limit budget: how long the timer waits between passes so that steady-state
//! observation spends at most a configured share of Hetzner's hourly limit, leaving the rest for
//! actions and for every other process on the project. Start at [`interval`].
//!
//! A Hetzner project has one bucket of `limit` requests that refills `limit / 3600` per second;
//! the `RateLimit-Limit` and `RateLimit-Remaining` headers of the last response are the truth
//! about it ([`crate::cloud::hetzner::ratelimit`]). The pass itself is counted, not guessed: the
//! daemon feeds [`Cadence::after_pass`] with the Hetzner requests the last pass actually made
//! (ceil(N/50) server pages plus the catalog when nothing changed).
//!
//! # Guarantees
//! - The timer never fires more often than the configured `interval`.
//! - Passes made by the timer alone spend at most `observeShare` of the hourly limit in any
//!   hour: the delay between them is never shorter than `3600 s / k`, where `k` whole passes
//!   of the last pass's `requests` fit into `observeShare × limit` (jitter only lengthens it).
//! - Observation never dips into the part of the bucket reserved for actions: when
//!   `RateLimit-Remaining` is below `(1 − observeShare) × limit` plus one pass (other processes,
//!   or the last apply, spent it), the next timed pass waits until the bucket has refilled that
//!   far.
//!
//! Passes asked for by a push, a file change or `POST /reconcile` are not delayed: they are
//! someone's request, and they are counted into the next interval like any other pass.

use crate::cloud::hetzner::ratelimit::Observed;
use crate::cloud::retry::Clock;
use crate::daemon::trigger::{Schedule, Trigger, TriggerSender};
use crate::process::shutdown::ShutdownSignal;
use rand::Rng as _;
use std::time::Duration;
use tokio::sync::watch;

/// Hetzner's default limit per project: requests per hour.
pub const DEFAULT_HOURLY: u32 = 3600;
/// The share of the hourly limit steady-state observation may spend unless configured.
pub const DEFAULT_OBSERVE_SHARE: f64 = 0.5;
/// Servers per page when tether lists them (Hetzner's maximum).
pub const SERVERS_PER_PAGE: usize = 50;
/// Catalog reads per pass: server types (with prices), locations, images.
pub const CATALOG_REQUESTS: u64 = 3;

/// The configured budget (`rateLimit` in the daemon configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateBudget {
    /// The project's hourly limit, used until a response's `RateLimit-Limit` says otherwise.
    pub hourly: u32,
    /// The share of it (above 0, at most 1) steady-state observation may spend.
    pub observe_share: f64,
}

impl Default for RateBudget {
    fn default() -> Self {
        RateBudget {
            hourly: DEFAULT_HOURLY,
            observe_share: DEFAULT_OBSERVE_SHARE,
        }
    }
}

/// Hetzner requests of a pass that changes nothing, for `agents` servers: every page of servers
/// plus the catalog. Used until a pass has been counted.
pub fn observation_requests(agents: usize) -> u64 {
    agents.div_ceil(SERVERS_PER_PAGE).max(1) as u64 + CATALOG_REQUESTS
}

/// The shortest delay before the next timed pass: the longest of the configured interval, the
/// period that fits whole passes of `requests` into the budget's share of any hour
/// (`3600 s / floor(share × limit / requests)`), and the time the bucket needs to refill above
/// the reserve for actions plus one pass. `bucket` is what the last response said (`None`
/// before any response: the configured `hourly`, a full bucket).
pub fn interval(
    budget: &RateBudget,
    configured: Duration,
    requests: u64,
    bucket: Option<Observed>,
) -> Duration {
    let limit = bucket
        .map(|b| b.limit)
        .filter(|l| *l > 0)
        .unwrap_or(budget.hourly)
        .max(1);
    let limit = f64::from(limit);
    let share = budget.observe_share.clamp(f64::MIN_POSITIVE, 1.0);
    let per_second = limit / 3600.0;
    let requests = requests as f64;
    let passes_per_hour = (share * limit / requests.max(1.0)).floor();
    let within_share = if passes_per_hour >= 1.0 {
        3600.0 / passes_per_hour
    } else {
        requests / (per_second * share)
    };
    let refill = bucket.map_or(0.0, |b| {
        let reserve = (1.0 - share) * limit;
        ((reserve + requests - f64::from(b.remaining)) / per_second).max(0.0)
    });
    let seconds = within_share.max(refill).min(MAX_INTERVAL.as_secs_f64());
    configured.max(Duration::from_secs_f64(seconds))
}

/// The longest delay [`interval`] chooses: a pass at least every six hours, whatever it costs.
pub const MAX_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// The daemon's current cadence: recomputed after every pass, read by [`run_interval`].
#[derive(Debug)]
pub struct Cadence {
    budget: RateBudget,
    configured: Duration,
    every: watch::Sender<Duration>,
}

impl Cadence {
    /// The cadence before any pass, for a fleet of `agents` (0 when unknown: the configured
    /// interval until the first pass is counted).
    pub fn new(budget: RateBudget, configured: Duration, agents: usize) -> Self {
        let first = if agents == 0 {
            configured
        } else {
            interval(&budget, configured, observation_requests(agents), None)
        };
        Cadence {
            budget,
            configured,
            every: watch::Sender::new(first),
        }
    }

    /// The mean delay now in force.
    pub fn every(&self) -> Duration {
        *self.every.borrow()
    }

    /// Recomputes the cadence from the last pass's Hetzner `requests` and the bucket after it;
    /// returns the new mean delay.
    pub fn after_pass(&self, requests: u64, bucket: Option<Observed>) -> Duration {
        let next = interval(&self.budget, self.configured, requests, bucket);
        let before = self.every.send_replace(next);
        if before != next {
            tracing::info!(
                provider = "hetzner",
                requests,
                remaining = bucket.map(|b| b.remaining),
                limit = bucket.map(|b| b.limit),
                every_s = next.as_secs(),
                "rate-limit budget: timed passes every {}s",
                next.as_secs()
            );
        }
        next
    }

    /// The cadence as it changes, for [`run_interval`].
    pub fn subscribe(&self) -> watch::Receiver<Duration> {
        self.every.subscribe()
    }
}

/// Sends [`Trigger::Interval`] after each delay until `shutdown` is requested or the coalescer
/// is dropped. While the configured `schedule` is slower than the budget it is used as is,
/// jittered both ways; once the budget's cadence (`every`, from [`Cadence::subscribe`]) is
/// longer, each delay is that cadence plus up to `schedule.jitter` of it, never less, so no
/// hour holds more timed passes than the budget allows. A cadence that changes during a wait
/// (the first pass has just been counted) re-times that wait from its start, so the first
/// timed pass respects the budget too.
pub async fn run_interval<C: Clock>(
    clock: C,
    schedule: Schedule,
    mut every: watch::Receiver<Duration>,
    sender: TriggerSender,
    shutdown: ShutdownSignal,
) {
    let mut follow = true;
    loop {
        let started = clock.now();
        let mut delay = next_delay(&schedule, *every.borrow_and_update());
        loop {
            let waited = clock.now().duration_since(started).unwrap_or_default();
            let left = delay.saturating_sub(waited);
            tokio::select! {
                _ = shutdown.requested() => return,
                _ = clock.sleep(left) => break,
                changed = every.changed(), if follow => match changed {
                    Ok(()) => delay = next_delay(&schedule, *every.borrow_and_update()),
                    Err(_) => follow = false,
                },
            }
        }
        if !sender.send(Trigger::Interval) {
            return;
        }
    }
}

/// One delay of [`run_interval`] for the budget's cadence `budgeted`.
fn next_delay(schedule: &Schedule, budgeted: Duration) -> Duration {
    if budgeted > schedule.every {
        let jitter = schedule.jitter.clamp(0.0, 0.5);
        budgeted.mul_f64(1.0 + rand::rng().random_range(0.0..=jitter))
    } else {
        schedule.next_delay(&mut rand::rng())
    }
}

#[cfg(test)]
mod emulator_tests;
#[cfg(test)]
mod tests;
