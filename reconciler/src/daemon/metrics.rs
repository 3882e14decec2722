//! The daemon's Prometheus metrics ([`Metrics`]), rendered in the text exposition format
//! (version 0.0.4) without a metrics library: a handful of counters, gauges and one histogram.
//!
//! The metric names and labels are a contract with dashboards and alerts: they are listed in
//! `docs/operations.md` and change only with a note there.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Upper bounds (seconds) of the reconcile duration histogram's buckets.
pub const DURATION_BUCKETS: [f64; 11] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

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

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(f64),
    Histogram {
        /// Observations per bucket (not cumulative), one more than the bounds for `+Inf`.
        buckets: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

/// One metric family and its series; also used by `tether billing serve`'s metrics.
#[derive(Debug)]
pub(crate) struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    bounds: &'static [f64],
    series: BTreeMap<Vec<String>, Value>,
}

impl Family {
    /// An empty family; a histogram's buckets are [`DURATION_BUCKETS`].
    pub(crate) fn new(
        name: &'static str,
        kind: Kind,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Family {
            name,
            help,
            kind,
            labels,
            bounds: &DURATION_BUCKETS,
            series: BTreeMap::new(),
        }
    }

    /// The same family with other histogram bucket bounds (seconds, ascending).
    pub(crate) fn with_bounds(mut self, bounds: &'static [f64]) -> Self {
        self.bounds = bounds;
        self
    }

    /// Adds `by` to the series of `labels`.
    pub(crate) fn add(&mut self, labels: &[&str], by: f64) {
        let key = labels.iter().map(|l| (*l).to_owned()).collect();
        match self.series.entry(key).or_insert(Value::Number(0.0)) {
            Value::Number(n) => *n += by,
            Value::Histogram { .. } => {}
        }
    }

    fn set(&mut self, labels: &[&str], to: f64) {
        let key = labels.iter().map(|l| (*l).to_owned()).collect();
        self.series.insert(key, Value::Number(to));
    }

    /// Records one observation in the histogram series of `labels`.
    pub(crate) fn observe(&mut self, labels: &[&str], seconds: f64) {
        let key = labels.iter().map(|l| (*l).to_owned()).collect();
        let value = self.series.entry(key).or_insert_with(|| Value::Histogram {
            buckets: vec![0; self.bounds.len() + 1],
            sum: 0.0,
            count: 0,
        });
        if let Value::Histogram {
            buckets,
            sum,
            count,
        } = value
        {
            let slot = self
                .bounds
                .iter()
                .position(|bound| seconds <= *bound)
                .unwrap_or(self.bounds.len());
            buckets[slot] += 1;
            *sum += seconds;
            *count += 1;
        }
    }

    /// Appends the text exposition of the family to `out`.
    pub(crate) fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind.as_str());
        for (values, value) in &self.series {
            let pairs: Vec<(&str, &str)> = self
                .labels
                .iter()
                .zip(values)
                .map(|(k, v)| (*k, v.as_str()))
                .collect();
            match value {
                Value::Number(n) => sample(out, self.name, "", &pairs, *n),
                Value::Histogram {
                    buckets,
                    sum,
                    count,
                } => {
                    let mut cumulative = 0;
                    let bounds = self.bounds.iter().map(|b| b.to_string());
                    for (le, n) in bounds.chain(["+Inf".to_owned()]).zip(buckets) {
                        cumulative += n;
                        let mut with_le = pairs.clone();
                        with_le.push(("le", &le));
                        sample(out, self.name, "_bucket", &with_le, cumulative as f64);
                    }
                    sample(out, self.name, "_sum", &pairs, *sum);
                    sample(out, self.name, "_count", &pairs, *count as f64);
                }
            }
        }
    }
}

fn sample(out: &mut String, name: &str, suffix: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() {
        let rendered: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = write!(out, "{{{}}}", rendered.join(","));
    }
    let _ = writeln!(out, " {value}");
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[derive(Debug)]
struct Families {
    duration: Family,
    reconciles: Family,
    actions: Family,
    api_requests: Family,
    rate_limit: Family,
    agents: Family,
    last_success: Option<SystemTime>,
}

/// The daemon's metrics. Shared behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Metrics {
    started_at: SystemTime,
    families: Mutex<Families>,
}

