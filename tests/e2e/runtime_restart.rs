//! Runtime rollouts across daemon restarts: `tether run` SIGKILLed in the middle of a rollout,
//! or stopped after a halt, and started again on the same agent API address. Whatever the
//! moment, every agent ends on a healthy version: a broken version is rolled back on its
//! canary, a good one goes on from where it was, and the restarted daemon serves each agent
//! what it last ran well (`status/runtime.yaml` shows every agent's version, none `~`).

use crate::common::{status_file, tether_bin};
use crate::daemon::{Daemon, free_port};
use crate::runtime::{fleet, runtime_status, set_version};
use std::path::Path;
use std::time::{Duration, Instant};
use tether::sandbox::stack::{Stack, StackOptions};

const N: usize = 6;

/// `tether run` with its agent API on `port` (the address the VMs were given), a 2 s lease, so
/// a restart after a kill takes over quickly, and a pass every 10 s (the shortest allowed), so the pass after a halted
/// wave comes without a spec change.
fn daemon(stack: &Stack, fleet: &Path, port: u16) -> Daemon {
    let extra = format!(
        "interval: 10s\nconcurrency: 20\nlock:\n  ttl: 2s\nagentApi:\n  listen: 127.0.0.1:{port}\n  binaryUrl: http://127.0.0.1:1/tether-agent\n  waveTimeout: 20s\n"
    );
    Daemon::spawn(stack, &format!("  path: {}", fleet.display()), &extra, &[])
}

/// SIGKILLs `daemon` once its log shows `line` (within 60 s).
async fn kill_once_logged(mut daemon: Daemon, line: &str) -> String {
    let started = Instant::now();
    while !daemon.log_text().contains(line) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no `{line}` within 60 s:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    daemon.child.start_kill().expect("SIGKILL tether run");
    daemon.child.wait().await.expect("reap tether run");
    daemon.log_text()
}

/// Whether `status` shows every agent served and running `version`, healthy.
fn all_on(status: &str, version: &str) -> bool {
    status.matches(&format!("desired: {version}")).count() == N
        && status.matches(&format!("running: {version}")).count() == N
        && status.matches("heartbeat: healthy").count() == N
}

/// The daemon's log lines that warn about refused agent requests.
fn refusal_lines(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("agent API") && l.contains("refused"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_rollout_of_a_broken_version_ends_with_every_agent_on_the_last_good_one()
 {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("repo");
    fleet(repo.path(), N, "1.4.0");
    let port = free_port();
    let first = daemon(&stack, repo.path(), port);
    first.wait_ready().await;

    stack.agents.fail_version("2.0.0");
    set_version(repo.path(), N, "2.0.0");
    let before = kill_once_logged(first, "runtime wave started").await;

    let second = daemon(&stack, repo.path(), port);
    second.wait_ready().await;
    let status = runtime_status(repo.path(), |t| all_on(t, "1.4.0"), &second).await;
    assert!(!status.contains("running: 2.0.0"), "{status}");
    // Halted before the kill (written on the canary's server) or again after the restart
    // (recorded on the status branch): either way the plan holds 2.0.0.
    let plan = std::process::Command::new(tether_bin())
        .args([
            "plan",
            "--git",
            repo.path().to_str().expect("utf-8"),
            "--rev",
            "main",
        ])
        .envs(stack.env())
        .output()
        .expect("tether plan");
    let plan_out = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        plan_out
            .contains("runtime 2.0.0 of agent acme-00 is held: rollout halted: 2.0.0 failed on"),
        "{plan_out}\n{status}\n--- first daemon ---\n{before}"
    );
    assert!(!plan_out.contains("update runtime"), "{plan_out}");
    second.stop().await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_rollout_of_a_good_version_goes_on_and_ends_with_every_agent_on_it() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("repo");
    fleet(repo.path(), N, "1.4.0");
    let port = free_port();
    let first = daemon(&stack, repo.path(), port);
    first.wait_ready().await;

    set_version(repo.path(), N, "1.5.0");
    kill_once_logged(first, "runtime wave started").await;

    let second = daemon(&stack, repo.path(), port);
    second.wait_ready().await;
    let status = runtime_status(
        repo.path(),
        |t| t.contains("halted: false") && all_on(t, "1.5.0"),
        &second,
    )
    .await;
    assert!(status.contains("target: 1.5.0"), "{status}");
    second.stop().await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_restarted_after_a_halt_serves_every_agent_its_last_good_runtime_at_once() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("repo");
    fleet(repo.path(), N, "1.4.0");
    let port = free_port();
    let first = daemon(&stack, repo.path(), port);
    first.wait_ready().await;
    stack.agents.fail_version("2.0.0");
    set_version(repo.path(), N, "2.0.0");
    runtime_status(repo.path(), |t| t.contains("halted: true"), &first).await;
    first.stop().await;

    let second = daemon(&stack, repo.path(), port);
    second.wait_ready().await;
    let status = runtime_status(
        repo.path(),
        |t| t.contains("halted: true") && all_on(t, "1.4.0"),
        &second,
    )
    .await;
    assert!(
        status.contains("rollout halted: 2.0.0 failed on canary acme-00"),
        "the halt is kept: {status}"
    );
    let log = second.log_text();
    assert!(
        log.contains("credentials read from the servers' tether/agent-key labels"),
        "{log}"
    );
    assert!(
        refusal_lines(&log) <= 2,
        "refusals are logged in aggregate:\n{log}"
    );
    assert!(
        status_file(repo.path(), "acme-00.yaml").contains("phase: Ready"),
        "the canary is Ready on its last good runtime"
    );
    second.stop().await;
    stack.shutdown().await;
}
