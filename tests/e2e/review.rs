//! Approvals that hold: a plan approved on a pull request applies after the PR is merged with
//! a merge commit (`--plan-hash`), a plan saved with `plan --out` applies with `apply FILE`,
//! and either refuses, creating nothing, once the fleet or the inventory is not what was
//! approved. On a terminal `apply` shows the plan and acts only on `yes`; with no approval and
//! no terminal it refuses with a usage error.

use crate::common::{commit_all, example_fleet, tether_bin};
use std::path::Path;
use tether::sandbox::stack::{Stack, StackOptions};

/// Runs `tether ARGS` against the emulators of `stack`, stdin not a terminal: (code, stdout,
/// stderr).
async fn tether(stack: &Stack, args: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(tether_bin());
    cmd.args(args);
    if args.first() == Some(&"apply") {
        cmd.args(["--device-poll-ms", "50", "--device-timeout", "20"]);
    }
    cmd.env("HCLOUD_POLL_INTERVAL_MS", "25")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in stack.env() {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("run tether");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `tether ARGS` on a pseudo-terminal (util-linux `script`), typing `answer`: (code,
/// everything the terminal showed).
async fn on_a_terminal(stack: &Stack, args: &[&str], answer: &str) -> (i32, String) {
    use tokio::io::AsyncWriteExt as _;
    let line = std::iter::once(tether_bin().display().to_string())
        .chain(args.iter().map(|a| (*a).to_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = tokio::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .env("HCLOUD_POLL_INTERVAL_MS", "25")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in stack.env() {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .expect("util-linux `script` runs tether on a pseudo-terminal");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(answer.as_bytes()).await.expect("type");
    drop(stdin);
    let out = child.wait_with_output().await.expect("run script");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn agent_spec(name: &str) -> String {
    format!(
        "apiVersion: tether/v1\nkind: Agent\nmetadata:\n  name: {name}\n  labels: {{customer: cus_review}}\nspec:\n  subscription: sub_{name}\n  server: {{type: cpx11, location: fsn1}}\n  runtime: {{version: \"1.4.2\"}}\n"
    )
}

/// Starts `branch` at the tip of main.
fn branch_from_main(repo: &Path, branch: &str) {
    let r = git2::Repository::open(repo).expect("repo");
    let main = r
        .find_reference("refs/heads/main")
        .and_then(|m| m.peel_to_commit())
        .expect("main");
    r.branch(branch, &main, true).expect("branch");
}

/// Writes `files` into the work tree and commits the whole tree on `branch`.
fn commit_files(repo: &Path, branch: &str, files: &[(&str, String)]) -> String {
    for (path, text) in files {
        std::fs::write(repo.join(path), text).expect("write file");
    }
    commit_all(repo, branch, "change")
}

/// Merges `branch` into main with a merge commit (never a fast-forward), as GitHub's merge
/// button does, and checks the work tree out at the result.
fn merge_into_main(repo: &Path, branch: &str) -> String {
    let r = git2::Repository::open(repo).expect("repo");
    let ours = r
        .find_reference("refs/heads/main")
        .and_then(|m| m.peel_to_commit())
        .expect("main");
    let theirs = r
        .find_reference(&format!("refs/heads/{branch}"))
        .and_then(|b| b.peel_to_commit())
        .expect("branch");
    let mut index = r
        .merge_commits(&ours, &theirs, None)
        .expect("merge without conflicts");
    let tree = r
        .find_tree(index.write_tree_to(&r).expect("merged tree"))
        .expect("tree");
    let sig = git2::Signature::now("Reviewer", "reviewer@example.com").expect("signature");
    let merge = r
        .commit(
            Some("refs/heads/main"),
            &sig,
            &sig,
            &format!("Merge branch '{branch}'"),
            &tree,
            &[&ours, &theirs],
        )
        .expect("merge commit");
    r.set_head("refs/heads/main").expect("head");
    r.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .expect("checkout");
    merge.to_string()
}

fn plan_hash(stack_out: &(i32, String, String)) -> String {
    let (code, out, err) = stack_out;
    assert_eq!(*code, 0, "plan failed: {err}");
    let plan: serde_json::Value = serde_json::from_str(out).expect("plan JSON");
    plan["planHash"].as_str().expect("planHash").to_owned()
}

fn servers(stack: &Stack) -> Vec<String> {
    let mut names: Vec<String> = stack
        .hetzner
        .servers()
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_approved_on_a_pr_applies_after_a_merge_commit_and_a_different_tree_is_refused() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    let repo = fleet.path();
    let git = repo.to_str().expect("utf-8");
    commit_all(repo, "main", "seed the example fleet");

    branch_from_main(repo, "pr-review-a");
    commit_files(
        repo,
        "pr-review-a",
        &[("agents/review-a.yaml", agent_spec("review-a"))],
    );
    let approved = plan_hash(
        &tether(
            &stack,
            &[
                "plan",
                "--git",
                git,
                "--rev",
                "pr-review-a",
                "--format",
                "json",
            ],
        )
        .await,
    );
    // Main moves on meanwhile (a README change), so the merge commit's tree is neither side's.
    let git2_repo = git2::Repository::open(repo).expect("repo");
    git2_repo.set_head("refs/heads/main").expect("head");
    git2_repo
        .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .expect("checkout main");
    commit_files(repo, "main", &[("README.md", "the fleet\n".to_owned())]);
    let merge = merge_into_main(repo, "pr-review-a");

    let (code, out, err) = tether(
        &stack,
        &[
            "apply",
            "--git",
            git,
            "--rev",
            "main",
            "--plan-hash",
            &approved,
        ],
    )
    .await;
    assert_eq!(
        code, 0,
        "the approved plan applies after the merge:\n{out}\n{err}"
    );
    assert!(out.contains(&format!("plan hash: {approved}")), "{out}");
    assert!(
        out.contains(&merge[..12]),
        "the plan names the merge commit: {out}"
    );
    assert!(servers(&stack).contains(&"review-a".to_owned()));

    // A second PR is approved, but main gets another agent before the merge.
    branch_from_main(repo, "pr-review-b");
    commit_files(
        repo,
        "pr-review-b",
        &[("agents/review-b.yaml", agent_spec("review-b"))],
    );
    let approved_b = plan_hash(
        &tether(
            &stack,
            &[
                "plan",
                "--git",
                git,
                "--rev",
                "pr-review-b",
                "--format",
                "json",
            ],
        )
        .await,
    );
    git2_repo.set_head("refs/heads/main").expect("head");
    git2_repo
        .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .expect("checkout main");
    commit_files(
        repo,
        "main",
        &[("agents/review-c.yaml", agent_spec("review-c"))],
    );
    merge_into_main(repo, "pr-review-b");
    let before = servers(&stack);
    let (code, out, err) = tether(
        &stack,
        &[
            "apply",
            "--git",
            git,
            "--rev",
            "main",
            "--plan-hash",
            &approved_b,
        ],
    )
    .await;
    assert_eq!(
        code, 3,
        "a different tree must not apply (refused):\n{out}\n{err}"
    );
    assert!(
        err.contains("the plan changed since it was approved") && err.contains(&approved_b),
        "says why and names the approved hash: {err}"
    );
    assert_eq!(servers(&stack), before, "nothing was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_applies_once_and_then_no_longer_matches() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    let repo = fleet.path();
    let git = repo.to_str().expect("utf-8");
    commit_all(repo, "main", "seed the example fleet");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("plan.json");
    let file_arg = file.to_str().expect("utf-8");

    let (code, _, err) = tether(
        &stack,
        &["plan", "--git", git, "--rev", "main", "--out", file_arg],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let saved = std::fs::read_to_string(&file).expect("saved plan");
    let doc: serde_json::Value = serde_json::from_str(&saved).expect("JSON");
    let hash = doc["planHash"].as_str().expect("planHash").to_owned();
    assert!(doc["fleet"].is_string() && doc["revision"].is_string());
    assert!(!doc["actions"].as_array().expect("actions").is_empty());
    for (_, secret) in stack.env() {
        if !secret.starts_with("http") {
            assert!(
                !saved.contains(&secret),
                "the saved plan holds no credential"
            );
        }
    }
    assert!(
        !saved.contains("tskey-"),
        "the saved plan holds no auth key"
    );

    let (code, out, err) =
        tether(&stack, &["apply", "--git", git, "--rev", "main", file_arg]).await;
    assert_eq!(code, 0, "the saved plan applies:\n{out}\n{err}");
    let created = servers(&stack);
    assert!(!created.is_empty());

    let (code, out, err) =
        tether(&stack, &["apply", "--git", git, "--rev", "main", file_arg]).await;
    assert_eq!(
        code, 3,
        "a saved plan that no longer holds must not apply (refused):\n{out}"
    );
    assert!(
        err.contains(&format!("saved plan hash {hash}"))
            && err.contains("fresh plan hash")
            && err.contains("saved only: create"),
        "names both hashes and what differs: {err}"
    );
    assert_eq!(servers(&stack), created, "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_without_approval_or_a_terminal_refuses_and_names_auto_approve() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    let git = fleet.path().to_str().expect("utf-8");
    commit_all(fleet.path(), "main", "seed the example fleet");
    let (code, _, err) = tether(&stack, &["apply", "--git", git, "--rev", "main"]).await;
    assert_eq!(code, 64, "a usage error: {err}");
    assert!(err.contains("--auto-approve"), "{err}");
    assert!(servers(&stack).is_empty(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_apply_shows_the_plan_asks_and_acts_only_on_yes() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    let git = fleet.path().to_str().expect("utf-8");
    commit_all(fleet.path(), "main", "seed the example fleet");
    let args = [
        "apply",
        "--git",
        git,
        "--rev",
        "main",
        "--device-poll-ms",
        "50",
        "--device-timeout",
        "20",
    ];

    let (code, shown) = on_a_terminal(&stack, &args, "no\n").await;
    assert_ne!(code, 0, "{shown}");
    let plan_at = shown.find("create server").expect("the plan is shown");
    let question_at = shown
        .find("actions? Only 'yes' will be accepted")
        .expect("the question is asked");
    assert!(
        plan_at < question_at,
        "the plan comes before the question: {shown}"
    );
    assert!(shown.contains("apply cancelled"), "{shown}");
    assert!(servers(&stack).is_empty(), "nothing was created");

    let (code, shown) = on_a_terminal(&stack, &args, "yes\n").await;
    assert_eq!(code, 0, "{shown}");
    assert!(!servers(&stack).is_empty(), "yes applies the plan: {shown}");

    let (code, shown) = on_a_terminal(&stack, &args, "").await;
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("No changes") && !shown.contains("Only 'yes'"),
        "an empty plan applies without asking: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replacement_shows_the_old_and_new_values_from_the_last_applied_revision() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    let repo = fleet.path();
    let git = repo.to_str().expect("utf-8");
    commit_all(repo, "main", "seed the example fleet");
    let (code, out, err) = tether(
        &stack,
        &["apply", "--auto-approve", "--git", git, "--rev", "main"],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");

    let spec = repo.join("agents/globex/globex-ops.yaml");
    let text = std::fs::read_to_string(&spec).expect("spec");
    std::fs::write(
        &spec,
        text.replace(
            "version: \"1.3.9\"",
            "version: \"1.4.2\"\n    env: {LOG_LEVEL: debug, API_TOKEN: never-shown-0123, DB_PW: never-shown-pw}\n  tailscale: {tags: [\"tag:agent\"]}",
        ),
    )
    .expect("edit spec");
    commit_all(
        repo,
        "main",
        "globex-ops: runtime 1.4.2, debug logs, one tag",
    );
    let (code, out, err) = tether(&stack, &["plan", "--git", git, "--rev", "main"]).await;
    assert_eq!(code, 0, "{err}");
    for line in [
        "REPLACE server globex-ops",
        "~ tags: tag:agent, tag:agent-eu, tag:agent-us → tag:agent   # forces replacement",
        "~ runtime version: 1.3.9 → 1.4.2",
        "+ env.LOG_LEVEL: \"debug\"",
        "+ env.API_TOKEN: (changed #",
        "+ env.DB_PW: (changed #",
        "new public IPv4/IPv6, the disk is not kept",
    ] {
        assert!(out.contains(line), "{line:?} in:\n{out}");
    }
    assert!(
        !out.contains("1.4.2   # forces replacement"),
        "the runtime is not why a server is replaced: {out}"
    );
    assert!(
        !out.contains("never-shown"),
        "a value whose name fleet.yaml does not declare public is never shown"
    );
    assert!(!out.contains("tether/spec"), "no opaque hashes: {out}");
}
