//! The daemon's Prometheus metrics ([`Metrics`]), kept in `prometheus-client` counters, gauges
//! and histograms and rendered in the Prometheus text exposition format (version 0.0.4).
//!
//! The metric names and labels are a contract with dashboards and alerts: they are listed in
//! `docs/operations.md` and change only with a note there. `prometheus-client` appends `_total`
//! to a counter's name and a full stop to each help text, so both are left out where the metrics
//! are registered.

use crate::process::metrics::{HistogramFamily, Labels, encode, labels};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bounds (seconds) of the reconcile duration histogram's buckets.
pub const DURATION_BUCKETS: [f64; 11] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// A gauge holding a float (seconds, timestamps).
pub(crate) type FloatGauge = Gauge<f64, AtomicU64>;

/// How a reconcile pass ended (label `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileOutcome {
    /// The fleet was converged, or every planned action succeeded.
    Success,
    /// The pass failed: unreadable fleet, failed actions, a safety guard refused the plan.
    Failure,
    /// The pass stopped early: shutdown, or the single-writer lease was lost.
    Aborted,
}

impl ReconcileOutcome {
    /// The label value: `success`, `failure` or `aborted`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileOutcome::Success => "success",
            ReconcileOutcome::Failure => "failure",
            ReconcileOutcome::Aborted => "aborted",
        }
    }
}

fn reconcile_duration() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// What changes between scrapes besides the registered metrics.
#[derive(Debug, Default)]
struct Scrape {
    last_success: Option<SystemTime>,
    /// Health values reported so far; those absent from the latest count read 0.
    healths: BTreeSet<String>,
}

/// The daemon's metrics. Shared behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Metrics {
    started_at: SystemTime,
    registry: Registry,
    duration: HistogramFamily,
    reconciles: Family<Labels, Counter>,
    actions: Family<Labels, Counter>,
    action_errors: Family<Labels, Counter>,
    api_requests: Family<Labels, Counter>,
    rate_limit: Family<Labels, Gauge>,
    agents: Family<Labels, Gauge>,
    invariants: Family<Labels, Gauge>,
    last_success: Family<Labels, FloatGauge>,
    since_success: FloatGauge,
    event_deliveries: Family<Labels, Counter>,
    event_pending: Family<Labels, Gauge>,
    event_lag: Family<Labels, Gauge>,
    event_dead: Family<Labels, Gauge>,
    scrape: Mutex<Scrape>,
}

impl Metrics {
    /// Empty metrics for a daemon started at `started_at`.
    pub fn new(started_at: SystemTime) -> Metrics {
        let mut registry = Registry::default();
        let duration = HistogramFamily::new_with_constructor(reconcile_duration);
        registry.register(
            "tether_reconcile_duration_seconds",
            "Time one reconcile pass took, by outcome",
            duration.clone(),
        );
        let reconciles = Family::default();
        registry.register(
            "tether_reconciles",
            "Reconcile passes finished, by outcome",
            reconciles.clone(),
        );
        let actions = Family::default();
        registry.register(
            "tether_actions",
            "Plan actions executed, by kind and outcome",
            actions.clone(),
        );
        let action_errors = Family::default();
        registry.register(
            "tether_action_errors",
            "Plan actions not done, by kind and error (transient, terminal or skipped)",
            action_errors.clone(),
        );
        let api_requests = Family::default();
        registry.register(
            "tether_api_requests",
            "Requests to provider APIs, by provider and HTTP status (`error` without one)",
            api_requests.clone(),
        );
        let rate_limit = Family::default();
        registry.register(
            "tether_rate_limit_remaining",
            "Requests left in the provider's current rate-limit window",
            rate_limit.clone(),
        );
        let agents = Family::default();
        registry.register(
            "tether_agents",
            "Agents by health, as of the last reconcile",
            agents.clone(),
        );
        let invariants = Family::default();
        registry.register(
            "tether_invariant_breaches",
            "Invariants found broken at the end of the last pass that checked them, by invariant",
            invariants.clone(),
        );
        let last_success = Family::default();
        registry.register(
            "tether_last_success_timestamp_seconds",
            "UNIX time of the last successful reconcile; absent until one succeeds",
            last_success.clone(),
        );
        let since_success = FloatGauge::default();
        registry.register(
            "tether_seconds_since_last_success",
            "Seconds since the last successful reconcile (since start while none has)",
            since_success.clone(),
        );
        let event_deliveries = Family::default();
        registry.register(
            "tether_event_deliveries",
            "Lifecycle event delivery attempts, by endpoint and outcome (delivered, failed, dead)",
            event_deliveries.clone(),
        );
        let event_pending = Family::default();
        registry.register(
            "tether_events_pending",
            "Lifecycle events on the status branch not yet delivered, by endpoint",
            event_pending.clone(),
        );
        let event_lag = Family::default();
        registry.register(
            "tether_event_lag_seconds",
            "Age of the oldest undelivered lifecycle event, by endpoint (0 when none waits)",
            event_lag.clone(),
        );
        let event_dead = Family::default();
        registry.register(
            "tether_event_dead_letters",
            "Lifecycle events given up on, kept in the endpoint's cursor, by endpoint",
            event_dead.clone(),
        );
        Metrics {
            event_deliveries,
            event_pending,
            event_lag,
            event_dead,
            started_at,
            registry,
            duration,
            reconciles,
            actions,
            action_errors,
            api_requests,
            rate_limit,
            agents,
            invariants,
            last_success,
            since_success,
            scrape: Mutex::new(Scrape::default()),
        }
    }

