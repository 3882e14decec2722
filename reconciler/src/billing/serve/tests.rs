//! The receiver over real HTTP against a real bare repository: signed deliveries in, commits
//! and answers out; and the burst of 1,000 events with duplicates, reordering and concurrency.

use super::http::{MAX_BODY_BYTES, Receiver};
use super::mapping::Mapping;
use super::metrics::BillingMetrics;
use super::queue::{Destination, Queue};
use super::signature::{self, DEFAULT_TOLERANCE};
use crate::audit::commit::Identity;
use crate::secret::Secret;
use git2::{Repository, Signature};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const SECRET: &str = "whsec_test_secret";
const MAPPING: &str = "statuses:\n  active: present\n  trialing: present\n  past_due: present\n  unpaid: off\n  paused: off\n  canceled: absent\n  incomplete: absent\n  incomplete_expired: absent\nprices:\n  - lookupKey: pro_monthly\n    plan: pro\n    type: cpx21\n    location: fsn1\n    runtime: 1.4.2\n  - lookupKey: big_monthly\n    plan: big\n    type: cpx31\n    location: nbg1\n    runtime: 1.4.2\n  - lookupKey: broken\n    location: mars1\n    runtime: 1.4.2\n";

struct Harness {
    dir: tempfile::TempDir,
    url: String,
    client: reqwest::Client,
    metrics: Arc<BillingMetrics>,
    _server: tokio::task::JoinHandle<()>,
}

fn seeded(dir: &Path) -> Result<(), git2::Error> {
    let repo = Repository::init_bare(dir)?;
    let fleet = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet/fleet.yaml"))
        .map_err(|e| git2::Error::from_str(&e.to_string()))?;
    let mut tree = repo.treebuilder(None)?;
    tree.insert("fleet.yaml", repo.blob(&fleet)?, 0o100_644)?;
    let tree = repo.find_tree(tree.write()?)?;
    let sig = Signature::now("seed", "seed@example.com")?;
    repo.commit(Some("refs/heads/main"), &sig, &sig, "seed", &tree, &[])?;
    Ok(())
}

async fn harness(max_batch: usize) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    seeded(dir.path()).expect("seed the fleet");
    receiver_on(dir, max_batch).await
}

