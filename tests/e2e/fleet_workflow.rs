//! The shipped fleet workflow after a runtime bump: its apply step, run as the workflow runs it
//! (the `run:` line of `fleet/.github/workflows/tether-apply.yml` through bash, in a clone of the
//! fleet, with the step's variables), keeps passing; and a daemon without an agent API, as the
//! sample configuration in docs/operations.md has it, becomes ready. Neither can deliver a
//! runtime update in place: they defer it (decision 049).

use crate::common::{commit_all, example_fleet, status_log, tether_bin, workspace};
use crate::daemon::Daemon;
use std::collections::BTreeMap;
use std::path::Path;
use tether::sandbox::stack::{Stack, StackOptions};
use tether_emulators::github::{self, GitHubEmulator};

const GITHUB_TOKEN: &str = "ghp_workflowTokenNeverToBeSeen0123456789ab";
const REPO: &str = "acme/fleet";

/// The `run:` line of the step called `name` in the shipped apply workflow.
fn workflow_step(name: &str) -> String {
    let path = workspace().join("fleet/.github/workflows/tether-apply.yml");
    let text = std::fs::read_to_string(&path).expect("the shipped apply workflow");
    let step = text
        .split("\n      - ")
        .find(|s| s.starts_with(&format!("name: {name}\n")))
        .unwrap_or_else(|| panic!("no step `{name}` in {}", path.display()));
    let run = step
        .lines()
        .find_map(|l| l.trim().strip_prefix("run: "))
        .unwrap_or_else(|| panic!("step `{name}` has no one-line `run:`"));
    run.to_owned()
}

/// Runs the workflow's Apply step in `fleet` as GitHub Actions would: bash, the fleet clone as
/// the working directory, `tether` on the PATH, the step's secrets and the runner's variables.
async fn apply_step(stack: &Stack, github: &GitHubEmulator, fleet: &Path) -> (i32, String) {
    let bin_dir = tether_bin().parent().expect("the binary's folder");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let head = git2::Repository::open(fleet)
        .and_then(|r| r.refname_to_id("HEAD"))
        .expect("HEAD")
        .to_string();
    let mut cmd = tokio::process::Command::new("bash");
    cmd.args(["-eo", "pipefail", "-c", &workflow_step("Apply")])
        .current_dir(fleet)
        .env("PATH", path)
        .env("HCLOUD_POLL_INTERVAL_MS", "25")
        .env("GITHUB_API_URL", github.url())
        .env("GITHUB_TOKEN", GITHUB_TOKEN)
        .env("GITHUB_REPOSITORY", REPO)
        .env("GITHUB_SHA", head)
        .env_remove("RUST_LOG");
    for (k, v) in stack.env() {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("bash runs the step");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Every agent spec of the example fleet moved to runtime `version`, committed on `main`.
fn bump_runtime(fleet: &Path, version: &str) {
    for owner in ["acme", "globex"] {
        for entry in std::fs::read_dir(fleet.join("agents").join(owner)).expect("agents/") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("spec");
            let bumped = text.replace("version: \"1.4.2\"", &format!("version: \"{version}\""));
            std::fs::write(&path, bumped).expect("write spec");
        }
    }
    commit_all(fleet, "main", &format!("runtime {version}"));
}

/// Server id by name, of every server in the Hetzner emulator.
fn servers(stack: &Stack) -> BTreeMap<String, u64> {
    stack
        .hetzner
        .servers()
        .into_iter()
        .map(|s| (s.name, s.id))
        .collect()
}

/// The `tether/aura-prod` states GitHub holds, oldest first.
fn states(github: &GitHubEmulator) -> Vec<String> {
    github
        .statuses()
        .into_iter()
        .filter(|s| s.context == "tether/aura-prod")
        .map(|s| s.state)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_apply_workflow_passes_after_a_runtime_bump_and_replaces_no_server() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let github = GitHubEmulator::start(github::Config::default().user(GITHUB_TOKEN, "tether-bot"))
        .await
        .expect("github emulator");
    github.create_repo(REPO).expect("repo");
    let fleet = example_fleet();
    commit_all(fleet.path(), "main", "seed the example fleet");
    git2::Repository::open(fleet.path())
        .and_then(|r| r.set_head("refs/heads/main"))
        .expect("check out main, as actions/checkout does with `ref: main`");
    github
        .link_git(REPO, &fleet.path().join(".git"))
        .expect("link");

    let (code, out) = apply_step(&stack, &github, fleet.path()).await;
    assert_eq!(code, 0, "the first apply:\n{out}");
    let before = servers(&stack);
    assert!(!before.is_empty(), "{out}");

    bump_runtime(fleet.path(), "1.5.0");
    let (code, out) = apply_step(&stack, &github, fleet.path()).await;
    assert_eq!(code, 0, "the apply after the runtime bump:\n{out}");
    assert!(
        out.contains("deferred: runtime updates are delivered by the daemon's agent API"),
        "{out}"
    );
    assert!(out.contains("0 failed, 0 skipped"), "{out}");
    assert_eq!(
        servers(&stack),
        before,
        "no server was created, replaced or deleted"
    );
    assert_eq!(
        states(&github).last().map(String::as_str),
        Some("success"),
        "{:?}",
        states(&github)
    );
    // The next run's baseline is the bumped spec, so its plan (and hash) names no `from`
    // version once; from then on a scheduled run finds nothing new to record.
    let (code, out) = apply_step(&stack, &github, fleet.path()).await;
    assert_eq!(code, 0, "the scheduled apply 15 minutes later:\n{out}");
    let commits = status_log(fleet.path()).len();
    let (code, out) = apply_step(&stack, &github, fleet.path()).await;
    assert_eq!(code, 0, "the scheduled apply 30 minutes later:\n{out}");
    let diff = std::process::Command::new("git")
        .args(["diff", "tether/status~1", "tether/status"])
        .current_dir(fleet.path())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert_eq!(
        status_log(fleet.path()).len(),
        commits,
        "a run that changed nothing writes no status commit; it changed:\n{diff}"
    );
    assert!(!out.contains(GITHUB_TOKEN), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_without_an_agent_api_becomes_ready_after_a_runtime_bump() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    commit_all(fleet.path(), "main", "seed the example fleet");
    let apply = tokio::process::Command::new(tether_bin())
        .args(["apply", "--auto-approve", "--git"])
        .arg(fleet.path())
        .args(["--rev", "main", "--status-branch", "tether/status"])
        .envs(stack.env())
        .env("HCLOUD_POLL_INTERVAL_MS", "25")
        .output()
        .await
        .expect("tether apply");
    assert!(apply.status.success(), "{apply:?}");
    let before = servers(&stack);
    bump_runtime(fleet.path(), "1.5.0");

    let daemon = Daemon::spawn(
        &stack,
        &format!("  path: {}", fleet.path().display()),
        "degradedAfter: 1\n",
        &[],
    );
    daemon.wait_ready().await;
    let log = daemon.log_text();
    assert!(log.contains("deferred"), "{log}");
    assert_eq!(
        servers(&stack),
        before,
        "no server was created, replaced or deleted"
    );
    daemon.stop().await;
}