    /// Counts one lifecycle event delivery attempt to `endpoint` (`delivered`, `failed` or
    /// `dead`).
    pub fn count_event_delivery(&self, endpoint: &str, outcome: &str) {
        self.event_deliveries
            .get_or_create(&labels(&["endpoint", "outcome"], &[endpoint, outcome]))
            .inc();
    }

    /// Sets `endpoint`'s backlog: events pending, the oldest one's age, dead letters kept.
    pub fn set_event_backlog(&self, endpoint: &str, pending: usize, lag_seconds: i64, dead: usize) {
        let series = labels(&["endpoint"], &[endpoint]);
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.event_pending
            .get_or_create(&series)
            .set(count(pending));
        self.event_lag.get_or_create(&series).set(lag_seconds);
        self.event_dead.get_or_create(&series).set(count(dead));
    }

    fn scrape(&self) -> MutexGuard<'_, Scrape> {
        self.scrape.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a finished reconcile pass; a success also moves the last-success time to
    /// `finished_at`.
    pub fn observe_reconcile(
        &self,
        outcome: ReconcileOutcome,
        duration: Duration,
        finished_at: SystemTime,
    ) {
        let series = labels(&["outcome"], &[outcome.as_str()]);
        self.duration
            .get_or_create(&series)
            .observe(duration.as_secs_f64());
        self.reconciles.get_or_create(&series).inc();
        if outcome == ReconcileOutcome::Success {
            self.scrape().last_success = Some(finished_at);
            self.last_success
                .get_or_create(&Vec::new())
                .set(unix_seconds(finished_at));
        }
    }

    /// Counts one executed action, e.g. kind `create`, outcome `success`.
    pub fn count_action(&self, kind: &str, outcome: &str) {
        self.actions
            .get_or_create(&labels(&["kind", "outcome"], &[kind, outcome]))
            .inc();
    }

    /// Counts one plan action of `kind` that was not done, by its error: `transient` (the next
    /// pass tries again), `terminal` (it needs a person) or `skipped`.
    pub fn count_action_error(&self, kind: &str, error: &str) {
        self.action_errors
            .get_or_create(&labels(&["kind", "error"], &[kind, error]))
            .inc();
    }

    /// Counts one provider API request (`hetzner`, `tailscale`, `github`) by its HTTP status,
    /// or `error` when no response came.
    pub fn count_api_request(&self, provider: &str, status: Option<u16>) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.api_requests
            .get_or_create(&labels(&["provider", "status"], &[provider, &status]))
            .inc();
    }

    /// Sets the requests left in `provider`'s rate-limit window.
    pub fn set_rate_limit_remaining(&self, provider: &str, remaining: u64) {
        self.rate_limit
            .get_or_create(&labels(&["provider"], &[provider]))
            .set(i64::try_from(remaining).unwrap_or(i64::MAX));
    }

    /// Replaces the agent counts by health (e.g. `healthy`, `unhealthy`, `provisioning`).
    /// Health values seen before and absent now are reported as 0, not dropped.
    pub fn set_agents(&self, counts: &[(&str, u64)]) {
        let mut scrape = self.scrape();
        for health in &scrape.healths {
            self.agents
                .get_or_create(&labels(&["health"], &[health]))
                .set(0);
        }
        for (health, n) in counts {
            scrape.healths.insert((*health).to_owned());
            self.agents
                .get_or_create(&labels(&["health"], &[health]))
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// Sets the breaches found at the end of a pass, per invariant (`server-off`,
    /// `ready-device`, `overdue-operation`, `live-key`); give every invariant, with 0 for those
    /// that hold.
    pub fn set_invariant_breaches(&self, counts: &[(&str, u64)]) {
        for (invariant, n) in counts {
            self.invariants
                .get_or_create(&labels(&["invariant"], &[invariant]))
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// The text exposition of every metric as of `now`. `tether_seconds_since_last_success`
    /// counts from the daemon's start while no reconcile has succeeded, so an alert on it also
    /// fires for a daemon that never succeeds.
    pub fn render(&self, now: SystemTime) -> String {
        let scrape = self.scrape();
        let reference = scrape.last_success.unwrap_or(self.started_at);
        let elapsed = now.duration_since(reference).unwrap_or_default();
        self.since_success.set(elapsed.as_secs_f64());
        encode(&self.registry)
    }
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
pub(crate) mod exposition;
#[cfg(test)]
mod tests;
