//! Runtime updates in place, end to end: `tether run` with its agent API, the emulators, and
//! the sandbox's tether-agent on every VM. A version bump replaces no server and goes out in
//! waves; a version that fails on the canary halts the rollout, rolls the canary back and says
//! why on the status branch; the agents' credentials appear in no log, status file or commit.

use crate::common::{commit_all, status_file, status_log, tether_bin};
use crate::daemon::{Daemon, free_port};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tether::cloud::Compute;
use tether::sandbox::stack::{Stack, StackOptions};

/// A fleet of `n` agents running `version`, committed on `main`.
pub(crate) fn fleet(dir: &Path, n: usize, version: &str) {
    std::fs::create_dir_all(dir.join("agents")).expect("agents/");
    std::fs::write(
        dir.join("fleet.yaml"),
        "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: aura-prod}\nspec:\n  defaults: {server: {type: cpx11, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  policy: {maxDisruptionsPerRun: 5, maxDisruptionPercent: 10}\n  catalog: {serverTypes: [cpx11], locations: [fsn1], images: [ubuntu-24.04]}\n",
    )
    .expect("fleet.yaml");
    set_version(dir, n, version);
}

pub(crate) fn set_version(dir: &Path, n: usize, version: &str) {
    for i in 0..n {
        std::fs::write(
            dir.join(format!("agents/acme-{i:02}.yaml")),
            format!(
                "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: acme-{i:02}}}\nspec:\n  subscription: sub_{i}\n  runtime: {{version: \"{version}\", env: {{API_TOKEN: tok-{i}-a8F3k2L9q0Z7x1C4}}}}\n"
            ),
        )
        .expect("agent spec");
    }
    commit_all(dir, "main", &format!("runtime {version}"));
}

fn daemon(stack: &Stack, fleet: &Path) -> Daemon {
    let extra = format!(
        "concurrency: 50\nagentApi:\n  listen: 127.0.0.1:{}\n  binaryUrl: http://127.0.0.1:1/tether-agent\n  waveTimeout: 20s\n",
        free_port()
    );
    Daemon::spawn(stack, &format!("  path: {}", fleet.display()), &extra, &[])
}

/// `status/runtime.yaml` once `done` holds for it (within 60 s).
pub(crate) async fn runtime_status(
    repo: &Path,
    done: impl Fn(&str) -> bool,
    daemon: &Daemon,
) -> String {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let text =
            std::panic::catch_unwind(|| status_file(repo, "runtime.yaml")).unwrap_or_default();
        if done(&text) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "status/runtime.yaml did not get there within 60 s:\n{}\n--- log ---\n{}",
        std::panic::catch_unwind(|| status_file(repo, "runtime.yaml")).unwrap_or_default(),
        daemon.log_text()
    );
}

/// Server id → public IPv4, of every server.
async fn servers(stack: &Stack) -> BTreeMap<u64, Option<String>> {
    let client = stack
        .hetzner_client(Duration::from_millis(20))
        .expect("client");
    client
        .list_servers(None)
        .await
        .expect("servers")
        .into_iter()
        .map(|s| (s.id.0, s.ipv4))
        .collect()
}

/// The credentials the emulated VMs were given, from their cloud-init.
fn credentials(stack: &Stack) -> Vec<String> {
    stack
        .hetzner
        .servers()
        .iter()
        .filter_map(|s| {
            let user_data = s.user_data.as_ref()?.expose().to_owned();
            let line = user_data
                .lines()
                .skip_while(|l| !l.contains("/etc/tether/agent-credential"))
                .find(|l| l.trim_start().starts_with("content:"))?;
            let b64 = line.split_once(':')?.1.trim().trim_matches('"');
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            String::from_utf8(bytes).ok()
        })
        .collect()
}

/// Every status file and status commit message, as one text.
fn status_text(repo: &Path) -> String {
    let r = git2::Repository::open(repo).expect("open");
    let tree = r
        .revparse_single("tether/status")
        .expect("status branch")
        .peel_to_tree()
        .expect("tree");
    let mut text = status_log(repo).join("\n");
    tree.walk(git2::TreeWalkMode::PreOrder, |_, entry| {
        if let Ok(blob) = r.find_blob(entry.id()) {
            text.push_str(&String::from_utf8_lossy(blob.content()));
        }
        git2::TreeWalkResult::Ok
    })
    .expect("walk");
    text
}

