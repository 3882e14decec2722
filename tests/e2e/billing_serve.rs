//! `tether billing serve` as a process: configuration from a file and the environment, a
//! signed Stripe delivery committed to a real repository, and a refused configuration.

use crate::common::{commit_all, example_fleet, tether, tether_bin};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::SystemTime;
use tether::billing::serve::signature;
use tether::secret::Secret;
use tether_emulators::Token;
use tether_emulators::stripe::StripeEmulator;

const SECRET: &str = "whsec_e2e_serve";
const MAPPING: &str = "statuses: {active: present, trialing: present, past_due: present, unpaid: off, paused: off, canceled: absent, incomplete: absent, incomplete_expired: absent}\nprices:\n  - {lookupKey: pro_monthly, plan: pro, type: cpx21, location: fsn1, runtime: 1.4.2}\n";

/// Kills the receiver when the test ends, whatever happens.
struct Receiver(std::process::Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_delivery_to_the_running_receiver_is_committed_with_its_trailer() {
    let repo = example_fleet();
    commit_all(repo.path(), "main", "seed the example fleet");
    let stripe = StripeEmulator::start(Token::from("sk_test_e2e_serve"))
        .await
        .expect("start the Stripe emulator");
    stripe.seed("sub_e2eNew", "cus_e2e", "pro_monthly");
    let config_dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(config_dir.path().join("mapping.yaml"), MAPPING).expect("mapping");
    let config = format!(
        "listen: 127.0.0.1:0\nrepo: {}\nbranch: main\nmapping: mapping.yaml\n",
        repo.path().display()
    );
    std::fs::write(config_dir.path().join("billing.yaml"), config).expect("config");
    let mut child = Command::new(tether_bin())
        .args(["billing", "serve", "--config"])
        .arg(config_dir.path().join("billing.yaml"))
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .env("STRIPE_API_KEY", "sk_test_e2e_serve")
        .env("STRIPE_API_URL", stripe.url())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tether billing serve");
    let stdout = child.stdout.take().expect("stdout");
    let receiver = Receiver(child);
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("first line");
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no endpoint announced: {first:?}"))
        .to_owned();

    let body = serde_json::json!({
        "id": "evt_e2e_1", "object": "event", "type": "customer.subscription.created", "created": 1_800_000_000,
        "data": {"object": {"id": "sub_e2eNew", "object": "subscription", "customer": "cus_e2e", "status": "active",
            "items": {"object": "list", "data": [{"price": {"id": "price_1", "lookup_key": "pro_monthly", "product": "prod_1"}}]}}}
    })
    .to_string();
    let header = signature::sign(
        &Secret::from(SECRET),
        signature::unix(SystemTime::now()),
        body.as_bytes(),
    );
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{url}/stripe"))
        .header("Stripe-Signature", header)
        .body(body)
        .send()
        .await
        .expect("the receiver answers");
    assert_eq!(response.status().as_u16(), 200);
    let git = git2::Repository::open(repo.path()).expect("open");
    let head = git
        .revparse_single("main")
        .expect("main")
        .peel_to_commit()
        .expect("commit");
    let message = head.message().unwrap_or_default().to_owned();
    assert!(
        message.contains("Tether-Stripe-Event: evt_e2e_1 sub_e2eNew 1800000000"),
        "{message}"
    );
    let tree = head.tree().expect("tree");
    assert!(
        tree.get_path(std::path::Path::new("agents/cus-e2e/sub-e2enew.yaml"))
            .is_ok(),
        "the spec is on main"
    );
    let health = client
        .get(format!("{url}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let metrics = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    assert!(
        metrics.contains("tether_billing_deliveries_total{outcome=\"applied\"} 1"),
        "{metrics}"
    );
    drop(receiver);
}

#[test]
fn a_configuration_with_an_inline_secret_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("billing.yaml"),
        "repo: fleet\nmapping: m.yaml\nwebhook:\n  secret: whsec_inline_value\n",
    )
    .expect("config");
    let config = dir.path().join("billing.yaml");
    let run = tether(
        dir.path(),
        &[
            "billing",
            "serve",
            "--config",
            config.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("billing.yaml:4:3: `webhook.secret`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("secrets never go in the config file"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("whsec_inline_value"),
        "the value is never echoed"
    );
}
