//! `tether run` in real-world time: a pass whose Hetzner actions take longer than a minute (the
//! old per-pass cut) runs to completion, `/readyz` tells the truth throughout, and the next
//! commit is acted on. This test takes about 70 s of real time on purpose: it is the one proof
//! that no internal timeout cuts a long pass. Failures show up in `/readyz` and recover.

use crate::common::{commit_all, example_fleet, status_file, status_log, tether_bin};
use crate::daemon::Daemon;
use std::time::{Duration, Instant};
use tether::sandbox::stack::{Stack, StackOptions};
use tether_emulators::hetzner::Latencies;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_with_actions_longer_than_a_minute_completes_and_the_next_commit_is_acted_on() {
    let create = Duration::from_secs(65);
    let stack = Stack::start(StackOptions {
        latencies: Latencies {
            create,
            ..Latencies::default()
        },
        boot_delay: Duration::from_millis(200),
        ..StackOptions::default()
    })
    .await
    .expect("emulators");
    let fleet = example_fleet();
    crate::common::without_quarantine(fleet.path());
    commit_all(fleet.path(), "main", "seed");
    let started = Instant::now();
    let daemon = Daemon::spawn(
        &stack,
        &format!("  path: {}", fleet.path().display()),
        "concurrency: 8\n",
        &[],
    );

    // While the first pass waits for its creates, the daemon is alive and says why it is not
    // ready yet; past the old 60 s cut it is still working, not wedged.
    let mut checks = 0;
    loop {
        let elapsed = started.elapsed();
        if elapsed > create - Duration::from_secs(2) {
            break;
        }
        if let Some((status, body)) = daemon.readyz().await {
            assert_eq!(
                status, 503,
                "not ready before the first pass finished: {body}"
            );
            assert!(body.contains("waiting for the first reconcile"), "{body}");
            checks += 1;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert!(checks >= 5, "/readyz answered throughout the pass");
    assert_eq!(
        stack.hetzner.servers().len(),
        6,
        "all creates were sent at once"
    );

    let mut ready_after = None;
    for _ in 0..600 {
        if let Some((200, _)) = daemon.readyz().await {
            ready_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_after = ready_after
        .unwrap_or_else(|| panic!("the long pass never completed:\n{}", daemon.log_text()));
    assert!(
        ready_after > Duration::from_secs(60),
        "the pass outlived the old 60 s cut: ready after {ready_after:?}"
    );
    let log = daemon.log_text();
    assert!(
        log.contains("pass finished: 6 planned, 6 done, 0 failed"),
        "one info line says what the pass did:\n{log}"
    );
    assert!(!log.contains("grace period"), "nothing was cut:\n{log}");

    std::fs::remove_file(fleet.path().join("agents/globex/globex-ops.yaml")).expect("edit");
    commit_all(fleet.path(), "main", "cancel globex-ops");
    let edited = Instant::now();
    while stack.hetzner.servers().len() != 5 {
        assert!(
            edited.elapsed() < Duration::from_secs(10),
            "the next commit was not acted on:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = daemon.readyz().await.expect("answers");
    assert_eq!(status, 200);
    daemon.stop().await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_fleet_degrades_readiness_and_a_fix_recovers_it() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    commit_all(fleet.path(), "main", "seed");
    let token = "reconcile-token-for-tests";
    let daemon = Daemon::spawn(
        &stack,
        &format!("  path: {}", fleet.path().display()),
        "degradedAfter: 2\n",
        &[("TETHER_RECONCILE_TOKEN", token)],
    );
    daemon.wait_ready().await;
    let url = daemon.url().await;

    let spec = fleet.path().join("agents/acme/acme-prod.yaml");
    let good = std::fs::read_to_string(&spec).expect("spec");
    std::fs::write(&spec, "apiVersion: tether/v1\nkind: Agent\nmetadata: {name: acme-prod}\nspec: {subscription: [not, a, string]}\n").expect("break");
    let reconcile = || {
        std::process::Command::new(tether_bin())
            .args(["reconcile", "--url", &url])
            .env("TETHER_RECONCILE_TOKEN", token)
            .output()
            .expect("run tether reconcile")
    };
    let degraded = async {
        for _ in 0..100 {
            let asked = reconcile();
            assert!(
                asked.status.success(),
                "{}",
                String::from_utf8_lossy(&asked.stderr)
            );
            if let Some((503, body)) = daemon.readyz().await
                && body.contains("degraded")
            {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("never degraded:\n{}", daemon.log_text());
    }
    .await;
    assert!(degraded.contains("passes in a row failed"), "{degraded}");
    assert!(
        degraded.contains("acme-prod"),
        "the reason names the file: {degraded}"
    );
    assert_eq!(stack.hetzner.servers().len(), 6, "nothing was changed");

    let refused = std::process::Command::new(tether_bin())
        .args(["reconcile", "--url", &url])
        .env("TETHER_RECONCILE_TOKEN", "wrong")
        .output()
        .expect("run tether reconcile");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("refused the token"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let failures: Vec<String> = status_log(fleet.path())
        .into_iter()
        .filter(|m| m.contains("failed, nothing changed"))
        .collect();
    assert_eq!(
        failures.len(),
        1,
        "one status commit for the failure however many passes saw it: {failures:?}"
    );
    assert!(
        failures[0].contains("acme-prod.yaml") && failures[0].contains("spec.subscription"),
        "the commit carries the diagnostics: {}",
        failures[0]
    );
    assert!(status_file(fleet.path(), "fleet.yaml").contains("lastError: "));

    std::fs::write(&spec, good).expect("fix");
    daemon.wait_ready().await;
    for _ in 0..100 {
        if !status_file(fleet.path(), "fleet.yaml").contains("lastError") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !status_file(fleet.path(), "fleet.yaml").contains("lastError"),
        "the recovery is recorded too"
    );
    daemon.stop().await;
    stack.shutdown().await;
}
