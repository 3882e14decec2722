//! Client-side rate limiting: a token bucket kept in step with the `RateLimit-*` headers of
//! every response, so tether slows down *before* Hetzner answers 429.
//!
//! Hetzner's bucket holds `limit` requests and refills `limit / 3600` per second. Once the
//! estimated balance drops below a reserve (5% of the limit), requests are spaced at the refill
//! rate instead of being sent at once, so the balance never reaches zero through tether alone.
//!
//! Pure arithmetic over the numbers the headers carry: the Hetzner client reads the headers, and
//! the planner's text rendering estimates a plan's wait with [`time_to_send`].

use std::time::{Duration, SystemTime};

/// What the last response said about the bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    /// `RateLimit-Limit`: requests per hour.
    pub limit: u32,
    /// `RateLimit-Remaining`.
    pub remaining: u32,
}

/// The client's estimate of the server-side bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    limit: f64,
    tokens: f64,
    at: SystemTime,
}

impl Bucket {
    /// A bucket assuming Hetzner's default limit until a response says otherwise.
    pub fn new(now: SystemTime) -> Self {
        Bucket {
            limit: 3600.0,
            tokens: 3600.0,
            at: now,
        }
    }

    fn rate(&self) -> f64 {
        self.limit / 3600.0
    }

    fn refill(&mut self, now: SystemTime) {
        let elapsed = now
            .duration_since(self.at)
            .unwrap_or_default()
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate()).min(self.limit);
        self.at = now;
    }

    /// Takes one request from the bucket and returns how long to wait before sending it.
    pub fn take(&mut self, now: SystemTime) -> Duration {
        self.refill(now);
        let reserve = reserve(self.limit);
        let wait = if self.tokens - 1.0 >= reserve {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(((reserve + 1.0 - self.tokens) / self.rate()).max(0.0))
        };
        self.tokens -= 1.0;
        wait
    }

    /// Adopts the server's view from a response's headers.
    pub fn observe(&mut self, observed: Observed, now: SystemTime) {
        if observed.limit == 0 {
            return;
        }
        self.limit = f64::from(observed.limit);
        self.tokens = f64::from(observed.remaining);
        self.at = now;
    }

    /// The bucket as tether estimates it now: the last headers less the requests sent since.
    pub fn state(&self) -> Observed {
        Observed {
            limit: self.limit as u32,
            remaining: self.remaining(),
        }
    }

    /// The last known remaining balance, for metrics.
    pub fn remaining(&self) -> u32 {
        self.tokens.max(0.0) as u32
    }

    /// When one request will be allowed again after a 429.
    pub fn next_allowed(&self, now: SystemTime) -> SystemTime {
        now + Duration::from_secs_f64(1.0 / self.rate())
    }
}

/// The balance below which the client paces requests at the refill rate: 5% of the limit.
fn reserve(limit: f64) -> f64 {
    (limit * 0.05).max(1.0)
}

/// How long the client takes to send `calls` requests from the bucket `at`: at once down to the
/// reserve, then one per refill interval. Round trips and action waits are not included.
pub fn time_to_send(calls: u32, at: Observed) -> Duration {
    let limit = f64::from(at.limit.max(1));
    let at_once = (f64::from(at.remaining) - reserve(limit)).max(0.0);
    let paced = (f64::from(calls) - at_once).max(0.0);
    Duration::from_secs_f64(paced * 3600.0 / limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_sends_at_once_and_a_low_one_paces_at_the_refill_rate() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut b = Bucket::new(t0);
        b.observe(
            Observed {
                limit: 3600,
                remaining: 3000,
            },
            t0,
        );
        assert_eq!(b.take(t0), Duration::ZERO);

        b.observe(
            Observed {
                limit: 3600,
                remaining: 180,
            },
            t0,
        );
        let wait = b.take(t0);
        assert!(
            wait >= Duration::from_millis(900) && wait <= Duration::from_millis(1100),
            "{wait:?}"
        );
        // Ten quick requests below the reserve each wait one more refill interval.
        let waits: Vec<Duration> = (0..10).map(|_| b.take(t0)).collect();
        assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
    }

    #[test]
    fn sending_beyond_the_balance_takes_one_refill_interval_per_request() {
        let at = |remaining| Observed {
            limit: 3600,
            remaining,
        };
        assert_eq!(time_to_send(120, at(3600)), Duration::ZERO);
        // 40 left is below the 180 reserve: every request waits its second.
        assert_eq!(time_to_send(120, at(40)), Duration::from_secs(120));
        assert_eq!(time_to_send(300, at(280)), Duration::from_secs(200));
    }

    #[test]
    fn time_refills_the_bucket() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut b = Bucket::new(t0);
        b.observe(
            Observed {
                limit: 3600,
                remaining: 0,
            },
            t0,
        );
        assert!(b.take(t0) > Duration::from_secs(100));
        let later = t0 + Duration::from_secs(1000);
        assert_eq!(b.take(later), Duration::ZERO);
    }
}