/// A fresh receiver (new writer, new ledger) on the repository in `dir`: a restart.
async fn receiver_on(dir: tempfile::TempDir, max_batch: usize) -> Harness {
    let metrics = Arc::new(BillingMetrics::default());
    let destination = Destination {
        repo: dir.path().to_owned(),
        branch: "main".to_owned(),
        push: None,
        identity: Identity {
            name: "tether billing".into(),
            email: "billing@tether.invalid".into(),
            signer: None,
        },
    };
    let queue = Queue::spawn(destination, max_batch, metrics.clone());
    let mapping = Mapping::parse(Path::new("mapping.yaml"), MAPPING).expect("mapping");
    let receiver = Arc::new(Receiver::new(
        vec![Secret::from("whsec_old_secret"), Secret::from(SECRET)],
        DEFAULT_TOLERANCE,
        mapping,
        queue,
        metrics.clone(),
        Duration::from_secs(30),
        Arc::new(SystemTime::now),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/stripe", listener.local_addr().expect("addr"));
    let app = receiver.router();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Harness {
        dir,
        url,
        client: reqwest::Client::new(),
        metrics,
        _server: server,
    }
}

fn event(id: &str, kind: &str, created: i64, sub: &str, status: &str, lookup: &str) -> String {
    json!({
        "id": id, "object": "event", "type": kind, "created": created, "livemode": false,
        "api_version": "2024-06-20",
        "data": {"object": {
            "id": sub, "object": "subscription", "customer": format!("cus_{sub}"), "status": status,
            "metadata": {},
            "items": {"object": "list", "data": [{"id": format!("si_{id}"), "price": {
                "id": format!("price_{lookup}"), "lookup_key": lookup, "product": "prod_agent"}}]}
        }}
    })
    .to_string()
}

impl Harness {
    /// Signs `body` now (a fresh signature, as Stripe makes for every attempt) and sends it.
    async fn deliver(&self, body: &str) -> (u16, Value) {
        self.redeliver(body, 0).await
    }

    /// Like [`Harness::deliver`], signed `seconds_ago`: Stripe's retry of an earlier attempt
    /// carries a new timestamp, hence a new signature.
    async fn redeliver(&self, body: &str, seconds_ago: i64) -> (u16, Value) {
        let t = signature::unix(SystemTime::now()) - seconds_ago;
        let header = signature::sign(&Secret::from(SECRET), t, body.as_bytes());
        self.send(body, &header).await
    }

    async fn send(&self, body: &str, header: &str) -> (u16, Value) {
        let response = self
            .client
            .post(&self.url)
            .header("Stripe-Signature", header)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("the receiver answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn repo(&self) -> Repository {
        Repository::open(self.dir.path()).expect("open")
    }

    /// The spec of `sub` on the branch tip, if any.
    fn spec(&self, sub: &str) -> Option<String> {
        let repo = self.repo();
        let tree = repo
            .revparse_single("main^{tree}")
            .expect("tip")
            .peel_to_tree()
            .expect("tree");
        let name = crate::billing::default_name(sub);
        let path = format!(
            "agents/{}/{name}.yaml",
            crate::billing::default_name(&format!("cus_{sub}"))
        );
        let entry = tree.get_path(Path::new(&path)).ok()?;
        let blob = repo.find_blob(entry.id()).ok()?;
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    }

    fn commits(&self) -> usize {
        let repo = self.repo();
        let mut walk = repo.revwalk().expect("walk");
        walk.push_ref("refs/heads/main").expect("main");
        walk.count() - 1
    }

    fn head_message(&self) -> String {
        let repo = self.repo();
        let head = repo
            .revparse_single("main")
            .expect("tip")
            .peel_to_commit()
            .expect("commit");
        head.message().unwrap_or_default().to_owned()
    }
}

#[tokio::test]
async fn a_sign_up_becomes_a_spec_in_one_commit_with_its_trailer() {
    let h = harness(50).await;
    let (status, body) = h
        .deliver(&event(
            "evt_1",
            "customer.subscription.created",
            100,
            "sub_a",
            "active",
            "pro_monthly",
        ))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    let spec = h.spec("sub_a").expect("the spec exists");
    for part in [
        "subscription: sub_a",
        "type: cpx21",
        "location: fsn1",
        "version: \"1.4.2\"",
        "plan: \"pro\"",
    ] {
        assert!(spec.contains(part), "{part} missing from\n{spec}");
    }
    assert!(
        h.head_message()
            .contains("Tether-Stripe-Event: evt_1 sub_a 100"),
        "{}",
        h.head_message()
    );
    let (status, body) = h
        .deliver(&event(
            "evt_2",
            "customer.subscription.updated",
            200,
            "sub_a",
            "unpaid",
            "pro_monthly",
        ))
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("applied")));
    assert!(h.spec("sub_a").is_some_and(|s| s.contains("power: off")));
    assert_eq!(h.commits(), 2);
}

#[tokio::test]
async fn a_cancellation_before_a_delayed_retry_of_the_sign_up_recreates_nothing() {
    let h = harness(50).await;
    let created = event(
        "evt_c",
        "customer.subscription.created",
        100,
        "sub_b",
        "active",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&created).await.0, 200);
    let deleted = event(
        "evt_d",
        "customer.subscription.deleted",
        300,
        "sub_b",
        "canceled",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&deleted).await.1["status"], "applied");
    assert!(h.spec("sub_b").is_none());
    // A sign-up update from before the cancellation, delivered late, and a retry of the
    // sign-up itself: neither brings the VM back.
    let late = event(
        "evt_u",
        "customer.subscription.updated",
        200,
        "sub_b",
        "active",
        "big_monthly",
    );
    let (status, body) = h.deliver(&late).await;
    assert_eq!(
        (status, body["status"].as_str(), body["last"].as_str()),
        (200, Some("stale"), Some("evt_d"))
    );
    assert_eq!(h.redeliver(&created, 60).await.1["status"], "duplicate");
    assert!(h.spec("sub_b").is_none());
    assert_eq!(h.commits(), 2, "stale and duplicate events commit nothing");
}

#[tokio::test]
async fn order_and_idempotency_survive_a_restart() {
    let h = harness(50).await;
    let created = event(
        "evt_s1",
        "customer.subscription.created",
        100,
        "sub_s",
        "active",
        "pro_monthly",
    );
    let deleted = event(
        "evt_s2",
        "customer.subscription.deleted",
        200,
        "sub_s",
        "canceled",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&deleted).await.1["status"], "applied");
    let Harness {
        dir,
        _server: server,
        ..
    } = h;
    server.abort();
    let restarted = receiver_on(dir, 50).await;
    assert_eq!(
        restarted.redeliver(&created, 10).await.1["status"],
        "stale",
        "the order came back from the trailers"
    );
    assert_eq!(
        restarted.redeliver(&deleted, 10).await.1["status"],
        "duplicate"
    );
    assert!(restarted.spec("sub_s").is_none());
    assert_eq!(restarted.commits(), 1);
}

