//! Self-healing under SIGKILL: real `tether apply` processes killed at moments inside their
//! remedies (right after the attempt is recorded on the server, right after the rebuild, the
//! reset or the replacement's create), against the emulators with Hetzner's real timings at
//! 1/20 of their length. However often a pass dies, the attempts stay within `maxAttempts`,
//! the servers of the agent within `maxAttempts + 1`, and no auth key stays valid.

use crate::common::{commit_all, status_file, tether_bin};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tether::sandbox::stack::{LatencyProfile, Stack, StackOptions};
use tether_emulators::tailscale::Until;

/// The attempt cap every test here sets.
const MAX_ATTEMPTS: usize = 3;

/// Writes `fleet.yaml` with `heal` as `spec.policy.heal` and the one agent `agent`; commits.
fn write_fleet(dir: &Path, heal: &str, agent: &str) {
    std::fs::write(
        dir.join("fleet.yaml"),
        format!(
            "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: kills}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  policy: {{prune: true, maxDisruptionPercent: 100, heal: {{maxAttempts: {MAX_ATTEMPTS}, observations: 1, backoff: 1s, {heal}}}}}\n  catalog: {{serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}}\n"
        ),
    )
    .expect("write fleet.yaml");
    let folder = dir.join("agents");
    std::fs::create_dir_all(&folder).expect("agents folder");
    std::fs::write(
        folder.join(format!("{agent}.yaml")),
        format!(
            "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {agent}}}\nspec:\n  subscription: sub_{agent}\n  runtime: {{version: \"1.0.0\"}}\n"
        ),
    )
    .expect("write agent");
    commit_all(dir, "main", "fleet");
}

/// `tether apply` with a 2 s device wait and a 2 s lease that the next run waits out after a
/// kill.
fn apply(stack: &Stack, repo: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(tether_bin());
    cmd.args(["apply", "--auto-approve", "--git"])
        .arg(repo)
        .args([
            "--rev",
            "main",
            "--device-poll-ms",
            "50",
            "--device-timeout",
            "2",
            "--lock-ttl",
            "2s",
            "--lock-wait",
            "30s",
        ])
        .env("HCLOUD_POLL_INTERVAL_MS", "25")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    for (k, v) in stack.env() {
        cmd.env(k, v);
    }
    cmd
}

