//! The receiver under test over real HTTP: a bare fleet repository (or a clone), the Stripe
//! emulator's API as the source of each subscription's state, and signed deliveries.

use super::http::Receiver;
use super::mapping::Mapping;
use super::metrics::BillingMetrics;
use super::queue::{Destination, Queue, Source};
use super::read::Reader;
use super::signature;
use super::trigger::Trigger;
use crate::audit::commit::Identity;
use crate::billing::stripe::{API_KEY_ENV, API_URL_ENV, StripeApi};
use crate::secret::Secret;
use git2::{Repository, Signature};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tether_emulators::Token;
use tether_emulators::stripe::StripeEmulator;

pub const SECRET: &str = "whsec_test_secret";
pub const KEY: &str = "sk_test_receiver";
/// `basic_monthly` leaves type and location to fleet.yaml's defaults.
pub const MAPPING: &str = "statuses:\n  active: present\n  trialing: present\n  past_due: present\n  unpaid: off\n  paused: off\n  canceled: absent\n  incomplete: absent\n  incomplete_expired: absent\nprices:\n  - lookupKey: pro_monthly\n    plan: pro\n    type: cpx21\n    location: fsn1\n    runtime: 1.4.2\n  - lookupKey: big_monthly\n    plan: big\n    type: cpx31\n    location: hel1\n    runtime: 1.4.2\n  - lookupKey: basic_monthly\n    plan: basic\n    runtime: 1.4.2\n  - lookupKey: broken\n    location: mars1\n    runtime: 1.4.2\n";

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub client: reqwest::Client,
    pub metrics: Arc<BillingMetrics>,
    pub stripe: Arc<StripeEmulator>,
    pub server: tokio::task::JoinHandle<()>,
}

pub fn seeded(dir: &Path) -> Result<(), git2::Error> {
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

/// A clone (with a work tree) whose `main`, holding fleet.yaml, is checked out.
pub fn seeded_clone(dir: &Path) -> Result<(), git2::Error> {
    let repo = Repository::init(dir)?;
    let fleet = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet/fleet.yaml"))
        .map_err(|e| git2::Error::from_str(&e.to_string()))?;
    std::fs::write(dir.join("fleet.yaml"), &fleet)
        .map_err(|e| git2::Error::from_str(&e.to_string()))?;
    let mut index = repo.index()?;
    index.add_path(Path::new("fleet.yaml"))?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = Signature::now("seed", "seed@example.com")?;
    repo.commit(Some("refs/heads/main"), &sig, &sig, "seed", &tree, &[])?;
    repo.set_head("refs/heads/main")?;
    Ok(())
}

pub async fn harness(max_batch: usize) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    seeded(dir.path()).expect("seed the fleet");
    let stripe = StripeEmulator::start(Token::from(KEY))
        .await
        .expect("start the Stripe emulator");
    receiver_on(dir, Arc::new(stripe), max_batch, 1_000).await
}

/// A fresh receiver (new writer, new ledger) on the repository in `dir`, reading `stripe` at
/// most `reads_per_second` a second: also a restart.
pub async fn receiver_on(
    dir: tempfile::TempDir,
    stripe: Arc<StripeEmulator>,
    max_batch: usize,
    reads_per_second: u32,
) -> Harness {
    receiver_with(dir, stripe, max_batch, reads_per_second, None).await
}

/// [`receiver_on`], asking `trigger` for a pass after each commit.
pub async fn receiver_with(
    dir: tempfile::TempDir,
    stripe: Arc<StripeEmulator>,
    max_batch: usize,
    reads_per_second: u32,
    trigger: Option<Trigger>,
) -> Harness {
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
        trigger,
    };
    let url = stripe.url();
    let api = StripeApi::from_env(&|var| match var {
        API_KEY_ENV => Some(KEY.to_owned()),
        API_URL_ENV => Some(url.clone()),
        _ => None,
    })
    .expect("a configured API");
    let source = Source {
        reader: Reader::new(api, reads_per_second),
        mapping: Mapping::parse(Path::new("mapping.yaml"), MAPPING).expect("mapping"),
    };
    let queue = Queue::spawn(destination, max_batch, source, metrics.clone());
    let receiver = Arc::new(Receiver::new(
        vec![Secret::from("whsec_old_secret"), Secret::from(SECRET)],
        signature::DEFAULT_TOLERANCE,
        queue,
        metrics.clone(),
        Duration::from_secs(30),
        Arc::new(SystemTime::now),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}/stripe", listener.local_addr().expect("addr"));
    let app = receiver.router();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Harness {
        dir,
        url: endpoint,
        client: reqwest::Client::new(),
        metrics,
        stripe,
        server,
    }
}

/// An event body about `sub` (customer `cus_<sub>`) as of `created`.
pub fn event(id: &str, kind: &str, created: i64, sub: &str, status: &str, lookup: &str) -> String {
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
    /// Stripe's state of `sub` (customer `cus_<sub>`) becomes `status` on `lookup`'s price.
    pub fn stripe_says(&self, sub: &str, status: &str, lookup: &str) {
        self.stripe.seed(sub, &format!("cus_{sub}"), lookup);
        if status != "active" {
            self.stripe.set_status(sub, status);
        }
    }

    /// Signs `body` now (a fresh signature, as Stripe makes for every attempt) and sends it.
    pub async fn deliver(&self, body: &str) -> (u16, Value) {
        self.redeliver(body, 0).await
    }

    /// Like [`Harness::deliver`], signed `seconds_ago`: Stripe's retry of an earlier attempt
    /// carries a new timestamp, hence a new signature.
    pub async fn redeliver(&self, body: &str, seconds_ago: i64) -> (u16, Value) {
        let t = signature::unix(SystemTime::now()) - seconds_ago;
        let header = signature::sign(&Secret::from(SECRET), t, body.as_bytes());
        self.send(body, &header).await
    }

    pub async fn send(&self, body: &str, header: &str) -> (u16, Value) {
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

    pub fn repo(&self) -> Repository {
        Repository::open(self.dir.path()).expect("open")
    }

    /// The spec of `sub` on the branch tip, if any.
    pub fn spec(&self, sub: &str) -> Option<String> {
        self.specs().remove(sub)
    }

    /// Every agent spec on the branch tip, by its subscription.
    pub fn specs(&self) -> BTreeMap<String, String> {
        let repo = self.repo();
        let tree = repo
            .revparse_single("main^{tree}")
            .expect("tip")
            .peel_to_tree()
            .expect("tree");
        let mut specs = BTreeMap::new();
        for file in crate::source::git::tree_files(&repo, &tree).expect("files") {
            if !file.path.starts_with("agents/") {
                continue;
            }
            let tether_schema::Content::Bytes(bytes) = &file.content else {
                continue;
            };
            let text = String::from_utf8_lossy(bytes).into_owned();
            let sub = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("subscription: "))
                .expect("a subscription")
                .to_owned();
            specs.insert(sub, text);
        }
        specs
    }

    pub fn commits(&self) -> usize {
        let repo = self.repo();
        let mut walk = repo.revwalk().expect("walk");
        walk.push_ref("refs/heads/main").expect("main");
        walk.count() - 1
    }

    pub fn head_message(&self) -> String {
        let repo = self.repo();
        let head = repo
            .revparse_single("main")
            .expect("tip")
            .peel_to_commit()
            .expect("commit");
        head.message().unwrap_or_default().to_owned()
    }
}