#[tokio::test]
async fn a_redelivery_is_a_duplicate_and_a_replay_is_recognised() {
    let h = harness(50).await;
    let body = event(
        "evt_r",
        "customer.subscription.created",
        100,
        "sub_r",
        "trialing",
        "pro_monthly",
    );
    let header = signature::sign(
        &Secret::from(SECRET),
        signature::unix(SystemTime::now()),
        body.as_bytes(),
    );
    assert_eq!(h.send(&body, &header).await.1["status"], "applied");
    assert_eq!(h.send(&body, &header).await.1["status"], "replay");
    assert_eq!(h.redeliver(&body, 30).await.1["status"], "duplicate");
    assert_eq!(h.commits(), 1);
    let metrics = h.metrics.render();
    for line in [
        "tether_billing_deliveries_total{outcome=\"replay\"} 1",
        "tether_billing_commits_total 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    crate::daemon::metrics::exposition::parse(&metrics).expect("a valid exposition");
}

#[tokio::test]
async fn forged_stale_oversized_unmapped_and_invalid_deliveries_are_refused() {
    let h = harness(50).await;
    let body = event(
        "evt_f",
        "customer.subscription.created",
        100,
        "sub_f",
        "active",
        "pro_monthly",
    );
    let now = signature::unix(SystemTime::now());
    let wrong = signature::sign(&Secret::from("whsec_wrong"), now, body.as_bytes());
    assert_eq!(h.send(&body, &wrong).await.0, 400);
    let stale = signature::sign(&Secret::from(SECRET), now - 301, body.as_bytes());
    let (status, answer) = h.send(&body, &stale).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("tolerance")),
        "{answer}"
    );
    let tampered = body.replace("sub_f", "sub_g");
    let header = signature::sign(&Secret::from(SECRET), now, body.as_bytes());
    assert_eq!(h.send(&tampered, &header).await.0, 400);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
    assert_eq!(h.deliver(&big).await.0, 413);
    let gold = event(
        "evt_g",
        "customer.subscription.created",
        100,
        "sub_g",
        "active",
        "gold",
    );
    let (status, answer) = h.deliver(&gold).await;
    assert_eq!(status, 422);
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("lookup_key gold")),
        "{answer}"
    );
    let broken = event(
        "evt_b",
        "customer.subscription.created",
        100,
        "sub_x",
        "active",
        "broken",
    );
    let (status, answer) = h.deliver(&broken).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["problems"].to_string().contains("mars1"), "{answer}");
    assert_eq!(h.commits(), 0);
}

/// What one subscription's events say, newest last.
fn burst_events(subs: usize) -> (Vec<String>, Vec<(String, Option<bool>)>) {
    let mut events = Vec::new();
    let mut expected = Vec::new();
    for i in 0..subs {
        let sub = format!("sub_burst{i:03}");
        let mut statuses = vec!["active"];
        match i % 3 {
            0 => statuses.push("unpaid"),
            1 => statuses.extend(["past_due", "canceled"]),
            _ => {}
        }
        if i % 10 == 0 {
            statuses.push("active");
        }
        for (n, status) in statuses.iter().enumerate() {
            let kind = match (n, *status) {
                (0, _) => "customer.subscription.created",
                (_, "canceled") => "customer.subscription.deleted",
                _ => "customer.subscription.updated",
            };
            let created = 1_000 + i64::try_from(n).unwrap_or(0) * 60;
            events.push(event(
                &format!("evt_{i:03}_{n}"),
                kind,
                created,
                &sub,
                status,
                "pro_monthly",
            ));
        }
        let last = statuses.last().copied().unwrap_or("active");
        let state = match last {
            "canceled" => None,
            "unpaid" => Some(false),
            _ => Some(true),
        };
        expected.push((sub, state));
    }
    (events, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_events_with_duplicates_and_reordering_ends_with_exactly_the_right_specs() {
    let h = Arc::new(harness(250).await);
    let (unique, expected) = burst_events(300);
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let mut deliveries = unique.clone();
    while deliveries.len() < 1_000 {
        let i = rand::Rng::random_range(&mut rng, 0..unique.len());
        deliveries.push(unique[i].clone());
    }
    deliveries.shuffle(&mut rng);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let concurrency = Arc::new(tokio::sync::Semaphore::new(64));
    for body in deliveries {
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
        times.push(took);
    }
    let total = started.elapsed();
    assert_eq!(times.len(), 1_000);
    for (sub, state) in &expected {
        let spec = h.spec(sub);
        match state {
            None => assert!(spec.is_none(), "{sub} should have no spec"),
            Some(on) => {
                let spec = spec.unwrap_or_else(|| panic!("{sub} should have a spec"));
                assert_eq!(!spec.contains("power: off"), *on, "{sub}:\n{spec}");
            }
        }
    }
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    let commits = h.commits();
    println!(
        "burst: {} unique events, 1000 deliveries, {commits} commits, p99 ack {p99:?}, total {total:?}",
        unique.len()
    );
    assert!(
        commits < 100,
        "{commits} commits for 1000 deliveries: batching failed"
    );
}
