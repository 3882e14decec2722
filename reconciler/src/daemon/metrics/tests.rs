//! The exposition of [`Metrics`]: every family, help text, type, series and value.

use super::exposition::parse;
use super::*;

const START: u64 = 1_700_000_000;

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(START + seconds)
}

#[test]
fn a_fresh_daemon_exposes_only_the_time_since_start() {
    // Families without a series yet are left out, as Prometheus's own clients do.
    let metrics = Metrics::new(at(0));
    assert_eq!(
        metrics.render(at(42)),
        "# HELP tether_seconds_since_last_success Seconds since the last successful reconcile (since start while none has).\n\
         # TYPE tether_seconds_since_last_success gauge\n\
         tether_seconds_since_last_success 42.0\n"
    );
}

#[test]
fn the_exposition_text_is_exact() {
    let metrics = Metrics::new(at(0));
    metrics.observe_reconcile(
        ReconcileOutcome::Success,
        Duration::from_millis(750),
        at(10),
    );
    metrics.observe_reconcile(ReconcileOutcome::Failure, Duration::from_secs(700), at(20));
    metrics.count_action("create", "success");
    metrics.count_action("create", "success");
    metrics.count_action("delete", "failure");
    metrics.count_action_error("delete", "transient");
    metrics.count_api_request("hetzner", Some(201));
    metrics.count_api_request("hetzner", None);
    metrics.set_rate_limit_remaining("hetzner", 3599);
    metrics.set_agents(&[("healthy", 7), ("unhealthy", 1)]);
    metrics.set_agents(&[("healthy", 8)]);
    metrics.set_invariant_breaches(&[("server-off", 1), ("live-key", 0)]);

    let expected = r#"# HELP tether_reconcile_duration_seconds Time one reconcile pass took, by outcome.
# TYPE tether_reconcile_duration_seconds histogram
tether_reconcile_duration_seconds_bucket{outcome="failure",le="0.1"} 0
tether_reconcile_duration_seconds_bucket{outcome="failure",le="0.5"} 0
tether_reconcile_duration_seconds_bucket{outcome="failure",le="1"} 0
tether_reconcile_duration_seconds_bucket{outcome="failure",le="2.5"} 0
tether_reconcile_duration_seconds_bucket{outcome="failure",le="5"} 0
tether_reconcile_duration_seconds_bucket{outcome="failure",le="10"} 0
tether_reconcile_duration_seconds_bucket{outcome="failure",le="30"} 0
tether_reconcile_duration_seconds_bucket{outcome="failure",le="60"} 0
tether_reconcile_duration_seconds_bucket{outcome="failure",le="120"} 0
tether_reconcile_duration_seconds_bucket{outcome="failure",le="300"} 0
tether_reconcile_duration_seconds_bucket{outcome="failure",le="600"} 0
tether_reconcile_duration_seconds_bucket{outcome="failure",le="+Inf"} 1
tether_reconcile_duration_seconds_sum{outcome="failure"} 700
tether_reconcile_duration_seconds_count{outcome="failure"} 1
tether_reconcile_duration_seconds_bucket{outcome="success",le="0.1"} 0
tether_reconcile_duration_seconds_bucket{outcome="success",le="0.5"} 0
tether_reconcile_duration_seconds_bucket{outcome="success",le="1"} 1
tether_reconcile_duration_seconds_bucket{outcome="success",le="2.5"} 1
tether_reconcile_duration_seconds_bucket{outcome="success",le="5"} 1
tether_reconcile_duration_seconds_bucket{outcome="success",le="10"} 1
tether_reconcile_duration_seconds_bucket{outcome="success",le="30"} 1
tether_reconcile_duration_seconds_bucket{outcome="success",le="60"} 1
tether_reconcile_duration_seconds_bucket{outcome="success",le="120"} 1
tether_reconcile_duration_seconds_bucket{outcome="success",le="300"} 1
tether_reconcile_duration_seconds_bucket{outcome="success",le="600"} 1
tether_reconcile_duration_seconds_bucket{outcome="success",le="+Inf"} 1
tether_reconcile_duration_seconds_sum{outcome="success"} 0.75
tether_reconcile_duration_seconds_count{outcome="success"} 1
# HELP tether_reconciles_total Reconcile passes finished, by outcome.
# TYPE tether_reconciles_total counter
tether_reconciles_total{outcome="failure"} 1
tether_reconciles_total{outcome="success"} 1
# HELP tether_actions_total Plan actions executed, by kind and outcome.
# TYPE tether_actions_total counter
tether_actions_total{kind="create",outcome="success"} 2
tether_actions_total{kind="delete",outcome="failure"} 1
# HELP tether_action_errors_total Plan actions not done, by kind and error (transient, terminal or skipped).
# TYPE tether_action_errors_total counter
tether_action_errors_total{kind="delete",error="transient"} 1
# HELP tether_api_requests_total Requests to provider APIs, by provider and HTTP status (`error` without one).
# TYPE tether_api_requests_total counter
tether_api_requests_total{provider="hetzner",status="201"} 1
tether_api_requests_total{provider="hetzner",status="error"} 1
# HELP tether_rate_limit_remaining Requests left in the provider's current rate-limit window.
# TYPE tether_rate_limit_remaining gauge
tether_rate_limit_remaining{provider="hetzner"} 3599
# HELP tether_agents Agents by health, as of the last reconcile.
# TYPE tether_agents gauge
tether_agents{health="healthy"} 8
tether_agents{health="unhealthy"} 0
# HELP tether_invariant_breaches Invariants found broken at the end of the last pass that checked them, by invariant.
# TYPE tether_invariant_breaches gauge
tether_invariant_breaches{invariant="server-off"} 1
tether_invariant_breaches{invariant="live-key"} 0
# HELP tether_last_success_timestamp_seconds UNIX time of the last successful reconcile; absent until one succeeds.
# TYPE tether_last_success_timestamp_seconds gauge
tether_last_success_timestamp_seconds 1700000010
# HELP tether_seconds_since_last_success Seconds since the last successful reconcile (since start while none has).
# TYPE tether_seconds_since_last_success gauge
tether_seconds_since_last_success 90
"#;
    assert_eq!(parse(&metrics.render(at(100))), parse(expected));
    assert!(parse(expected).is_ok());
}

