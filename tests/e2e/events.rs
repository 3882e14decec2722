//! Lifecycle events reaching the app from real `tether billing serve` and `tether run`
//! processes: a Stripe-signed payment becomes `agent.ready` with the VM's addresses under the
//! realistic latency profile, and delivery survives a receiver down, a receiver failing, a
//! killed daemon and the lease moving to another daemon, with no event lost and none renamed.
//! Every event is checked with the documented verifier (`tether::events::signature::verify`).
//!
//! The payment tests run the daemon on the fleet repository as a remote (`source.remote`), as
//! in production: `tether billing serve` commits to its `main`, and a stand-in for the forge
//! ([`forge`]) sends the daemon the signed push webhook GitHub would send for that push. The
//! survival test runs two daemons on the fleet's folder (`source.path`, the file watch).

mod app;

use crate::common::{commit_all, example_fleet, tether_bin};
use crate::daemon::Daemon;
use app::{Accepted, App, Mode};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use tether::events::derive::Deriver;
use tether::events::{LifecycleEvent, signature};
use tether::sandbox::stack::{LatencyProfile, Stack, StackOptions};
use tether::secret::Secret;
use tether_emulators::Token;
use tether_emulators::stripe::StripeEmulator;

const STRIPE_SECRET: &str = "whsec_e2e_events_stripe";
const EVENTS_SECRET: &str = "app-secret-0123456789abcdef";
const OLD_EVENTS_SECRET: &str = "app-secret-old-0123456789ab";
const MAPPING: &str = "statuses: {active: present, trialing: present, past_due: present, unpaid: off, paused: off, canceled: absent, incomplete: absent, incomplete_expired: absent}\nprices:\n  - {lookupKey: pro_monthly, plan: pro, type: cpx21, location: fsn1, runtime: 1.4.2}\n";

/// The `events` block pointing at `app`, with retries scaled so that 10 minutes take a second.
fn events_yaml(app: &App, holder: &str) -> String {
    format!(
        "events:\n  url: {}\n  secretsEnv: TETHER_EVENTS_SECRETS\n  retryFirst: 20ms\n  retryMax: 1s\n  giveUpAfter: 432s\nlock:\n  ttl: 2s\n  holder: {holder}\n",
        app.url
    )
}

fn env() -> Vec<(&'static str, String)> {
    vec![
        (
            "TETHER_EVENTS_SECRETS",
            format!("{EVENTS_SECRET},{OLD_EVENTS_SECRET}"),
        ),
        ("HCLOUD_POLL_INTERVAL_MS", "25".to_owned()),
    ]
}

const WEBHOOK_SECRET: &str = "webhook-secret-for-the-events-test";

