//! `tether billing serve`'s Prometheus metrics, in `prometheus-client` families rendered like
//! the daemon's: deliveries by outcome, commits, events per commit and the time from a
//! delivery's arrival to its answer, and the subscriptions read from Stripe. Names are listed in `docs/billing.md`; as in
//! [`crate::daemon::metrics`], counters are registered without `_total` and help texts without
//! their full stop, which the library adds.

use crate::process::metrics::{HistogramFamily, Labels, encode, labels};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Bucket bounds (seconds) of the acknowledgement-time histogram.
pub const ACK_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bucket bounds of the events-per-commit histogram (a count, not seconds).
pub const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0];

fn ack_histogram() -> Histogram {
    Histogram::new(ACK_BUCKETS)
}

fn batch_histogram() -> Histogram {
    Histogram::new(BATCH_BUCKETS)
}

/// The receiver's metrics. Shared behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct BillingMetrics {
    registry: Registry,
    deliveries: Family<Labels, Counter>,
    commits: Counter,
    reads: Counter,
    batch: Histogram,
    ack: HistogramFamily,
}

impl Default for BillingMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let deliveries = Family::default();
        registry.register(
            "tether_billing_deliveries",
            "Stripe deliveries answered, by outcome (applied, duplicate, stale, replay, ignored, unmapped, unreadable, invalid, refused, bad_signature, bad_event, too_large, failed)",
            deliveries.clone(),
        );
        let commits = Counter::default();
        registry.register(
            "tether_billing_commits",
            "Commits landed on the fleet branch by the receiver",
            commits.clone(),
        );
        let reads = Counter::default();
        registry.register(
            "tether_billing_stripe_reads",
            "Subscriptions read from Stripe's API for the events of a batch (one per subscription per batch, retries not counted)",
            reads.clone(),
        );
        let batch = batch_histogram();
        registry.register(
            "tether_billing_batch_events",
            "Events decided per batch that landed a commit",
            batch.clone(),
        );
        let ack = HistogramFamily::new_with_constructor(ack_histogram);
        registry.register(
            "tether_billing_ack_seconds",
            "Time from a delivery's arrival to its answer, by outcome",
            ack.clone(),
        );
        BillingMetrics {
            registry,
            deliveries,
            commits,
            reads,
            batch,
            ack,
        }
    }
}

impl BillingMetrics {
    /// Counts one answered delivery and how long it took.
    pub fn count_delivery(&self, outcome: &str, took: Duration) {
        let series = labels(&["outcome"], &[outcome]);
        self.deliveries.get_or_create(&series).inc();
        self.ack.get_or_create(&series).observe(took.as_secs_f64());
    }

    /// Counts one landed commit deciding `events` events.
    pub fn count_commit(&self, events: usize) {
        self.commits.inc();
        self.batch.observe(events as f64);
    }

    /// Counts `n` subscriptions read from Stripe.
    pub fn count_reads(&self, n: usize) {
        self.reads.inc_by(n as u64);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        encode(&self.registry)
    }
}
