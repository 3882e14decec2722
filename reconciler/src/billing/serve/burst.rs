//! The receiver under a burst: 300 subscriptions whose life in the Stripe emulator (sign-ups,
//! upgrades, downgrades to a price that leaves type and location to the defaults, unpaid,
//! paused, cancellations) is delivered shuffled, duplicated, late and with same-second events,
//! at several batch sizes, against an API with latency and a read rate limit. The specs must
//! end exactly as Stripe's final state implies.

use super::harness::{Harness, KEY, receiver_on, seeded};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether_emulators::Token;
use tether_emulators::emulator::FaultRule;
use tether_emulators::stripe::StripeEmulator;

/// What a user checks in a spec: plan, type, location (none: fleet.yaml's default), off.
type Shape = (String, Option<&'static str>, Option<&'static str>, bool);

/// The spec Stripe's state implies, as the test mapping says; `None` for no agent.
fn implied(status: &str, lookup: &str) -> Option<Shape> {
    let off = match status {
        "active" | "trialing" | "past_due" => false,
        "unpaid" | "paused" => true,
        _ => return None,
    };
    let (plan, server_type, location) = match lookup {
        "pro_monthly" => ("pro", Some("cpx21"), Some("fsn1")),
        "big_monthly" => ("big", Some("cpx31"), Some("hel1")),
        _ => ("basic", None, None),
    };
    Some((plan.to_owned(), server_type, location, off))
}

/// The shape of a written spec.
fn shape(spec: &str) -> Shape {
    let field = |key: &str, values: &[&'static str]| {
        values
            .iter()
            .copied()
            .find(|v| spec.contains(&format!("{key}: {v}")))
    };
    let plan = ["pro", "big", "basic"]
        .into_iter()
        .find(|p| spec.contains(&format!("plan: \"{p}\"")))
        .unwrap_or("none")
        .to_owned();
    (
        plan,
        field("type", &["cpx21", "cpx31"]),
        field("location", &["fsn1", "hel1"]),
        spec.contains("power: off"),
    )
}

/// Every subscription's life in the emulator; the events as delivered: each once, some
/// twice, a few created again with the same second and an id that sorts first, shuffled.
fn life(stripe: &StripeEmulator, subs: usize, rng: &mut StdRng) -> Vec<String> {
    let mut events = Vec::new();
    for i in 0..subs {
        let first = if i % 2 == 0 {
            "big_monthly"
        } else {
            "pro_monthly"
        };
        let signed = stripe.sign_up(&format!("cus_b{i:03}"), first);
        let sub = signed.subscription.clone();
        let mut mine = vec![signed];
        let steps: &[(&str, &str)] = match i % 6 {
            0 => &[("price", "basic_monthly")],
            1 => &[("status", "past_due"), ("status", "canceled")],
            2 => &[("status", "unpaid"), ("price", "basic_monthly")],
            3 => &[
                ("status", "paused"),
                ("status", "active"),
                ("price", "big_monthly"),
            ],
            4 => &[
                ("price", "basic_monthly"),
                ("status", "unpaid"),
                ("status", "active"),
            ],
            _ => &[],
        };
        for (what, value) in steps {
            let event = match *what {
                "price" => stripe.change_price(&sub, value),
                _ => stripe.set_status(&sub, value),
            };
            mine.extend(event);
        }
        if i % 7 == 0 {
            // The same second as the newest event, an id sorting before every other.
            let newest = mine.last().map(|e| e.body.clone()).unwrap_or_default();
            let mut tie: Value = serde_json::from_str(&newest).unwrap_or_default();
            tie["id"] = format!("evt_0tie{i:03}").into();
            tie["data"]["object"]["status"] = "incomplete".into();
            events.push(tie.to_string());
        }
        events.extend(mine.into_iter().map(|e| e.body));
    }
    let unique = events.len();
    for _ in 0..unique / 3 {
        let copy = events[rng.random_range(0..unique)].clone();
        events.push(copy);
    }
    events.shuffle(rng);
    events
}