/// A daemon following `repo` as a remote through a cache in `cache`, with the push webhook on.
fn spawn_remote(stack: &Stack, repo: &Path, cache: &Path, app: &App, extra: &str) -> Daemon {
    let mut env = env();
    env.push(("TETHER_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Daemon::spawn(
        stack,
        &format!(
            "  remote: file://{}\n  branch: main\n  cacheDir: {}",
            repo.display(),
            cache.join("mirror").display()
        ),
        &format!("webhook: {{}}\n{extra}{}", events_yaml(app, "daemon-a")),
        &env,
    )
}

/// The example fleet in a bare repository, as the remote billing and the daemon share.
fn bare_fleet() -> tempfile::TempDir {
    let work = example_fleet();
    commit_all(work.path(), "main", "seed the example fleet");
    let remote = tempfile::tempdir().expect("remote");
    git2::Repository::init_bare(remote.path()).expect("bare");
    let repo = git2::Repository::open(work.path()).expect("work repo");
    repo.remote_anonymous(remote.path().to_str().expect("utf-8"))
        .expect("remote")
        .push(&["+refs/heads/main:refs/heads/main"], None)
        .expect("push");
    remote
}

fn main_of(repo: &Path) -> Option<String> {
    let git = git2::Repository::open(repo).ok()?;
    Some(git.refname_to_id("refs/heads/main").ok()?.to_string())
}

/// Stands in for the forge: each time `main` of `repo` moves, the daemon at `url` gets the
/// signed push webhook GitHub sends for a push. Stops when dropped.
struct Forge(tokio::task::JoinHandle<()>);

impl Drop for Forge {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn forge(repo: &Path, url: String) -> Forge {
    use hmac::{Hmac, Mac};
    let repo = repo.to_owned();
    Forge(tokio::spawn(async move {
        let mut last = main_of(&repo);
        let client = reqwest::Client::new();
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = main_of(&repo);
            if now == last {
                continue;
            }
            let after = now.clone().unwrap_or_default();
            let body = format!(
                r#"{{"ref":"refs/heads/main","after":"{after}","repository":{{"full_name":"acme/fleet"}}}}"#
            );
            let mut mac =
                Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("hmac");
            mac.update(body.as_bytes());
            let signature: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let sent = client
                .post(format!("{url}/webhook"))
                .header("X-GitHub-Event", "push")
                .header("X-GitHub-Delivery", format!("push-{after}"))
                .header("X-Hub-Signature-256", format!("sha256={signature}"))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await;
            assert!(
                sent.is_ok_and(|r| r.status().as_u16() == 202),
                "the daemon takes the push webhook"
            );
            last = now;
        }
    }))
}

fn spawn(stack: &Stack, repo: &Path, app: &App, holder: &str) -> Daemon {
    let env = env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Daemon::spawn(
        stack,
        &format!("  path: {}", repo.display()),
        &events_yaml(app, holder),
        &env,
    )
}

/// Every accepted event verifies under the receiver's secret with the documented verifier.
fn assert_signed(accepted: &[Accepted]) {
    for a in accepted {
        signature::verify(
            &a.signature,
            &a.body,
            &[Secret::new(EVENTS_SECRET.to_owned())],
            SystemTime::now(),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&a.body)));
    }
}

/// The events the status branch of `repo` holds.
fn derived(repo: &Path) -> Vec<LifecycleEvent> {
    let git = git2::Repository::open(repo).expect("open");
    let Ok(tip) = git.refname_to_id("refs/heads/tether/status") else {
        return Vec::new();
    };
    Deriver::new().advance(&git, tip).expect("derive")
}

/// Kills the billing receiver when the test ends; keeps the Stripe emulator it reads serving
/// until then.
struct Billing {
    child: std::process::Child,
    _stripe: StripeEmulator,
}

