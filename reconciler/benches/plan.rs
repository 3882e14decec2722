//! Benchmark: plan a fleet of 10,000 agents against 10,000 servers and 10,000 devices.
//!
//! Run with `cargo bench -p tether --bench plan`. Prints the minimum / median / maximum time to
//! read the fleet's files from a packed git repository (as `tether plan --repo` does), to load
//! (parse and validate) them, and of `plan()`, each over several runs, and the CPU time of each.
//! Then the daemon's steady state: a pass on a tree it loaded before resolves the revision to
//! its tree id and takes the fleet from its [`FleetCache`] before planning.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tether::cloud::tailscale::{Device, DeviceId};
use tether::cloud::{Euros, Server, ServerId, ServerStatus};
use tether::plan::{Context, Observed, plan};
use tether::source::fleets::FleetCache;
use tether_schema::{Content, SourceFile, labels, load_fleet};

const AGENTS: usize = 10_000;
const RUNS: usize = 15;
const LOAD_RUNS: usize = 5;

fn files() -> Vec<SourceFile> {
    let mut files = vec![SourceFile {
        path: "fleet.yaml".into(),
        content: Content::Bytes(
            b"apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: bench}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  policy: {prune: true, maxDeletionsPerRun: 100, maxDeletionPercent: 10}\n  catalog: {serverTypes: [cpx11, cpx21, cpx31], locations: [fsn1, nbg1], images: [ubuntu-24.04]}\n".to_vec(),
        ),
    }];
    for i in 0..AGENTS {
        let text = format!(
            "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: agent-{i:05}, labels: {{customer: cus_{}, plan: pro}}}}\nspec:\n  subscription: sub_{i:05}\n  server: {{type: cpx{}1, location: {}}}\n  runtime: {{version: \"1.4.2\", env: {{LOG_LEVEL: info}}}}\n",
            i / 7,
            1 + i % 3,
            if i % 2 == 0 { "fsn1" } else { "nbg1" }
        );
        files.push(SourceFile {
            path: format!("agents/agent-{i:05}.yaml"),
            content: Content::Bytes(text.into_bytes()),
        });
    }
    files
}

/// A bare repository in `dir` whose `main` holds `files`, packed as a clone's objects are.
fn packed_repo(dir: &std::path::Path, files: &[SourceFile]) -> Result<(), git2::Error> {
    let loose = tempfile::tempdir().map_err(|e| git2::Error::from_str(&e.to_string()))?;
    let src = git2::Repository::init_bare(loose.path())?;
    let mut agents = src.treebuilder(None)?;
    let mut root = src.treebuilder(None)?;
    for file in files {
        let Content::Bytes(bytes) = &file.content else {
            continue;
        };
        let blob = src.blob(bytes)?;
        match file.path.strip_prefix("agents/") {
            Some(name) => agents.insert(name, blob, 0o100_644)?,
            None => root.insert(&file.path, blob, 0o100_644)?,
        };
    }
    root.insert("agents", agents.write()?, 0o040_000)?;
    let tree = src.find_tree(root.write()?)?;
    let sig = git2::Signature::now("bench", "bench@tether.invalid")?;
    let commit = src.commit(None, &sig, &sig, "bench fleet", &tree, &[])?;
    let dst = git2::Repository::init_bare(dir)?;
    let mut pack = src.packbuilder()?;
    pack.insert_commit(commit)?;
    let odb = dst.odb()?;
    let mut writer = odb.packwriter()?;
    pack.foreach(|chunk| std::io::Write::write_all(&mut writer, chunk).is_ok())?;
    writer.commit()?;
    dst.reference("refs/heads/main", commit, true, "bench")?;
    Ok(())
}

