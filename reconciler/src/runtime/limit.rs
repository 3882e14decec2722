//! The per-agent rate limit on reports: a token bucket of [`BURST`] reports refilled at one per
//! [`EVERY`]. An agent reports once per poll interval (at least a second); a VM past the limit
//! is answered 429 with `Retry-After` and its report is not kept.

use std::time::{Duration, SystemTime};

/// Reports an agent may send at once.
pub const BURST: f64 = 10.0;
/// One more report is allowed after each of these.
pub const EVERY: Duration = Duration::from_secs(1);

/// One agent's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    tokens: f64,
    at: Option<SystemTime>,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            tokens: BURST,
            at: None,
        }
    }
}

impl Bucket {
    /// Takes a report at `now`, or says how long to wait before the next is taken.
    ///
    /// # Errors
    /// The wait, when the bucket is empty.
    pub fn take(&mut self, now: SystemTime) -> Result<(), Duration> {
        let elapsed = self
            .at
            .and_then(|at| now.duration_since(at).ok())
            .unwrap_or_default();
        self.tokens = (self.tokens + elapsed.as_secs_f64() / EVERY.as_secs_f64()).min(BURST);
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(EVERY.mul_f64(1.0 - self.tokens))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_taken_then_one_report_per_interval() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut bucket = Bucket::default();
        for _ in 0..10 {
            assert_eq!(bucket.take(t0), Ok(()));
        }
        let wait = bucket.take(t0).expect_err("the burst is spent");
        assert!(wait <= EVERY && wait > Duration::ZERO, "{wait:?}");
        assert_eq!(bucket.take(t0 + EVERY), Ok(()));
        assert!(bucket.take(t0 + EVERY).is_err());
    }
}
