//! `tether billing serve`'s Prometheus metrics, in the daemon's exposition format (the same
//! [`Family`] type): deliveries by outcome, commits, events per commit and the time from a
//! delivery's arrival to its answer. Names are listed in `docs/billing.md`.

use crate::daemon::metrics::{Family, Kind};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Bucket bounds (seconds) of the acknowledgement-time histogram.
pub const ACK_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bucket bounds of the events-per-commit histogram (a count, not seconds).
pub const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0];

#[derive(Debug)]
struct Families {
    deliveries: Family,
    commits: Family,
    batch: Family,
    ack: Family,
}

/// The receiver's metrics. Shared behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct BillingMetrics {
    families: Mutex<Families>,
}

impl Default for BillingMetrics {
    fn default() -> Self {
        BillingMetrics {
            families: Mutex::new(Families {
                deliveries: Family::new(
                    "tether_billing_deliveries_total",
                    Kind::Counter,
                    &["outcome"],
                    "Stripe deliveries answered, by outcome (applied, duplicate, stale, replay, ignored, unmapped, invalid, refused, bad_signature, bad_event, too_large, failed).",
                ),
                commits: Family::new(
                    "tether_billing_commits_total",
                    Kind::Counter,
                    &[],
                    "Commits landed on the fleet branch by the receiver.",
                ),
                batch: Family::new(
                    "tether_billing_batch_events",
                    Kind::Histogram,
                    &[],
                    "Events decided per batch that landed a commit.",
                )
                .with_bounds(&BATCH_BUCKETS),
                ack: Family::new(
                    "tether_billing_ack_seconds",
                    Kind::Histogram,
                    &["outcome"],
                    "Time from a delivery's arrival to its answer, by outcome.",
                )
                .with_bounds(&ACK_BUCKETS),
            }),
        }
    }
}

impl BillingMetrics {
    fn families(&self) -> std::sync::MutexGuard<'_, Families> {
        self.families.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one answered delivery and how long it took.
    pub fn count_delivery(&self, outcome: &str, took: Duration) {
        let mut f = self.families();
        f.deliveries.add(&[outcome], 1.0);
        f.ack.observe(&[outcome], took.as_secs_f64());
    }

    /// Counts one landed commit deciding `events` events.
    pub fn count_commit(&self, events: usize) {
        let mut f = self.families();
        f.commits.add(&[], 1.0);
        f.batch.observe(&[], events as f64);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let f = self.families();
        let mut out = String::new();
        for family in [&f.deliveries, &f.commits, &f.batch, &f.ack] {
            family.render(&mut out);
        }
        out
    }
}
