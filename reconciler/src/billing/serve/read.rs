//! Reading the subscriptions a batch of events is about from Stripe's API, at most once each,
//! within Stripe's read rate limit. Start at [`Reader::read_all`].
//!
//! # Guarantees
//! - One read per subscription per batch, whatever the number of its events in the batch: the
//!   events only trigger the read, the answer decides the spec.
//! - Reads start at most `reads_per_second` a second and at most [`CONCURRENCY`] at once.
//! - A 429 (`rate_limit_error`) halves the pace for every read (down to one a second) and
//!   holds them all for the pause; each read that succeeds speeds it up again by a tenth, back
//!   to the configured pace.
//! - A 429, a 5xx or a connection failure is tried again after a jittered pause that doubles
//!   each time ([`BACKOFF`], at most [`ATTEMPTS`] reads); the last error is the answer, and its
//!   events are answered 503 so Stripe delivers them again.
//! - Every read starts after the events that asked for it arrived, so its answer is at least as
//!   new as each of them.

use crate::billing::stripe::{ReadError, StripeApi};
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Reads in flight at once.
pub const CONCURRENCY: usize = 8;
/// Reads of one subscription before its error is the answer.
pub const ATTEMPTS: u32 = 4;
/// The first pause after a throttled or failed read; each later one doubles.
pub const BACKOFF: Duration = Duration::from_millis(250);

/// The slowest pace a run of 429s brings reads down to.
const SLOWEST: Duration = Duration::from_secs(1);

/// Stripe's API with the receiver's pace.
#[derive(Debug)]
pub struct Reader {
    api: StripeApi,
    fastest: Duration,
    pace: Mutex<Pace>,
}

/// When the next read may start, and the gap between reads now.
#[derive(Debug)]
struct Pace {
    next: Instant,
    gap: Duration,
}

impl Reader {
    /// Reads through `api`, starting at most `reads_per_second` reads a second.
    pub fn new(api: StripeApi, reads_per_second: u32) -> Reader {
        let fastest = Duration::from_secs(1) / reads_per_second.max(1);
        Reader {
            api,
            fastest,
            pace: Mutex::new(Pace {
                next: Instant::now(),
                gap: fastest,
            }),
        }
    }

    /// The current object of each subscription in `subscriptions` (each read once).
    pub async fn read_all(
        &self,
        subscriptions: Vec<String>,
    ) -> BTreeMap<String, Result<Value, ReadError>> {
        futures_util::stream::iter(subscriptions)
            .map(|sub| async move {
                let read = self.read(&sub).await;
                (sub, read)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }

    async fn read(&self, subscription: &str) -> Result<Value, ReadError> {
        let mut attempt = 0;
        loop {
            self.wait_turn().await;
            let result = self.api.retrieve(subscription).await;
            attempt += 1;
            let pause = BACKOFF * 2u32.pow(attempt - 1);
            self.adjust(&result, pause).await;
            match result {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    let jitter = pause.mul_f64(rand::random_range(0.0..0.5));
                    tracing::warn!(subscription, attempt, error = %e, pause_ms = (pause + jitter).as_millis(), "Stripe read failed; trying again");
                    tokio::time::sleep(pause + jitter).await;
                }
                other => return other,
            }
        }
    }

    /// Waits for the next read slot.
    async fn wait_turn(&self) {
        let slot = {
            let mut pace = self.pace.lock().await;
            let slot = pace.next.max(Instant::now());
            pace.next = slot + pace.gap;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Slows every read after a 429 (holding them for `pause`), speeds up after a success.
    async fn adjust(&self, result: &Result<Value, ReadError>, pause: Duration) {
        let mut pace = self.pace.lock().await;
        match result {
            Err(ReadError::Throttled { .. }) => {
                pace.gap = (pace.gap * 2).min(SLOWEST);
                pace.next = pace.next.max(Instant::now() + pause);
            }
            Ok(_) => pace.gap = pace.gap.mul_f64(0.9).max(self.fastest),
            Err(_) => {}
        }
    }
}
