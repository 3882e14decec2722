//! The single-writer lease across processes: two `tether run` daemons and two `tether apply`
//! runs against one fleet at once, with passes longer than the lease's TTL. From every
//! process's per-mutation record (`tether::fence`) no two holders ever mutate at the same
//! time, no server is duplicated, the losers name the holder, and when the holding daemon is
//! killed the other takes over within the TTL.

use crate::common::{commit_all, example_fleet, tether_bin};
use crate::daemon::Daemon;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tether::sandbox::stack::{Stack, StackOptions};
use tether_emulators::emulator::FaultRule;
use tether_emulators::hetzner::Latencies;

const TTL: Duration = Duration::from_secs(2);
const RECORD_LOG: &str = "info,tether::fence=debug";

/// One mutating call, as its process recorded it.
#[derive(Debug)]
struct Mutation {
    holder: String,
    call: String,
    started_ms: u64,
    finished_ms: u64,
}

fn mutations(log: &str) -> Vec<Mutation> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["target"] == "tether::fence")
        .map(|v| {
            let f = &v["fields"];
            Mutation {
                holder: f["holder"].as_str().expect("holder").to_owned(),
                call: f["call"].as_str().expect("call").to_owned(),
                started_ms: f["started_ms"].as_u64().expect("started"),
                finished_ms: f["finished_ms"].as_u64().expect("finished"),
            }
        })
        .collect()
}

fn apply(fleet: &Path, stack: &Stack) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(tether_bin());
    cmd.args([
        "apply",
        "--auto-approve",
        "--git",
        fleet.to_str().expect("utf-8"),
        "--rev",
        "main",
        "--concurrency",
        "2",
        "--device-poll-ms",
        "50",
        "--log-format",
        "json",
    ])
    .env("TETHER_LOCK_TTL", "2s")
    .env("RUST_LOG", RECORD_LOG)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    for (k, v) in stack.env() {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start tether apply")
}

