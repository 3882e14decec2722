//! Rate limiting as Hetzner does it (api-facts §1.3): a token bucket per API token holding
//! `limit` requests, refilled gradually, with `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset` (UNIX time when the bucket is full again) on every response. Time is
//! passed in, so the bucket arithmetic is tested without sleeping.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Bucket size and refill speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests the bucket holds (the `RateLimit-Limit` header; Hetzner's default is 3600).
    pub limit: u32,
    /// Requests added back per second (Hetzner: `limit / 3600`).
    pub refill_per_second: f64,
}

impl RateLimit {
    /// `limit` requests per hour, refilled evenly over the hour, as Hetzner does.
    pub fn per_hour(limit: u32) -> Self {
        RateLimit {
            limit,
            refill_per_second: f64::from(limit) / 3600.0,
        }
    }
}

impl Default for RateLimit {
    /// 3600 requests per hour, +1 per second.
    fn default() -> Self {
        RateLimit::per_hour(3600)
    }
}

/// The verdict on one request, with the values of the three headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// `RateLimit-Limit`.
    pub limit: u32,
    /// `RateLimit-Remaining`, after this request.
    pub remaining: u32,
    /// `RateLimit-Reset`: UNIX seconds when the bucket is full again.
    pub reset: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Buckets keyed by caller (one per valid token, one shared by unauthenticated requests).
#[derive(Debug)]
pub struct Limiter {
    inner: Mutex<(RateLimit, HashMap<String, Bucket>)>,
}

impl Limiter {
    /// Empty buckets are created full.
    pub fn new(settings: RateLimit) -> Self {
        Limiter {
            inner: Mutex::new((settings, HashMap::new())),
        }
    }

    /// Replaces the settings; every bucket starts full again.
    pub fn set(&self, settings: RateLimit) {
        *self.inner.lock().unwrap_or_else(PoisonError::into_inner) = (settings, HashMap::new());
    }

    /// Takes one request from `key`'s bucket at `now` (`unix_now` is the wall clock then).
    pub fn take(&self, key: &str, now: Instant, unix_now: Duration) -> Decision {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (settings, buckets) = &mut *guard;
        let capacity = f64::from(settings.limit);
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * settings.refill_per_second).min(capacity);
        bucket.updated = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let missing = capacity - bucket.tokens;
        let until_full = if settings.refill_per_second > 0.0 {
            (missing / settings.refill_per_second).ceil()
        } else if missing > 0.0 {
            f64::from(u32::MAX)
        } else {
            0.0
        };
        Decision {
            allowed,
            limit: settings.limit,
            // Truncation is intended: a partly refilled request is not yet available.
            remaining: bucket.tokens.floor() as u32,
            reset: unix_now.as_secs() + until_full as u64,
        }
    }

    /// [`Limiter::take`] with the current time.
    pub fn take_now(&self, key: &str) -> Decision {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.take(key, Instant::now(), unix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIX: Duration = Duration::from_secs(1_700_000_000);

    #[test]
    fn a_full_bucket_counts_down_and_reports_when_it_is_full_again() {
        let limiter = Limiter::new(RateLimit::default());
        let now = Instant::now();
        let first = limiter.take("t", now, UNIX);
        assert!(first.allowed);
        assert_eq!((first.limit, first.remaining), (3600, 3599));
        assert_eq!(first.reset, UNIX.as_secs() + 1);
        let second = limiter.take("t", now, UNIX);
        assert_eq!(second.remaining, 3598);
        assert_eq!(second.reset, UNIX.as_secs() + 2);
    }

    #[test]
    fn an_empty_bucket_refuses_until_it_refills() {
        let limiter = Limiter::new(RateLimit {
            limit: 2,
            refill_per_second: 0.5,
        });
        let now = Instant::now();
        assert!(limiter.take("t", now, UNIX).allowed);
        assert!(limiter.take("t", now, UNIX).allowed);
        let refused = limiter.take("t", now, UNIX);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset, UNIX.as_secs() + 4);
        let later = now + Duration::from_secs(2);
        assert!(limiter.take("t", later, UNIX).allowed);
    }

    #[test]
    fn tokens_have_separate_buckets() {
        let limiter = Limiter::new(RateLimit {
            limit: 1,
            refill_per_second: 0.0,
        });
        let now = Instant::now();
        assert!(limiter.take("a", now, UNIX).allowed);
        assert!(!limiter.take("a", now, UNIX).allowed);
        assert!(limiter.take("b", now, UNIX).allowed);
    }

    #[test]
    fn new_settings_refill_every_bucket() {
        let limiter = Limiter::new(RateLimit {
            limit: 1,
            refill_per_second: 0.0,
        });
        let now = Instant::now();
        assert!(limiter.take("a", now, UNIX).allowed);
        limiter.set(RateLimit::per_hour(7200));
        let d = limiter.take("a", now, UNIX);
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining), (7200, 7199));
    }
}