fn main() {
    let files = files();
    let repo = tempfile::tempdir().expect("temp dir");
    packed_repo(repo.path(), &files).expect("bench repository");
    // Memory first, before other loads leave freed pages behind: the cache's fleet plus the
    // copy handed to the pass.
    let cache = FleetCache::new();
    let rss_before = rss();
    let held = cache.read(repo.path(), "main").expect("readable");
    let fleet_bytes = rss()
        .zip(rss_before)
        .map(|(after, before)| after.saturating_sub(before) / 2);
    assert!(held.fleet.is_ok(), "the bench fleet loads");
    drop(held);
    let mut reads: Vec<Duration> = Vec::with_capacity(LOAD_RUNS);
    let cpu_before = cpu_time();
    for _ in 0..LOAD_RUNS {
        let started = Instant::now();
        let snapshot = tether::source::git::read(repo.path(), "main").expect("readable");
        reads.push(started.elapsed());
        assert_eq!(snapshot.files.len(), files.len());
        std::hint::black_box(snapshot);
    }
    let read_cpu = cpu_time().map(|after| (after - cpu_before.unwrap_or(after)) / LOAD_RUNS as u32);
    reads.sort();
    let mut loads: Vec<Duration> = Vec::with_capacity(LOAD_RUNS);
    let mut loaded = None;
    let cpu_before = cpu_time();
    for _ in 0..LOAD_RUNS {
        let started = Instant::now();
        loaded = Some(load_fleet(&files).expect("valid bench fleet"));
        loads.push(started.elapsed());
    }
    let load_cpu = cpu_time().map(|after| (after - cpu_before.unwrap_or(after)) / LOAD_RUNS as u32);
    loads.sort();
    let fleet = loaded.expect("loaded at least once");

    // 10,000 servers: 9,950 converged, 30 resized, 20 orphans; one device per server.
    let mut servers = Vec::with_capacity(AGENTS);
    let mut devices = Vec::with_capacity(AGENTS);
    for (i, (name, agent)) in fleet.agents.iter().enumerate() {
        let (name, mut server_type) = if i < AGENTS - 20 {
            (name.to_string(), agent.server.server_type.to_string())
        } else {
            (format!("gone-{i}"), "cpx21".to_owned())
        };
        if i % 331 == 0 {
            server_type = "cpx31".into();
        }
        let mut l = labels::server_labels(agent, &fleet.settings);
        l.insert(labels::AGENT.into(), name.clone());
        servers.push(Server {
            id: ServerId(i as u64 + 1),
            name: name.clone(),
            status: ServerStatus::Running,
            server_type,
            location: agent.server.location.to_string(),
            image: Some(agent.server.image.to_string()),
            labels: l,
            ipv4: None,
            ipv6: None,
            created: "2026-11-23T00:00:00Z".into(),
            delete_protected: false,
            rebuild_protected: false,
            disk_gb: None,
            project: None,
        });
        devices.push(Device {
            id: DeviceId(format!("d{i}")),
            legacy_id: i.to_string(),
            name: format!("{name}.tail0000.ts.net"),
            hostname: name,
            addresses: vec![],
            user: "tagged-devices".into(),
            tags: vec!["tag:agent".into()],
            authorized: true,
            online: true,
            last_seen: None,
            created: "2026-11-23T00:01:00Z".into(),
            expires: None,
            ephemeral: false,
            external: false,
            os: "linux".into(),
            client_version: String::new(),
            enabled_routes: None,
        });
    }
    let prices: BTreeMap<(String, String), Euros> = ["cpx11", "cpx21", "cpx31"]
        .iter()
        .flat_map(|t| ["fsn1", "nbg1"].map(|l| ((t.to_string(), l.to_string()), Euros(95_200))))
        .collect();
    let observed = Observed {
        servers,
        devices,
        prices,
        offer: Default::default(),
    };
    let ctx = Context {
        previous_agents: Some(AGENTS),
        ..Context::default()
    };

    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut actions = 0;
    let cpu_before = cpu_time();
    for _ in 0..RUNS {
        let t = Instant::now();
        let p = plan(&fleet, &observed, &ctx);
        times.push(t.elapsed());
        actions = p.actions.len();
        std::hint::black_box(p);
    }
    let plan_cpu = cpu_time().map(|after| (after - cpu_before.unwrap_or(after)) / RUNS as u32);
    times.sort();
    let mut steady: Vec<Duration> = Vec::with_capacity(RUNS);
    let cpu_before = cpu_time();
    for _ in 0..RUNS {
        let t = Instant::now();
        let loaded = cache.read(repo.path(), "main").expect("readable");
        let fleet = loaded.fleet.expect("cached");
        let p = plan(&fleet, &observed, &ctx);
        steady.push(t.elapsed());
        std::hint::black_box(p);
    }
    let steady_cpu = cpu_time().map(|after| (after - cpu_before.unwrap_or(after)) / RUNS as u32);
    steady.sort();
    let cpu_before = cpu_time();
    for _ in 0..RUNS {
        std::hint::black_box(cache.read(repo.path(), "main").expect("readable"));
    }
    let hit_cpu = cpu_time().map(|after| (after - cpu_before.unwrap_or(after)) / RUNS as u32);
    assert_eq!(cache.loads(), 1, "every steady-state pass is a cache hit");
    println!(
        "git read ({AGENTS} agent files, packed) over {LOAD_RUNS} runs: min {:.2?}, median {:.2?}, max {:.2?}",
        reads[0],
        reads[LOAD_RUNS / 2],
        reads[LOAD_RUNS - 1]
    );
    println!(
        "fleet load ({AGENTS} agent files) over {LOAD_RUNS} runs: min {:.2?}, median {:.2?}, max {:.2?}",
        loads[0],
        loads[LOAD_RUNS / 2],
        loads[LOAD_RUNS - 1]
    );
    println!(
        "plan ({AGENTS} agents, {AGENTS} servers, {AGENTS} devices, {actions} actions) over {RUNS} runs: min {:.2?}, median {:.2?}, max {:.2?}",
        times[0],
        times[RUNS / 2],
        times[RUNS - 1]
    );
    if let (Some(read), Some(load), Some(plan)) = (read_cpu, load_cpu, plan_cpu) {
        println!(
            "CPU time per run (this thread, on a shared machine): git read {read:.2?}, load {load:.2?}, plan {plan:.2?}; together {:.2?}",
            read + load + plan
        );
    }
    println!(
        "daemon steady state (cache hit: revision -> tree id -> cached fleet, then plan) over {RUNS} runs: min {:.2?}, median {:.2?}, max {:.2?}",
        steady[0],
        steady[RUNS / 2],
        steady[RUNS - 1]
    );
    if let (Some(cpu), Some(hit)) = (steady_cpu, hit_cpu) {
        println!(
            "CPU time per daemon steady-state pass (this thread): {cpu:.2?}, of which the cache hit (resolve and copy the fleet) {hit:.2?}"
        );
    }
    if let Some(bytes) = fleet_bytes {
        println!(
            "memory of one loaded fleet of {AGENTS} agents (resident set growth): about {:.1} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
}

/// Resident set size of this process in bytes (Linux: `/proc/self/status`).
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Time this thread has spent on a CPU (Linux: `/proc/thread-self/schedstat`), which wall time
/// on a machine shared with other builds is not.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}