impl Drop for Billing {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const STRIPE_KEY: &str = "sk_test_e2e_events";

/// `tether billing serve` committing to `repo`, reading a Stripe emulator that bills
/// `subscriptions` on the `pro_monthly` price; its URL.
async fn billing_serve(
    repo: &Path,
    config_dir: &Path,
    subscriptions: &[String],
) -> (Billing, String) {
    let stripe = StripeEmulator::start(Token::from(STRIPE_KEY))
        .await
        .expect("start the Stripe emulator");
    for subscription in subscriptions {
        stripe.seed(subscription, "cus_e2e", "pro_monthly");
    }
    std::fs::write(config_dir.join("mapping.yaml"), MAPPING).expect("mapping");
    let config = format!(
        "listen: 127.0.0.1:0\nrepo: {}\nbranch: main\nmapping: mapping.yaml\n",
        repo.display()
    );
    std::fs::write(config_dir.join("billing.yaml"), config).expect("config");
    let mut child = Command::new(tether_bin())
        .args(["billing", "serve", "--config"])
        .arg(config_dir.join("billing.yaml"))
        .env("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET)
        .env("STRIPE_API_KEY", STRIPE_KEY)
        .env("STRIPE_API_URL", stripe.url())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tether billing serve");
    let stdout = child.stdout.take().expect("stdout");
    let billing = Billing {
        child,
        _stripe: stripe,
    };
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("first line");
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no endpoint announced: {first:?}"))
        .to_owned();
    (billing, url)
}

/// A Stripe-signed `customer.subscription.created` for `subscription`.
async fn pay(billing: &str, subscription: &str) {
    let body = serde_json::json!({
        "id": format!("evt_{subscription}"), "object": "event", "type": "customer.subscription.created", "created": 1_800_000_000,
        "data": {"object": {"id": subscription, "object": "subscription", "customer": "cus_e2e", "status": "active",
            "items": {"object": "list", "data": [{"price": {"id": "price_1", "lookup_key": "pro_monthly", "product": "prod_1"}}]}}}
    })
    .to_string();
    let stripe = tether::billing::serve::signature::sign(
        &Secret::from(STRIPE_SECRET),
        tether::billing::serve::signature::unix(SystemTime::now()),
        body.as_bytes(),
    );
    let response = reqwest::Client::new()
        .post(format!("{billing}/stripe"))
        .header("Stripe-Signature", stripe)
        .body(body)
        .send()
        .await
        .expect("billing answers");
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_subscription_reaches_the_app_as_a_signed_agent_ready_with_the_vms_addresses() {
    let stack = Stack::start(StackOptions::with_latency(LatencyProfile::Realistic, 0.05))
        .await
        .expect("emulators");
    let repo = bare_fleet();
    let app = App::start(Mode::Up);
    let cache = tempfile::tempdir().expect("cache");
    let daemon = spawn_remote(&stack, repo.path(), cache.path(), &app, "");
    daemon.wait_ready().await;
    let _forge = forge(repo.path(), daemon.url().await);
    let long = Duration::from_secs(60);
    app.wait_for(
        long,
        "the example fleet's last ready",
        |e| e["type"] == "agent.ready" && e["subject"] == "globex-support",
        || daemon.log_text(),
    )
    .await;

    let config = tempfile::tempdir().expect("config dir");
    let (_billing, billing) =
        billing_serve(repo.path(), config.path(), &["sub_e2eNew".to_owned()]).await;
    let paid = Instant::now();
    pay(&billing, "sub_e2eNew").await;
    let ready = app
        .wait_for(
            long,
            "agent.ready of the paid agent",
            |e| e["type"] == "agent.ready" && e["subject"] == "sub-e2enew",
            || daemon.log_text(),
        )
        .await;
    eprintln!(
        "payment to agent.ready at the app: {:?} (realistic latencies at 0.05)",
        ready.at - paid
    );
    let provisioning = app
        .wait_for(
            Duration::ZERO,
            "agent.provisioning of the paid agent",
            |e| e["type"] == "agent.provisioning" && e["subject"] == "sub-e2enew",
            || daemon.log_text(),
        )
        .await;
    assert!(provisioning.at <= ready.at, "provisioning first");
    assert_signed(&app.accepted());

    let event = ready.json();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["source"], "/tether/fleets/aura-prod");
    assert!(
        event["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("evt_"))
    );
    assert_eq!(
        event["sequence"].as_u64(),
        provisioning.json()["sequence"].as_u64().map(|s| s + 1)
    );
    let data = &event["data"];
    let server = stack
        .hetzner
        .servers()
        .into_iter()
        .find(|s| s.name == "sub-e2enew")
        .expect("the paid agent's server");
    assert_eq!(data["serverId"], server.id);
    assert_eq!(data["serverType"], "cpx21");
    assert_eq!(data["location"], "fsn1");
    assert_eq!(data["hostname"], "sub-e2enew");
    let (token, endpoint) = (stack.hetzner_token(), stack.hetzner.url());
    let live: serde_json::Value = reqwest::Client::new()
        .get(format!("{endpoint}/servers/{}", server.id))
        .bearer_auth(token.expose())
        .send()
        .await
        .expect("GET server")
        .json()
        .await
        .expect("json");
    let net = &live["server"]["public_net"];
    assert_eq!(data["ipv4"], net["ipv4"]["ip"]);
    assert_eq!(data["ipv6"], net["ipv6"]["ip"]);
    let device = stack
        .tailscale
        .devices()
        .into_iter()
        .find(|d| d.hostname == "sub-e2enew")
        .expect("the paid agent's device");
    assert_eq!(data["deviceId"], device.node_id, "the stable node id");
    assert_eq!(
        data["tailnetIps"],
        serde_json::json!(device.addresses),
        "{event}"
    );
    daemon.stop().await;
}

/// The events accepted, by id, with each agent's sequences in arrival order.
fn check_delivery(repo: &Path, app: &App) {
    let accepted = app.accepted();
    assert_signed(&accepted);
    let on_branch = derived(repo);
    let want: BTreeSet<&str> = on_branch.iter().map(|e| e.id.as_str()).collect();
    let bodies: Vec<serde_json::Value> = accepted.iter().map(Accepted::json).collect();
    let got: BTreeSet<&str> = bodies.iter().filter_map(|b| b["id"].as_str()).collect();
    assert_eq!(
        got, want,
        "every event on the status branch, and no other id"
    );
    let mut by_sequence: BTreeMap<(String, u64), BTreeSet<String>> = BTreeMap::new();
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for b in &bodies {
        let agent = b["subject"].as_str().expect("subject").to_owned();
        let sequence = b["sequence"].as_u64().expect("sequence");
        let id = b["id"].as_str().expect("id").to_owned();
        by_sequence
            .entry((agent.clone(), sequence))
            .or_default()
            .insert(id.clone());
        if !seen.insert(id) {
            continue; // a redelivery, under the same id
        }
        let previous = last.insert(agent.clone(), sequence).unwrap_or(0);
        assert_eq!(
            sequence,
            previous + 1,
            "{agent}'s events arrive in order, none skipped"
        );
    }
    for ((agent, sequence), ids) in by_sequence {
        assert_eq!(ids.len(), 1, "{agent} #{sequence} under one id: {ids:?}");
    }
}

/// A value of the holder's `/metrics`, summed over series starting with `prefix`.
async fn metric(daemon: &Daemon, prefix: &str) -> f64 {
    let Ok(r) = reqwest::get(format!("{}/metrics", daemon.url().await)).await else {
        return 0.0;
    };
    r.text()
        .await
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn until(limit: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_survives_a_receiver_down_a_receiver_failing_a_kill_and_a_failover_losing_and_renaming_nothing()
 {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = example_fleet();
    commit_all(repo.path(), "main", "seed the example fleet");
    let app = App::start(Mode::Down);
    let first = spawn(&stack, repo.path(), &app, "daemon-a");
    first.wait_ready().await;
    let second = spawn(&stack, repo.path(), &app, "daemon-b");
    let long = Duration::from_secs(60);

    // Down for "10 minutes" (1 s at this scale), then answering 500 for "an hour" (6 s).
    until(long, "the first pass's events pending", async || {
        metric(&first, "tether_events_pending{").await >= 1.0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.set(Mode::Failing);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        app.attempts() >= 3,
        "retried while failing: {}",
        app.attempts()
    );
    assert!(app.accepted().is_empty());
    app.set(Mode::Up);
    until(
        long,
        "every event on the status branch accepted",
        async || {
            let got: BTreeSet<String> = app
                .accepted()
                .iter()
                .filter_map(|a| a.json()["id"].as_str().map(str::to_owned))
                .collect();
            derived(repo.path()).iter().all(|e| got.contains(&e.id))
        },
    )
    .await;
    assert!(app.accepted().len() >= 12, "6 agents provisioned and ready");
    assert!(
        metric(
            &first,
            "tether_event_deliveries_total{endpoint=\"app\",outcome=\"failed\"}"
        )
        .await
            >= 3.0
    );

    // A new agent while the app fails; the holder is killed before it delivers its events,
    // and the standby takes the lease over and delivers them.
    app.set(Mode::Failing);
    let spec = std::fs::read_to_string(repo.path().join("agents/acme/acme-prod.yaml"))
        .expect("spec")
        .replace("name: acme-prod", "name: acme-extra")
        .replace("sub_1OaBcAcmeProd", "sub_1OaBcAcmeExtra")
        .replace("protect: true", "protect: false");
    std::fs::write(repo.path().join("agents/acme/acme-extra.yaml"), spec).expect("write spec");
    commit_all(repo.path(), "main", "billing: acme-extra");
    until(long, "acme-extra ready on the status branch", async || {
        derived(repo.path())
            .iter()
            .any(|e| e.agent == "acme-extra" && e.kind.as_str() == "agent.ready")
    })
    .await;
    let mut first = first;
    first.child.start_kill().expect("SIGKILL");
    let _ = first.child.wait().await;
    app.set(Mode::Up);
    app.wait_for(
        long,
        "acme-extra's ready from the daemon that took over",
        |e| e["type"] == "agent.ready" && e["subject"] == "acme-extra",
        || second.log_text(),
    )
    .await;
    assert!(
        second.log_text().contains("event delivered"),
        "the standby delivered:\n{}",
        second.log_text()
    );
    check_delivery(repo.path(), &app);
    second.stop().await;
}

/// Emulated cloud time of one new agent under the realistic profile at `scale`: the create
/// action and the boot to enrolment, which tether waits for but does not spend.
fn cloud_time(scale: f64) -> Duration {
    (tether_emulators::hetzner::Latencies::realistic().create
        + tether::sandbox::stack::REALISTIC_BOOT)
        .mul_f64(scale)
}

/// `n` payments at once, each to its `agent.ready` at the app: every total, and tether's own
/// share (the total minus the emulated cloud time), sorted.
async fn payments_to_ready(n: usize, scale: f64) -> (Vec<Duration>, Vec<Duration>) {
    let stack = Stack::start(StackOptions::with_latency(LatencyProfile::Realistic, scale))
        .await
        .expect("emulators");
    let repo = bare_fleet();
    let app = App::start(Mode::Up);
    let cache = tempfile::tempdir().expect("cache");
    let daemon = spawn_remote(&stack, repo.path(), cache.path(), &app, "concurrency: 32\n");
    daemon.wait_ready().await;
    let _forge = forge(repo.path(), daemon.url().await);
    let long = Duration::from_secs(120);
    app.wait_for(
        long,
        "the example fleet ready",
        |e| e["type"] == "agent.ready" && e["subject"] == "globex-support",
        || daemon.log_text(),
    )
    .await;
    let config = tempfile::tempdir().expect("config dir");
    let subscriptions: Vec<String> = (0..n).map(|i| format!("sub_bench{i:03}")).collect();
    let (_billing, billing) = billing_serve(repo.path(), config.path(), &subscriptions).await;
    let paid = Instant::now();
    let sends: Vec<_> = subscriptions
        .iter()
        .map(|s| {
            let (billing, s) = (billing.clone(), s.clone());
            tokio::spawn(async move { pay(&billing, &s).await })
        })
        .collect();
    for send in sends {
        send.await.expect("a payment");
    }
    let mut totals = Vec::new();
    for s in &subscriptions {
        let agent = s.replace('_', "-").to_lowercase();
        let ready = app
            .wait_for(
                long,
                "agent.ready of a paid agent",
                |e| e["type"] == "agent.ready" && e["subject"] == agent.as_str(),
                || daemon.log_text(),
            )
            .await;
        assert!(ready.json()["data"]["ipv4"].is_string(), "an address");
        totals.push(ready.at - paid);
    }
    assert_signed(&app.accepted());
    daemon.stop().await;
    totals.sort();
    let cloud = cloud_time(scale);
    let overheads = totals.iter().map(|t| t.saturating_sub(cloud)).collect();
    (totals, overheads)
}

/// The numbers of docs/benchmarks.md ("Payment to ready"): one payment, then fifty at once,
/// under the realistic profile at 0.05. Run with
/// `cargo test -p tether-e2e --test e2e events::payment_to_ready -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: about a minute; run by hand for docs/benchmarks.md"]
async fn payment_to_ready_for_one_and_fifty_simultaneous_payments() {
    let scale = 0.05;
    for n in [1, 50] {
        let (totals, overheads) = payments_to_ready(n, scale).await;
        let p = |v: &[Duration], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        eprintln!(
            "{n} payment(s) at scale {scale}: total p50 {:?} p99 {:?} max {:?}; tether's own share p50 {:?} p99 {:?} (cloud {:?})",
            p(&totals, 0.5),
            p(&totals, 0.99),
            totals[totals.len() - 1],
            p(&overheads, 0.5),
            p(&overheads, 0.99),
            cloud_time(scale)
        );
        assert!(
            p(&overheads, 0.99) <= Duration::from_secs(3),
            "tether's own share at p99 within 3 s: {overheads:?}"
        );
    }
}
