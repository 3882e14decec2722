//! Ctrl-C during `tether apply`: actions in flight finish, no new one starts, the partial
//! account is printed, status is recorded and the exit status is 130.

use crate::common::{commit_all, example_fleet, tether_bin};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tether::sandbox::stack::{Stack, StackOptions};
use tether_emulators::emulator::FaultRule;
use tether_emulators::hetzner::Latencies;
use tether_emulators::hetzner::ServerStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_lets_in_flight_creates_finish_skips_the_rest_and_exits_130() {
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
    // Minting a key takes a second: with `--concurrency 2` two creates make requests at once;
    // a create waiting for its server holds no slot, so when the first two wait the next two
    // start minting, and the last two get no slot before Ctrl-C.
    stack.tailscale.faults().set(vec![FaultRule {
        method: Some("POST".into()),
        path_prefix: "/api/v2/tailnet/-/keys".into(),
        latency_ms: 1000,
        ..FaultRule::everywhere()
    }]);
    let repo = example_fleet();
    commit_all(repo.path(), "main", "seed");
    let mut cmd = tokio::process::Command::new(tether_bin());
    cmd.args([
        "apply",
        "--auto-approve",
        "--git",
        repo.path().to_str().expect("utf-8"),
        "--rev",
        "main",
        "--concurrency",
        "2",
        "--device-poll-ms",
        "50",
    ])
    .env("HCLOUD_POLL_INTERVAL_MS", "25")
    .env("RUST_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    for (k, v) in stack.env() {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start tether apply");
    let started = Instant::now();
    while stack.hetzner.servers().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no create started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("apply winds down")
        .expect("output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");

    let servers = stack.hetzner.servers();
    assert_eq!(servers.len(), 4, "only the creates in flight happened");
    assert!(
        servers
            .iter()
            .all(|s| matches!(s.status, ServerStatus::Running | ServerStatus::Off)),
        "in-flight creates were finished, not left initializing: {servers:?}"
    );
    assert!(
        stdout.contains("Apply: 4 done, 0 failed, 2 skipped."),
        "the partial account:\n{stdout}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    let git = git2::Repository::open(repo.path()).expect("repo");
    let status = git
        .revparse_single("tether/status")
        .expect("status recorded");
    let message = status
        .peel_to_commit()
        .expect("commit")
        .message()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("+4 created"), "{message}");
    stack.shutdown().await;
}