impl Metrics {
    /// Empty metrics for a daemon started at `started_at`.
    pub fn new(started_at: SystemTime) -> Metrics {
        use Kind::{Counter, Gauge, Histogram};
        Metrics {
            started_at,
            families: Mutex::new(Families {
                duration: Family::new(
                    "tether_reconcile_duration_seconds",
                    Histogram,
                    &["outcome"],
                    "Time one reconcile pass took, by outcome.",
                ),
                reconciles: Family::new(
                    "tether_reconciles_total",
                    Counter,
                    &["outcome"],
                    "Reconcile passes finished, by outcome.",
                ),
                actions: Family::new(
                    "tether_actions_total",
                    Counter,
                    &["kind", "outcome"],
                    "Plan actions executed, by kind and outcome.",
                ),
                api_requests: Family::new(
                    "tether_api_requests_total",
                    Counter,
                    &["provider", "status"],
                    "Requests to provider APIs, by provider and HTTP status (`error` without one).",
                ),
                rate_limit: Family::new(
                    "tether_rate_limit_remaining",
                    Gauge,
                    &["provider"],
                    "Requests left in the provider's current rate-limit window.",
                ),
                agents: Family::new(
                    "tether_agents",
                    Gauge,
                    &["health"],
                    "Agents by health, as of the last reconcile.",
                ),
                last_success: None,
            }),
        }
    }

    fn families(&self) -> std::sync::MutexGuard<'_, Families> {
        self.families.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a finished reconcile pass; a success also moves the last-success time to
    /// `finished_at`.
    pub fn observe_reconcile(
        &self,
        outcome: ReconcileOutcome,
        duration: Duration,
        finished_at: SystemTime,
    ) {
        let mut f = self.families();
        f.duration
            .observe(&[outcome.as_str()], duration.as_secs_f64());
        f.reconciles.add(&[outcome.as_str()], 1.0);
        if outcome == ReconcileOutcome::Success {
            f.last_success = Some(finished_at);
        }
    }

    /// Counts one executed action, e.g. kind `create`, outcome `success`.
    pub fn count_action(&self, kind: &str, outcome: &str) {
        self.families().actions.add(&[kind, outcome], 1.0);
    }

    /// Counts one provider API request (`hetzner`, `tailscale`, `github`) by its HTTP status,
    /// or `error` when no response came.
    pub fn count_api_request(&self, provider: &str, status: Option<u16>) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.families().api_requests.add(&[provider, &status], 1.0);
    }

    /// Sets the requests left in `provider`'s rate-limit window.
    pub fn set_rate_limit_remaining(&self, provider: &str, remaining: u64) {
        self.families()
            .rate_limit
            .set(&[provider], remaining as f64);
    }

    /// Replaces the agent counts by health (e.g. `healthy`, `unhealthy`, `provisioning`).
    /// Health values seen before and absent now are reported as 0, not dropped.
    pub fn set_agents(&self, counts: &[(&str, u64)]) {
        let mut f = self.families();
        for value in f.agents.series.values_mut() {
            *value = Value::Number(0.0);
        }
        for (health, n) in counts {
            f.agents.set(&[health], *n as f64);
        }
    }

    /// The text exposition of every metric as of `now`. `tether_seconds_since_last_success`
    /// counts from the daemon's start while no reconcile has succeeded, so an alert on it also
    /// fires for a daemon that never succeeds.
    pub fn render(&self, now: SystemTime) -> String {
        let f = self.families();
        let mut out = String::new();
        for family in [
            &f.duration,
            &f.reconciles,
            &f.actions,
            &f.api_requests,
            &f.rate_limit,
            &f.agents,
        ] {
            family.render(&mut out);
        }
        let mut last = Family::new(
            "tether_last_success_timestamp_seconds",
            Kind::Gauge,
            &[],
            "UNIX time of the last successful reconcile; absent until one succeeds.",
        );
        if let Some(at) = f.last_success {
            last.set(&[], unix_seconds(at));
        }
        last.render(&mut out);
        let mut since = Family::new(
            "tether_seconds_since_last_success",
            Kind::Gauge,
            &[],
            "Seconds since the last successful reconcile (since start while none has).",
        );
        let reference = f.last_success.unwrap_or(self.started_at);
        let elapsed = now.duration_since(reference).unwrap_or_default();
        since.set(&[], elapsed.as_secs_f64());
        since.render(&mut out);
        out
    }
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
mod tests;