fn holder_of(fleet: &Path) -> Option<String> {
    let repo = git2::Repository::open(fleet).ok()?;
    let reference = repo.find_reference("refs/tether/locks/aura-prod").ok()?;
    let commit = reference.peel_to_commit().ok()?;
    let message = commit.message()?.to_owned();
    let holder = message
        .lines()
        .find_map(|l| l.strip_prefix("Tether-Lease-Holder: "))?
        .to_owned();
    (!message.contains("Tether-Lease-Released: true")).then_some(holder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_and_two_applies_never_mutate_at_once_and_a_killed_holder_is_replaced() {
    let stack = Stack::start(StackOptions {
        latencies: Latencies {
            create: Duration::from_millis(1500),
            ..Latencies::default()
        },
        boot_delay: Duration::from_millis(300),
        ..StackOptions::default()
    })
    .await
    .expect("emulators");
    let fleet = example_fleet();
    crate::common::without_quarantine(fleet.path());
    commit_all(fleet.path(), "main", "seed");
    let source = format!("  path: {}", fleet.path().display());
    let daemon_yaml = |name: &str| {
        format!("concurrency: 2\nlogFormat: json\nlock:\n  ttl: 2s\n  holder: {name}\n")
    };
    let env = [("RUST_LOG", RECORD_LOG)];

    let applies = [apply(fleet.path(), &stack), apply(fleet.path(), &stack)];
    let a = Daemon::spawn(&stack, &source, &daemon_yaml("daemon-a"), &env);
    let b = Daemon::spawn(&stack, &source, &daemon_yaml("daemon-b"), &env);
    let t0 = Instant::now();
    let mut apply_logs = Vec::new();
    let mut apply_codes = Vec::new();
    for child in applies {
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("apply finishes")
            .expect("apply output");
        eprintln!(
            "apply exited {:?} after {:?}",
            out.status.code(),
            t0.elapsed()
        );
        apply_codes.push(out.status.code());
        apply_logs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    for (code, log) in apply_codes.iter().zip(&apply_logs) {
        match code {
            Some(0) => {}
            Some(4) => assert!(
                log.contains("is being changed by `") && log.contains("nothing was changed"),
                "a refused apply names the holder:\n{log}"
            ),
            other => panic!("apply exited {other:?}:\n{log}"),
        }
    }

    // One daemon converges the fleet (if an apply did not already); the other stands by and
    // says who holds the lease.
    let converged = Instant::now();
    let (holder, standby) = loop {
        assert!(
            converged.elapsed() < Duration::from_secs(60),
            "no daemon converged:\n{}\n{}",
            a.log_text(),
            b.log_text()
        );
        match (a.readyz().await, b.readyz().await) {
            (Some((200, _)), Some((503, body))) => break (a, (b, body)),
            (Some((503, body)), Some((200, _))) => break (b, (a, body)),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let (standby, mut reason) = standby;
    eprintln!("converged after {:?}", t0.elapsed());
    let holder_id = holder_of(fleet.path()).expect("the lease is held");
    // The standby tries again at least every quarter TTL, so it may still name the previous
    // holder (an apply) for a moment.
    let named = format!("standing by: `{holder_id}` holds the fleet's lease");
    for _ in 0..40 {
        if reason.contains(&named) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        reason = standby.readyz().await.map(|(_, b)| b).unwrap_or_default();
    }
    assert!(
        reason.contains(&named),
        "the standby names the holder: {reason}"
    );
    let servers = stack.hetzner.servers();
    let names: BTreeSet<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!((servers.len(), names.len()), (6, 6), "no duplicates");

    // Kill the holder without a chance to release; the standby takes over once the lease
    // expires, and acts on the next change.
    let mut holder = holder;
    holder.child.start_kill().expect("kill the holder");
    let _ = holder.child.wait().await;
    let killed = Instant::now();
    std::fs::remove_file(fleet.path().join("agents/globex/globex-ops.yaml")).expect("edit");
    commit_all(fleet.path(), "main", "cancel globex-ops");
    let mut took_over = None;
    while stack.hetzner.servers().len() != 5 {
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "the standby never took over:\n{}",
            standby.log_text()
        );
        if took_over.is_none() && holder_of(fleet.path()).is_some_and(|h| h != holder_id) {
            took_over = Some(killed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took_over = took_over.unwrap_or_else(|| killed.elapsed());
    let new_holder = holder_of(fleet.path()).expect("held again");
    assert_ne!(new_holder, holder_id);
    // The dead holder's lease lapses at most a TTL after its last renewal; the standby tries
    // again the moment it lapses (plus a jitter of at most TTL / 20), so it takes over within
    // the TTL, give or take the time to start a pass on this shared machine.
    assert!(
        took_over <= TTL + TTL / 20 + Duration::from_millis(300),
        "took over {took_over:?} after the kill, TTL {TTL:?}"
    );
    eprintln!("takeover {took_over:?} after the kill (TTL {TTL:?})");
    let standby_log = standby.log_text();

    // Every process's record of its mutations: intervals of different holders never overlap,
    // and the lease passed from holder to holder without coming back.
    let mut all: Vec<Mutation> = apply_logs.iter().flat_map(|l| mutations(l)).collect();
    all.extend(mutations(&holder.log_text()));
    all.extend(mutations(&standby_log));
    all.sort_by_key(|m| m.started_ms);
    for (i, m) in all.iter().enumerate() {
        for other in &all[i + 1..] {
            if other.holder != m.holder {
                assert!(
                    other.started_ms >= m.finished_ms,
                    "{} ({}) and {} ({}) mutated at once",
                    m.holder,
                    m.call,
                    other.holder,
                    other.call
                );
            }
        }
    }
    let mut turns: Vec<&str> = all.iter().map(|m| m.holder.as_str()).collect();
    turns.dedup();
    let distinct: BTreeSet<&str> = turns.iter().copied().collect();
    assert_eq!(
        turns.len(),
        distinct.len(),
        "holders took turns once: {turns:?}"
    );
    let creates = all.iter().filter(|m| m.call == "create_server").count() as u64;
    let sent: u64 = stack
        .hetzner
        .requests()
        .snapshot()
        .iter()
        .filter(|(k, _)| k.method == "POST" && k.route == "/v1/servers")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(creates, sent, "every create is in the record");
    assert_eq!(creates, 6, "each agent was created once");

    standby.stop().await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_lost_mid_pass_stops_the_daemon_acting_until_it_holds_the_lease_again() {
    use tether::cloud::retry::ManualClock;
    use tether::daemon::lock::{Lease, LockStore};
    let stack = Stack::start(StackOptions {
        latencies: Latencies {
            create: Duration::from_millis(1500),
            ..Latencies::default()
        },
        boot_delay: Duration::from_millis(100),
        ..StackOptions::default()
    })
    .await
    .expect("emulators");
    // Minting a key takes 1.5 s: with `concurrency: 1` the creates start one after another
    // (a create waiting for its server holds no slot), so the pass is still starting creates
    // when the lease is lost.
    stack.tailscale.faults().set(vec![FaultRule {
        method: Some("POST".into()),
        path_prefix: "/api/v2/tailnet/-/keys".into(),
        latency_ms: 1500,
        ..FaultRule::everywhere()
    }]);
    let fleet = example_fleet();
    commit_all(fleet.path(), "main", "seed");
    let daemon = Daemon::spawn(
        &stack,
        &format!("  path: {}", fleet.path().display()),
        "concurrency: 1\nlock:\n  ttl: 2s\n  holder: daemon-a\n",
        &[],
    );
    let started = Instant::now();
    while stack.hetzner.servers().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no create started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // An intruder whose clock runs far ahead overwrites the lease mid-pass.
    let store = LockStore::Local(fleet.path().to_owned());
    let ahead = ManualClock::new(std::time::SystemTime::now() + Duration::from_secs(3600));
    let intruder = loop {
        match Lease::acquire(&store, "aura-prod", "intruder", TTL, ahead.clone()) {
            Ok(lease) => break lease,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let taken = Instant::now();
    let mut reason = String::new();
    while !reason.contains("standing by: `intruder` holds the fleet's lease") {
        assert!(
            taken.elapsed() < Duration::from_secs(10),
            "the loss was not noticed:\n{}",
            daemon.log_text()
        );
        if let Some((503, body)) = daemon.readyz().await {
            reason = body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created = stack.hetzner.servers().len();
    assert!(created < 6, "the pass was stopped before converging");
    tokio::time::sleep(TTL * 2).await;
    assert_eq!(
        stack.hetzner.servers().len(),
        created,
        "nothing is created while another process holds the lease"
    );

    intruder.release().expect("release");
    daemon.wait_ready().await;
    assert_eq!(
        stack.hetzner.servers().len(),
        6,
        "converged once it held the lease again"
    );
    let log = daemon.log_text();
    assert!(
        log.contains("the lease was lost during the pass; actions not started were skipped"),
        "{log}"
    );
    daemon.stop().await;
    stack.shutdown().await;
}
