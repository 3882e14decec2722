//! Benchmark: converge 50 new agents against the emulators (default latencies), and count the
//! Hetzner API requests of 100 concurrent creates with batched action polling.
//!
//! Run with `cargo bench -p tether --bench converge`.

use std::time::{Duration, Instant};
use tether::apply::{self, Options};
use tether::cloud::{ActionId, Compute, NewServer};
use tether::observe::observe;
use tether::plan::{Context, plan};
use tether::sandbox::stack::{Stack, StackOptions};
use tether_schema::{Content, SourceFile, load_fleet};

const AGENTS: usize = 50;
const RUNS: usize = 5;

fn fleet() -> tether_schema::Fleet {
    let mut files = vec![SourceFile {
        path: "fleet.yaml".into(),
        content: Content::Bytes(
            b"apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: bench}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04, sshKeys: [ops-2026]}}\n  tailscale: {tags: [\"tag:agent\"]}\n  policy: {prune: true}\n  catalog: {serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}\n".to_vec(),
        ),
    }];
    for i in 0..AGENTS {
        let text = format!(
            "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: agent-{i:02}}}\nspec:\n  subscription: sub_{i:02}\n  runtime: {{version: \"1.4.2\"}}\n"
        );
        files.push(SourceFile {
            path: format!("agents/agent-{i:02}.yaml"),
            content: Content::Bytes(text.into_bytes()),
        });
    }
    load_fleet(&files).expect("valid bench fleet")
}

async fn converge_once() -> (Duration, usize) {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let compute = stack
        .hetzner_client(Duration::from_millis(25))
        .expect("hetzner client");
    let tailnet = stack.tailscale_client().expect("tailscale client");
    let fleet = fleet();
    let options = Options {
        concurrency: AGENTS,
        device_poll: Duration::from_millis(25),
        ..Options::default()
    };
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let observed = observe(&compute, &tailnet).await.expect("observe");
    let p = plan(&fleet, &observed, &Context::default());
    let report = apply::apply(&p, &fleet, &compute, &tailnet, &options, stop)
        .await
        .expect("apply");
    let elapsed = started.elapsed();
    assert!(report.succeeded(), "{report}");
    let online = stack
        .tailscale
        .devices()
        .iter()
        .filter(|d| d.online)
        .count();
    assert_eq!(online, AGENTS);
    stack.shutdown().await;
    (elapsed, report.done("create"))
}

async fn requests_per_create() -> f64 {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let client = stack
        .hetzner_client(Duration::from_millis(50))
        .expect("client");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let client = client.clone();
        tasks.spawn(async move {
            let new = NewServer {
                name: format!("s-{i:03}"),
                server_type: "cpx21".into(),
                image: "ubuntu-24.04".into(),
                location: "fsn1".into(),
                ssh_keys: vec![],
                user_data: None,
                labels: Default::default(),
                start_after_create: true,
            };
            let c = client.create_server(&new).await.expect("create");
            let ids: Vec<ActionId> = std::iter::once(c.action.id)
                .chain(c.next_actions.iter().map(|a| a.id))
                .collect();
            client.wait_for_actions(&ids).await.expect("wait");
        });
    }
    while tasks.join_next().await.is_some() {}
    let per = stack.hetzner.requests().total() as f64 / 100.0;
    stack.shutdown().await;
    per
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let (t, created) = rt.block_on(converge_once());
        assert_eq!(created, AGENTS);
        times.push(t);
    }
    times.sort();
    println!(
        "converge {AGENTS} new agents (plan + apply until every device is online) over {RUNS} runs: min {:.2?}, median {:.2?}, max {:.2?}",
        times[0],
        times[RUNS / 2],
        times[RUNS - 1]
    );
    println!(
        "100 concurrent creates with batched polling: {:.2} Hetzner API requests per server",
        rt.block_on(requests_per_create())
    );
}
