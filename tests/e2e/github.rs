//! The GitHub review loop end to end: billing opens a pull request, `tether plan --github-pr`
//! keeps one comment and a `tether/<fleet>` status on it, the merge is applied with
//! `tether apply --github-status`, and git alone tells who caused the VM and what happened.
//! Real processes, a real bare repository that the GitHub emulator reads, real HTTP.

use crate::common::{commit_all, example_fleet, tether_bin};
use std::path::{Path, PathBuf};
use tether::sandbox::stack::{Stack, StackOptions};
use tether_emulators::github::{self, GitHubEmulator};

mod checks;

const GITHUB_TOKEN: &str = "ghp_e2eTokenNeverToBeSeenAnywhere0123456789";
const REPO: &str = "acme/fleet";
const SUB: &str = "sub_E2e1";
const AGENT: &str = "sub-e2e1";
const PR_BRANCH: &str = "tether/agent-sub_E2e1";

struct Bed {
    stack: Stack,
    github: GitHubEmulator,
    /// The fleet repository everyone pushes to (the "GitHub" side).
    bare: PathBuf,
    /// Billing's own clone.
    clone: PathBuf,
    _dir: tempfile::TempDir,
}

impl Bed {
    async fn new() -> Bed {
        let stack = Stack::start(StackOptions::default())
            .await
            .expect("emulators");
        let github =
            GitHubEmulator::start(github::Config::default().user(GITHUB_TOKEN, "tether-bot"))
                .await
                .expect("github emulator");
        let dir = tempfile::tempdir().expect("temp dir");
        let work = example_fleet();
        commit_all(work.path(), "main", "seed the example fleet");
        let bare = dir.path().join("fleet.git");
        git2::Repository::init_bare(&bare).expect("fleet remote");
        let seeded = git2::Repository::open(work.path()).expect("work tree");
        seeded
            .remote_anonymous(&format!("file://{}", bare.display()))
            .and_then(|mut remote| remote.push(&["refs/heads/main:refs/heads/main"], None))
            .expect("push the fleet to its remote");
        let clone = dir.path().join("billing.git");
        git2::Repository::init_bare(&clone).expect("billing clone");
        github.create_repo(REPO).expect("repo");
        github.link_git(REPO, &bare).expect("link");
        Bed {
            stack,
            github,
            bare,
            clone,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    async fn tether(&self, args: &[&str]) -> (i32, String) {
        let mut cmd = tokio::process::Command::new(tether_bin());
        cmd.args(args)
            .env("HCLOUD_POLL_INTERVAL_MS", "25")
            .env("RUST_LOG", "warn")
            .env("GITHUB_API_URL", self.github.url())
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .env("GITHUB_REPOSITORY", REPO)
            .env_remove("GITHUB_SHA");
        for (k, v) in self.stack.env() {
            cmd.env(k, v);
        }
        let out = cmd.output().await.expect("run tether");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    async fn open_pr(&self, extra: &[&str]) -> (i32, String) {
        let (clone, url) = (self.clone.display().to_string(), self.url());
        let mut args = vec![
            "agent",
            "add",
            "--runtime-version",
            "1.4.2",
            "--repo",
            &clone,
            "--push",
            &url,
            "--open-pr",
            "--subscription",
            SUB,
            "--customer",
            "cus_e2e",
            "--author-name",
            "Stripe webhook",
        ];
        args.extend_from_slice(extra);
        self.tether(&args).await
    }

    async fn apply_main(&self) -> (i32, String) {
        let bare = self.bare.display().to_string();
        self.tether(&[
            "apply",
            "--auto-approve",
            "--git",
            &bare,
            "--rev",
            "main",
            "--github-status",
            "--device-poll-ms",
            "50",
            "--device-timeout",
            "20",
        ])
        .await
    }

    async fn plan_pr(&self) -> (i32, String) {
        let bare = self.bare.display().to_string();
        self.tether(&[
            "plan",
            "--git",
            &bare,
            "--rev",
            PR_BRANCH,
            "--github-pr",
            "1",
        ])
        .await
    }

    fn head(&self, branch: &str) -> String {
        git2::Repository::open(&self.bare)
            .and_then(|r| r.refname_to_id(&format!("refs/heads/{branch}")))
            .expect("branch")
            .to_string()
    }

    /// `(state, description)` of every `tether/aura-prod` status on `sha`, oldest first.
    fn statuses(&self, sha: &str) -> Vec<(String, String)> {
        self.github
            .statuses()
            .into_iter()
            .filter(|s| s.sha == sha && s.context == "tether/aura-prod")
            .map(|s| (s.state, s.description.unwrap_or_default()))
            .collect()
    }

    /// A reviewer merges the pull request with a merge commit; returns its id.
    fn merge(&self) -> String {
        let repo = git2::Repository::open(&self.bare).expect("bare");
        let main = repo
            .find_reference("refs/heads/main")
            .and_then(|r| r.peel_to_commit());
        let head = repo
            .find_reference(&format!("refs/heads/{PR_BRANCH}"))
            .and_then(|r| r.peel_to_commit());
        let (main, head) = (main.expect("main"), head.expect("pr head"));
        let sig = git2::Signature::now("Alice Reviewer", "alice@example.com").expect("sig");
        repo.commit(
            Some("refs/heads/main"),
            &sig,
            &sig,
            "Merge pull request #1 from acme/tether/agent-sub_E2e1",
            &head.tree().expect("tree"),
            &[&main, &head],
        )
        .expect("merge commit")
        .to_string()
    }
}

/// Everything tether wrote where people read: comments, statuses, pull requests, and every
/// commit message and file on every branch of the fleet repository.
fn everything_written(bed: &Bed) -> String {
    let mut all = String::new();
    for c in bed.github.comments() {
        all.push_str(&c.body);
    }
    for s in bed.github.statuses() {
        all.push_str(&s.description.unwrap_or_default());
    }
    for p in bed.github.pulls() {
        all.push_str(&format!("{} {}", p.title, p.body.unwrap_or_default()));
    }
    let repo = git2::Repository::open(&bed.bare).expect("bare");
    let mut walk = repo.revwalk().expect("walk");
    walk.push_glob("refs/heads/*").expect("branches");
    for oid in walk {
        let commit = repo.find_commit(oid.expect("oid")).expect("commit");
        all.push_str(commit.message().unwrap_or(""));
        commit
            .tree()
            .expect("tree")
            .walk(git2::TreeWalkMode::PreOrder, |_, entry| {
                if let Ok(blob) = repo.find_blob(entry.id()) {
                    all.push_str(&String::from_utf8_lossy(blob.content()));
                }
                git2::TreeWalkResult::Ok
            })
            .expect("walk tree");
    }
    all
}

fn assert_no_secrets(bed: &Bed, written: &str) {
    let mut secrets = vec![GITHUB_TOKEN.to_owned(), "tskey-".to_owned()];
    secrets.extend(
        bed.stack
            .env()
            .into_iter()
            .filter(|(k, _)| k.contains("TOKEN") || k.contains("SECRET"))
            .map(|(_, v)| v),
    );
    for secret in secrets {
        assert!(
            !written.contains(&secret),
            "a secret was written: {}…",
            &secret[..4]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_billing_pull_request_is_planned_on_github_then_applied_and_audited() {
    let bed = Bed::new().await;
    let (code, out) = bed.apply_main().await;
    assert_eq!(
        code, 0,
        "the example fleet runs before the pull request: {out}"
    );

    let (code, out) = bed.open_pr(&["--idempotency-key", "evt_1"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("pull request #1: main <- tether/agent-sub_E2e1"),
        "{out}"
    );
    let (code, again) = bed.open_pr(&["--idempotency-key", "evt_1"]).await;
    assert_eq!(code, 0, "{again}");
    assert!(
        again.contains("unchanged") && again.contains("pull request #1"),
        "{again}"
    );
    assert_eq!(
        bed.github.pulls().len(),
        1,
        "the same request opens one pull request"
    );

    let (code, out) = bed.plan_pr().await;
    assert_eq!(code, 0, "{out}");
    let first_head = bed.head(PR_BRANCH);
    let comments = bed.github.comments();
    assert_eq!(comments.len(), 1);
    let (comment_id, first_body) = (comments[0].id, comments[0].body.clone());
    assert!(
        first_body.starts_with("<!-- tether:plan -->"),
        "{first_body}"
    );
    assert!(
        first_body.contains(AGENT) && first_body.contains("1 to create"),
        "{first_body}"
    );
    assert_eq!(comments[0].author, "tether-bot");
    let states: Vec<String> = bed.statuses(&first_head).into_iter().map(|s| s.0).collect();
    assert_eq!(states, ["pending", "success"]);

    let (code, out) = bed
        .open_pr(&["--idempotency-key", "evt_2", "--type", "cpx31"])
        .await;
    assert_eq!(code, 0, "{out}");
    let second_head = bed.head(PR_BRANCH);
    assert_ne!(
        second_head, first_head,
        "the second request is a new commit on the branch"
    );
    let (code, out) = bed.plan_pr().await;
    assert_eq!(code, 0, "{out}");
    let comments = bed.github.comments();
    assert_eq!(
        comments.len(),
        1,
        "the comment is edited, never added again"
    );
    assert_eq!(comments[0].id, comment_id);
    assert_ne!(comments[0].body, first_body);
    assert!(comments[0].body.contains("cpx31"), "{}", comments[0].body);
    let (state, description) = bed.statuses(&second_head).pop().expect("a status");
    assert_eq!(state, "success");
    assert!(description.contains("1 to create"), "{description}");

    let merge = bed.merge();
    let (code, out) = bed.apply_main().await;
    assert_eq!(code, 0, "{out}");
    let statuses = bed.statuses(&merge);
    assert_eq!(statuses.first().map(|s| s.0.as_str()), Some("pending"));
    let (state, description) = statuses.last().cloned().expect("verdict");
    assert_eq!(state, "success");
    assert!(
        description.starts_with(&format!("apply {}", &merge[..7])),
        "{description}"
    );

    let server = bed
        .stack
        .hetzner
        .servers()
        .into_iter()
        .find(|s| s.name == AGENT)
        .expect("the agent's server exists");
    assert_eq!(server.server_type, "cpx31");
    let repo = git2::Repository::open(&bed.bare).expect("bare");
    let status_commit = repo
        .find_reference("refs/heads/tether/status")
        .and_then(|r| r.peel_to_commit())
        .expect("a status commit");
    let message = status_commit.message().expect("utf-8").to_owned();
    assert!(
        message.contains(&format!("Tether-Source-Commit: {merge}")),
        "{message}"
    );
    assert!(message.contains(&server.id.to_string()), "{message}");

    let bare = bed.bare.display().to_string();
    let (code, log) = bed
        .tether(&[
            "audit", "log", "--repo", &bare, "--agent", AGENT, "--format", "json",
        ])
        .await;
    assert_eq!(code, 0, "{log}");
    let history: serde_json::Value = serde_json::from_str(&log).expect("json");
    let changes = history[0]["changes"].as_array().expect("changes");
    let added = changes
        .iter()
        .find(|c| c["change"] == "added")
        .expect("added");
    assert!(
        added["author"]
            .as_str()
            .is_some_and(|a| a.starts_with("Stripe webhook")),
        "{log}"
    );
    let merged = changes
        .iter()
        .find(|c| c["change"] == "merged")
        .expect("merged");
    assert!(
        merged["author"]
            .as_str()
            .is_some_and(|a| a.starts_with("Alice Reviewer")),
        "{log}"
    );
    assert!(
        merged["actions"].as_array().is_some_and(|a| a
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("create")))),
        "{log}"
    );

    assert_no_secrets(&bed, &everything_written(&bed));
    bed.github.shutdown().await;
    bed.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_that_breaks_the_fleet_gets_every_problem_and_a_failure() {
    let bed = Bed::new().await;
    let (code, out) = bed.open_pr(&["--idempotency-key", "evt_1"]).await;
    assert_eq!(code, 0, "{out}");
    let repo = git2::Repository::open(&bed.bare).expect("bare");
    let head = repo
        .find_reference(&format!("refs/heads/{PR_BRANCH}"))
        .and_then(|r| r.peel_to_commit())
        .expect("head");
    let broken = break_spec(&repo, &head.tree().expect("tree"));
    let sig = git2::Signature::now("Bob", "bob@example.com").expect("sig");
    let sha = repo
        .commit(
            Some(&format!("refs/heads/{PR_BRANCH}")),
            &sig,
            &sig,
            "typo",
            &repo.find_tree(broken).expect("tree"),
            &[&head],
        )
        .expect("commit")
        .to_string();
    let (code, out) = bed.plan_pr().await;
    assert_eq!(code, 1, "{out}");
    let comments = bed.github.comments();
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("the fleet does not load"),
        "{}",
        comments[0].body
    );
    assert!(
        comments[0].body.contains("agents/cus-e2e/sub-e2e1.yaml"),
        "{}",
        comments[0].body
    );
    assert!(comments[0].body.contains("runtme"), "{}", comments[0].body);
    assert_eq!(
        bed.statuses(&sha)
            .into_iter()
            .map(|s| s.0)
            .collect::<Vec<_>>(),
        ["pending", "failure"]
    );
    assert!(
        bed.stack.hetzner.servers().is_empty(),
        "planning changes nothing"
    );
    bed.github.shutdown().await;
    bed.stack.shutdown().await;
}

/// The tree with the e2e agent's `runtime:` key misspelt.
fn break_spec(repo: &git2::Repository, tree: &git2::Tree<'_>) -> git2::Oid {
    let path = Path::new("agents/cus-e2e/sub-e2e1.yaml");
    let entry = tree.get_path(path).expect("the spec");
    let text = String::from_utf8(repo.find_blob(entry.id()).expect("blob").content().to_vec())
        .expect("utf-8");
    assert!(text.contains("runtime:"), "{text}");
    let blob = repo
        .blob(text.replace("runtime:", "runtme:").as_bytes())
        .expect("blob");
    let folder = tree.get_path(Path::new("agents/cus-e2e")).expect("folder");
    let mut sub = repo
        .treebuilder(Some(&repo.find_tree(folder.id()).expect("tree")))
        .expect("builder");
    sub.insert("sub-e2e1.yaml", blob, 0o100_644)
        .expect("insert");
    let sub = sub.write().expect("write");
    let agents = tree.get_path(Path::new("agents")).expect("agents");
    let mut mid = repo
        .treebuilder(Some(&repo.find_tree(agents.id()).expect("tree")))
        .expect("builder");
    mid.insert("cus-e2e", sub, 0o040_000).expect("insert");
    let mid = mid.write().expect("write");
    let mut root = repo.treebuilder(Some(tree)).expect("builder");
    root.insert("agents", mid, 0o040_000).expect("insert");
    root.write().expect("write")
}