fn assert_no_credential(stack: &Stack, texts: &[(&str, &str)]) {
    let credentials = credentials(stack);
    assert!(!credentials.is_empty(), "the VMs were given credentials");
    for credential in &credentials {
        assert_eq!(credential.len(), 43);
        for (what, text) in texts {
            assert!(
                !text.contains(credential.as_str()),
                "a credential appears in {what}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_bump_on_50_agents_replaces_no_server_and_goes_out_in_waves() {
    const N: usize = 50;
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("repo");
    fleet(repo.path(), N, "1.4.0");
    let daemon = daemon(&stack, repo.path());
    daemon.wait_ready().await;
    let before = servers(&stack).await;
    assert_eq!(before.len(), N, "{}", daemon.log_text());

    let started = Instant::now();
    set_version(repo.path(), N, "1.5.0");
    let status = runtime_status(
        repo.path(),
        |t| t.contains("target: 1.5.0") && t.contains(&format!("agentsDone: {N}")),
        &daemon,
    )
    .await;
    let took = started.elapsed();

    assert_eq!(servers(&stack).await, before, "same server ids, same IPs");
    assert_eq!(status.matches("running: 1.5.0").count(), N, "{status}");
    assert_eq!(status.matches("heartbeat: healthy").count(), N, "{status}");
    assert!(status.contains("halted: false"), "{status}");
    let waves: Vec<usize> = status
        .split("- agents:")
        .skip(1)
        .map(|w| {
            w.split("outcome:")
                .next()
                .unwrap_or("")
                .matches("acme-")
                .count()
        })
        .collect();
    assert_eq!(waves.iter().sum::<usize>(), N, "{status}");
    assert_eq!(waves[..3], [1, 2, 4], "canary, then doubling: {waves:?}");
    assert!(
        waves.iter().all(|w| *w <= 5),
        "within the disruption budget: {waves:?}"
    );
    eprintln!(
        "rollout of {N} agents in {} waves took {took:?}",
        waves.len()
    );
    let shown = crate::common::tether(
        repo.path(),
        &["status", "--git", ".", "--remote", "", "--format", "json"],
    );
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert_eq!(
        shown
            .stdout
            .matches("\"runtime\": \"1.5.0 healthy\"")
            .count(),
        N,
        "`tether status` shows the version each agent runs: {}",
        shown.stdout
    );

    let log = daemon.log_text();
    daemon.stop().await;
    assert_no_credential(
        &stack,
        &[
            ("the daemon log", &log),
            ("the status branch", &status_text(repo.path())),
        ],
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_failing_on_the_canary_halts_the_rollout_and_rolls_the_canary_back() {
    const N: usize = 6;
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("repo");
    fleet(repo.path(), N, "1.4.0");
    let daemon = daemon(&stack, repo.path());
    daemon.wait_ready().await;
    let before = servers(&stack).await;

    stack.agents.fail_version("2.0.0");
    set_version(repo.path(), N, "2.0.0");
    let status = runtime_status(repo.path(), |t| t.contains("halted: true"), &daemon).await;

    assert!(
        status.contains("rollout halted: 2.0.0 failed on canary acme-00: tether-runtime.service 2.0.0 exited with status 1"),
        "{status}"
    );
    assert_eq!(
        status.matches("- agents:").count(),
        1,
        "only the canary's wave ran: {status}"
    );
    assert_eq!(
        status.matches("running: 1.4.0").count(),
        N,
        "the canary is back, the others untouched: {status}"
    );
    assert!(!status.contains("running: 2.0.0"), "{status}");
    assert_eq!(servers(&stack).await, before, "no server replaced");
    let log = status_log(repo.path()).join("\n");
    assert!(
        log.contains("rollout halted: 2.0.0 failed on canary acme-00"),
        "{log}"
    );

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
        plan_out.contains(
            "runtime 2.0.0 of agent acme-00 is held: rollout halted: 2.0.0 failed on canary acme-00"
        ),
        "{plan_out}\n{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(!plan_out.contains("update runtime"), "{plan_out}");

    let daemon_log = daemon.log_text();
    daemon.stop().await;
    assert_no_credential(
        &stack,
        &[
            ("the daemon log", &daemon_log),
            ("the status branch", &status_text(repo.path())),
            ("the plan", &plan_out),
        ],
    );
    stack.shutdown().await;
}