/// One pass to its end: its stdout and stderr.
async fn pass(stack: &Stack, repo: &Path) -> String {
    let out = apply(stack, repo).output().await.expect("run tether apply");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn commands(stack: &Stack, command: &str) -> usize {
    stack
        .hetzner
        .action_commands()
        .iter()
        .filter(|(c, _)| *c == command)
        .count()
}

/// Remedies the provider saw: rebuilds, resets and creates after the agent's first server.
fn remedies(stack: &Stack) -> usize {
    commands(stack, "rebuild_server")
        + commands(stack, "reset_server")
        + commands(stack, "create_server").saturating_sub(1)
}

fn servers_of(stack: &Stack, agent: &str) -> usize {
    stack
        .hetzner
        .servers()
        .iter()
        .filter(|s| s.labels.get("tether/agent").is_some_and(|a| a == agent))
        .count()
}

/// The highest attempt recorded on the agent's servers.
fn journaled(stack: &Stack) -> u32 {
    stack
        .hetzner
        .servers()
        .iter()
        .filter_map(|s| s.labels.get("tether/heal-attempt")?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// A point inside a remedy at which the pass is killed.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// The attempt is recorded on the server; nothing else has changed yet.
    Recorded,
    /// The provider has accepted the remedy's mutation (rebuild, reset or create).
    Acted,
}

/// Starts passes and SIGKILLs each at `moments` in turn, until `kills` landed inside a remedy
/// (or 12 passes ran); the number of kills that landed.
async fn kill_during_remedies(
    stack: &Stack,
    repo: &Path,
    moments: &[Moment],
    kills: usize,
) -> usize {
    let mut landed = 0;
    for round in 0..12 {
        if landed == kills {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let moment = moments[round % moments.len()];
        let (attempt, acted) = (journaled(stack), remedies(stack));
        let mut child = apply(stack, repo)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tether apply");
        let started = Instant::now();
        loop {
            if child.try_wait().expect("poll tether apply").is_some() {
                break;
            }
            let reached = match moment {
                Moment::Recorded => journaled(stack) > attempt,
                Moment::Acted => remedies(stack) > acted,
            };
            if reached {
                child.start_kill().expect("SIGKILL tether apply");
                landed += 1;
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "a pass ran for a minute"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.wait().await.expect("reap tether apply");
    }
    landed
}

/// Passes (a second apart) until the agent's status says self-healing gave up, at most 10.
async fn passes_until_given_up(stack: &Stack, repo: &Path, agent: &str) -> String {
    let mut outputs = Vec::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        outputs.push(pass(stack, repo).await);
        if status_file(repo, &format!("{agent}.yaml")).contains("self-healing gave up") {
            break;
        }
    }
    outputs.join("\n")
}

/// Keys this fleet minted that are still valid.
fn live_keys(stack: &Stack) -> Vec<String> {
    stack
        .tailscale
        .keys()
        .into_iter()
        .filter(|k| k.description.starts_with("tether ") && !k.invalid)
        .map(|k| format!("{} ({})", k.id, k.description))
        .collect()
}

/// The checks every test ends with: the cap, the server bound, no live key, the reason.
fn assert_bounded(stack: &Stack, repo: &Path, agent: &str, log: &str) {
    let done = remedies(stack);
    assert!(
        done <= MAX_ATTEMPTS,
        "{done} remedies against a cap of {MAX_ATTEMPTS}: {:?}\n{log}",
        stack.hetzner.action_commands()
    );
    let servers = servers_of(stack, agent);
    assert!(
        servers <= MAX_ATTEMPTS + 1,
        "{servers} servers for one agent, the bound is {}\n{log}",
        MAX_ATTEMPTS + 1
    );
    assert_eq!(live_keys(stack), Vec::<String>::new(), "{log}");
    let doc = status_file(repo, &format!("{agent}.yaml"));
    assert!(doc.contains("phase: Failed"), "{doc}\n{log}");
    assert!(
        doc.contains(&format!(
            "self-healing gave up after {MAX_ATTEMPTS} attempt(s)"
        )),
        "{doc}\n{log}"
    );
}

fn realistic() -> StackOptions {
    StackOptions::with_latency(LatencyProfile::Realistic, 0.05)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_during_replacements_keep_the_attempt_cap_and_the_server_bound() {
    let stack = Stack::start(realistic()).await.expect("emulators");
    stack.tailscale.fail_cloud_init("doomed", Until::Forever);
    let repo = tempfile::tempdir().expect("temp dir");
    write_fleet(repo.path(), "enrolmentDeadline: 1s, rekeys: 0", "doomed");
    pass(&stack, repo.path()).await;
    assert_eq!(servers_of(&stack, "doomed"), 1);

    let landed = kill_during_remedies(
        &stack,
        repo.path(),
        &[Moment::Recorded, Moment::Acted],
        MAX_ATTEMPTS,
    )
    .await;
    assert_eq!(landed, MAX_ATTEMPTS, "every attempt was killed");
    let log = passes_until_given_up(&stack, repo.path(), "doomed").await;
    assert_bounded(&stack, repo.path(), "doomed", &log);
    assert_eq!(commands(&stack, "rebuild_server"), 0, "replacements only");
    // Once given up, later passes create nothing more.
    let before = commands(&stack, "create_server");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = pass(&stack, repo.path()).await;
    assert!(out.contains("is FAILED"), "{out}");
    assert_eq!(commands(&stack, "create_server"), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_during_rekeys_and_replacements_keep_the_attempt_cap_and_leave_no_live_key() {
    let stack = Stack::start(realistic()).await.expect("emulators");
    stack.tailscale.fail_cloud_init("wiped", Until::Forever);
    let repo = tempfile::tempdir().expect("temp dir");
    write_fleet(repo.path(), "enrolmentDeadline: 1s, rekeys: 2", "wiped");
    pass(&stack, repo.path()).await;

    let landed = kill_during_remedies(
        &stack,
        repo.path(),
        &[Moment::Acted, Moment::Recorded],
        MAX_ATTEMPTS,
    )
    .await;
    assert_eq!(landed, MAX_ATTEMPTS, "every attempt was killed");
    let log = passes_until_given_up(&stack, repo.path(), "wiped").await;
    assert_bounded(&stack, repo.path(), "wiped", &log);
    assert!(
        commands(&stack, "rebuild_server") <= 2,
        "at most `rekeys` disk-wiping rebuilds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_during_power_cycles_keep_the_attempt_cap() {
    let stack = Stack::start(realistic()).await.expect("emulators");
    let repo = tempfile::tempdir().expect("temp dir");
    write_fleet(repo.path(), "offlineThreshold: 1s, powerCycles: 3", "flaky");
    pass(&stack, repo.path()).await;
    let id = stack.hetzner.servers()[0].id;
    assert_eq!(stack.tailscale.hold_offline(id, Until::Forever), 1);

    let landed = kill_during_remedies(
        &stack,
        repo.path(),
        &[Moment::Recorded, Moment::Acted],
        MAX_ATTEMPTS,
    )
    .await;
    assert_eq!(landed, MAX_ATTEMPTS, "every attempt was killed");
    let log = passes_until_given_up(&stack, repo.path(), "flaky").await;
    assert_bounded(&stack, repo.path(), "flaky", &log);
    assert_eq!(servers_of(&stack, "flaky"), 1, "power cycles only");
}