#[test]
fn label_values_are_escaped() {
    let metrics = Metrics::new(at(0));
    metrics.count_action("we\"ird\\kind\n", "success");
    let text = metrics.render(at(0));
    assert!(
        text.contains(r#"tether_actions_total{kind="we\"ird\\kind\n",outcome="success"} 1"#),
        "{text}"
    );
}

#[test]
fn the_exposition_parses_and_names_every_family_in_order() {
    let metrics = Metrics::new(at(0));
    metrics.observe_reconcile(ReconcileOutcome::Aborted, Duration::from_secs(3), at(3));
    metrics.count_action("create", "success");
    metrics.count_api_request("hetzner", Some(200));
    metrics.set_rate_limit_remaining("hetzner", 10);
    metrics.set_agents(&[("healthy", 1)]);
    metrics.observe_reconcile(ReconcileOutcome::Success, Duration::from_secs(1), at(4));
    let families = parse(&metrics.render(at(5))).expect("valid exposition");
    let names: Vec<(&str, &str)> = families
        .iter()
        .map(|(name, family)| (name.as_str(), family.kind.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("tether_reconcile_duration_seconds", "histogram"),
            ("tether_reconciles_total", "counter"),
            ("tether_actions_total", "counter"),
            ("tether_api_requests_total", "counter"),
            ("tether_rate_limit_remaining", "gauge"),
            ("tether_agents", "gauge"),
            ("tether_last_success_timestamp_seconds", "gauge"),
            ("tether_seconds_since_last_success", "gauge"),
        ]
    );
    let since = &families[7].1.samples;
    assert_eq!(
        since.get(&("tether_seconds_since_last_success".to_owned(), Vec::new())),
        Some(&1.0)
    );
}

#[test]
fn the_reader_refuses_malformed_lines() {
    for bad in [
        "tether_agents 1\n",
        "# HELP a x\n# TYPE a gauge\na{k=\"v} 1\n",
        "# HELP a x\n# TYPE a gauge\na one\n",
        "# HELP a x\n# TYPE a gauge\nb 1\n",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}
