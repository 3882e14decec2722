//! Daemon-style passes over a git repository with a [`FleetCache`], against the emulators over
//! real HTTP: what is loaded, what is applied, and what the status branch records.

use super::*;
use crate::audit::STATUS_BRANCH;
use crate::audit::commit::Identity;
use crate::cloud::retry::ManualClock;
use crate::sandbox::stack::{Stack, StackOptions};
use crate::source::fleets::tests::{agent, commit};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// One pass as the daemon runs it: the revision `main` through `fleets`, status on the
/// repository's own status branch.
async fn pass(stack: &Stack, repo: &Path, fleets: &FleetCache) -> Result<PassOutcome, PassError> {
    let compute = stack
        .hetzner_client(Duration::from_millis(20))
        .expect("hetzner client");
    let tailnet = stack.tailscale_client().expect("tailscale client");
    let identity = Identity {
        name: "tether".into(),
        email: "tether@cached".into(),
        signer: None,
    };
    let options = PassOptions {
        apply: Options {
            device_poll: Duration::from_millis(20),
            device_timeout: Duration::from_secs(10),
            ..Options::default()
        },
        status: Some(StatusTarget {
            repo,
            remote: None,
            branch: STATUS_BRANCH,
            source_branch: "main",
            identity: &identity,
        }),
        fleets: Some(fleets),
        ..PassOptions::new("cache-test")
    };
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_061_600));
    let loaded = fleets.read(repo, "main").expect("readable revision");
    let (_stop, stop) = watch::channel(false);
    run(loaded, &compute, &tailnet, &clock, &options, stop).await
}

/// `status/fleet.yaml` on the status branch.
fn status_fleet(repo: &Path) -> String {
    let repo = git2::Repository::open(repo).expect("repo");
    let tree = repo
        .revparse_single(&format!("refs/heads/{STATUS_BRANCH}"))
        .and_then(|o| o.peel_to_tree())
        .expect("status branch");
    let entry = tree
        .get_path(Path::new("status/fleet.yaml"))
        .expect("status/fleet.yaml");
    let blob = repo.find_blob(entry.id()).expect("blob");
    String::from_utf8_lossy(blob.content()).into_owned()
}

fn server_names(stack: &Stack) -> Vec<String> {
    let mut names: Vec<String> = stack
        .hetzner
        .servers()
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn passes_reuse_the_loaded_fleet_until_the_tree_changes_and_never_cache_a_broken_one() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    let fleets = FleetCache::new();
    commit(repo, &[("a.yaml", agent("a", "cpx21"))], "one");

    let first = pass(&stack, repo, &fleets).await.expect("first pass");
    assert!(first.report.succeeded(), "{}", first.report);
    assert_eq!(server_names(&stack), ["a"]);
    assert_eq!(fleets.loads(), 1);

    // Same tree: no load for the fleet, nor for the status baseline (the same tree again).
    let second = pass(&stack, repo, &fleets).await.expect("second pass");
    assert!(second.plan.actions.is_empty(), "{:?}", second.plan.actions);
    assert_eq!(fleets.loads(), 1, "an unchanged tree is loaded once");

    // A new agent: loaded fresh, planned and created.
    let agents = [
        ("a.yaml", agent("a", "cpx21")),
        ("b.yaml", agent("b", "cpx21")),
    ];
    commit(repo, &agents, "one");
    let third = pass(&stack, repo, &fleets).await.expect("third pass");
    assert!(third.report.succeeded(), "{}", third.report);
    assert_eq!(fleets.loads(), 2);
    assert_eq!(server_names(&stack), ["a", "b"]);

    // A broken spec fails the pass with its diagnostics, recorded; nothing is deleted.
    let broken = "apiVersion: tether/v1\nkind: Agent\nmetadata: {name: b}\nspec:\n  subscription: sub_b\n  runtime: {version: \"1.4.2\"}\n  sever: {}\n";
    commit(
        repo,
        &[("a.yaml", agent("a", "cpx21")), ("b.yaml", broken.into())],
        "one",
    );
    for _ in 0..2 {
        let error = pass(&stack, repo, &fleets).await.expect_err("broken spec");
        assert!(matches!(error, PassError::Load(_)), "{error}");
        let text = error.to_string();
        assert!(
            text.contains("agents/b.yaml") && text.contains("sever"),
            "{text}"
        );
    }
    assert_eq!(
        fleets.loads(),
        4,
        "a fleet that fails to load is loaded again"
    );
    assert!(
        status_fleet(repo).contains("sever"),
        "{}",
        status_fleet(repo)
    );
    assert_eq!(server_names(&stack), ["a", "b"]);

    // Fixed: the pass works again on the new tree.
    commit(repo, &agents, "two");
    let fixed = pass(&stack, repo, &fleets).await.expect("fixed pass");
    assert!(fixed.report.succeeded(), "{}", fixed.report);
    assert!(fixed.plan.actions.is_empty(), "{:?}", fixed.plan.actions);
    assert_eq!(fixed.fleet.agents.len(), 2);
    stack.shutdown().await;
}