/// Delivers `bodies` 64 at a time; every answer is 200. The acknowledgement times, sorted.
async fn deliver_all(h: &Arc<Harness>, bodies: Vec<String>) -> Vec<Duration> {
    let mut tasks = tokio::task::JoinSet::new();
    let concurrency = Arc::new(tokio::sync::Semaphore::new(64));
    for body in bodies {
        let (h, permit) = (h.clone(), concurrency.clone());
        tasks.spawn(async move {
            let _permit = permit.acquire_owned().await;
            let sent = Instant::now();
            let (status, answer) = h.deliver(&body).await;
            (status, answer, sent.elapsed())
        });
    }
    let mut times = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (status, answer, took) = done.expect("delivery task");
        assert_eq!(status, 200, "every event is acknowledged: {answer}");
        assert!(!answer.to_string().contains(KEY));
        times.push(took);
    }
    times.sort();
    times
}

/// A burst at `max_batch` events per commit with Stripe allowing `read_limit` reads a second
/// (the receiver is configured for 150); whether any read was answered 429.
async fn burst(max_batch: usize, seed: u64, read_limit: u32) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    seeded(dir.path()).expect("seed the fleet");
    let stripe = StripeEmulator::start(Token::from(KEY))
        .await
        .expect("start the Stripe emulator");
    let mut rng = StdRng::seed_from_u64(seed);
    let bodies = life(&stripe, 300, &mut rng);
    stripe.faults().set(vec![FaultRule {
        latency_ms: 30,
        ..FaultRule::everywhere()
    }]);
    stripe.set_read_limit(Some(read_limit));
    let h = Arc::new(receiver_on(dir, Arc::new(stripe), max_batch, 150).await);
    let deliveries = bodies.len();
    let started = Instant::now();
    let times = deliver_all(&h, bodies).await;
    let total = started.elapsed();
    let specs = h.specs();
    let mut agents = 0;
    for (sub, status, lookup, _) in h.stripe.subscriptions() {
        let spec = specs.get(&sub);
        match implied(&status, &lookup) {
            None => assert!(
                spec.is_none(),
                "{sub} is {status}: no spec, found\n{spec:?}"
            ),
            Some(want) => {
                agents += 1;
                let spec = spec.unwrap_or_else(|| panic!("{sub} ({status}, {lookup}) has no spec"));
                assert_eq!(shape(spec), want, "{sub} ({status}, {lookup}):\n{spec}");
            }
        }
    }
    assert_eq!(
        specs.len(),
        agents,
        "no spec for a subscription Stripe does not bill"
    );
    let metrics = h.metrics.render();
    let reads = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tether_billing_stripe_reads_total "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or_default();
    let throttled = h
        .stripe
        .requests()
        .snapshot()
        .iter()
        .filter(|(k, _)| k.outcome == "429")
        .map(|(_, n)| *n)
        .sum::<u64>();
    println!(
        "burst maxBatch={max_batch}: {deliveries} deliveries, {} commits, ack p50 {:?} p99 {:?}, {reads} Stripe reads ({:.2} per delivery), {throttled} answered 429 and retried, total {total:?}",
        h.commits(),
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        reads / deliveries as f64,
    );
    throttled > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shuffled_burst_ends_with_the_specs_stripe_implies_in_batches_of_4() {
    burst(4, 1, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shuffled_burst_ends_with_the_specs_stripe_implies_in_batches_of_16() {
    burst(16, 2, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shuffled_burst_ends_with_the_specs_stripe_implies_in_batches_of_250() {
    burst(250, 3, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_beyond_stripes_read_limit_backs_off_and_still_ends_right() {
    assert!(
        burst(250, 4, 25).await,
        "Stripe's limit of 25 reads a second was reached, and the receiver slowed down"
    );
}
