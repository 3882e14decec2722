//! The `tether/<fleet>` check never strands a pull request: a refused comment or an unreadable
//! cloud still ends the status, as `error` with the reason; a tree that is not the pull
//! request's head is refused and gets no status at all.

use super::{Bed, PR_BRANCH, REPO, assert_no_secrets, everything_written};
use tether_emulators::emulator::FaultRule;

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_comment_github_refuses_still_ends_the_status_as_an_error_with_the_reason() {
    let bed = Bed::new().await;
    let (code, out) = bed.open_pr(&["--idempotency-key", "evt_1"]).await;
    assert_eq!(code, 0, "{out}");
    bed.github.faults().set(vec![FaultRule {
        method: Some("POST".to_owned()),
        path_prefix: format!("/repos/{REPO}/issues/1/comments"),
        error_rate: 1.0,
        error_statuses: vec![403],
        ..FaultRule::everywhere()
    }]);
    let (code, out) = bed.plan_pr().await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("pull-requests: write"), "{out}");
    assert!(bed.github.comments().is_empty());
    let statuses = bed.statuses(&bed.head(PR_BRANCH));
    let states: Vec<&str> = statuses.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(states, ["pending", "error"], "{statuses:?}");
    let description = &statuses[1].1;
    assert!(
        description.starts_with("the plan comment could not be posted:")
            && description.contains("403"),
        "{description}"
    );
    assert!(description.chars().count() <= 140, "{description}");
    assert_no_secrets(&bed, &everything_written(&bed));
    bed.github.shutdown().await;
    bed.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_that_cannot_read_the_cloud_ends_its_status_as_an_error_with_the_reason() {
    let bed = Bed::new().await;
    bed.stack.hetzner.faults().set(vec![FaultRule {
        path_prefix: "/v1/servers".to_owned(),
        error_rate: 1.0,
        error_statuses: vec![403],
        ..FaultRule::everywhere()
    }]);
    let (code, out) = bed.apply_main().await;
    assert_ne!(code, 0, "{out}");
    let statuses = bed.statuses(&bed.head("main"));
    let states: Vec<&str> = statuses.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(states, ["pending", "error"], "{statuses:?}");
    let description = &statuses[1].1;
    assert!(
        description.starts_with("tether could not apply: reading the Hetzner inventory failed"),
        "{description}"
    );
    assert!(description.chars().count() <= 140, "{description}");
    assert!(bed.stack.hetzner.servers().is_empty());
    assert_no_secrets(&bed, &everything_written(&bed));
    bed.github.shutdown().await;
    bed.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tree_that_is_not_the_pull_requests_head_is_refused_and_gets_no_status() {
    let bed = Bed::new().await;
    let (code, out) = bed.open_pr(&["--idempotency-key", "evt_1"]).await;
    assert_eq!(code, 0, "{out}");
    let bare = bed.bare.display().to_string();
    let (code, out) = bed
        .tether(&["plan", "--git", &bare, "--rev", "main", "--github-pr", "1"])
        .await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("is not pull request #1's head")
            && out.contains("agents/cus-e2e/sub-e2e1.yaml"),
        "{out}"
    );
    let unrelated = crate::common::example_fleet();
    let dir = unrelated.path().display().to_string();
    let (code, out) = bed
        .tether(&["plan", "--fleet", &dir, "--github-pr", "1"])
        .await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("is not a git checkout"), "{out}");
    assert!(
        bed.github.statuses().is_empty(),
        "no status on a head it did not plan"
    );
    assert!(bed.github.comments().is_empty());

    let checkout = tempfile::tempdir().expect("temp dir");
    let repo = git2::Repository::clone(&bed.url(), checkout.path()).expect("clone");
    let head = repo
        .revparse_single(&format!("origin/{PR_BRANCH}"))
        .expect("pr branch");
    repo.checkout_tree(&head, None).expect("checkout");
    repo.set_head_detached(head.id()).expect("detach");
    let dir = checkout.path().display().to_string();
    let (code, out) = bed
        .tether(&["plan", "--fleet", &dir, "--github-pr", "1"])
        .await;
    assert_eq!(code, 0, "a checkout of the head is planned: {out}");
    let states: Vec<String> = bed
        .statuses(&bed.head(PR_BRANCH))
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(states, ["pending", "success"]);

    std::fs::write(checkout.path().join("agents/extra.yaml"), "not committed").expect("edit");
    let (code, out) = bed
        .tether(&["plan", "--fleet", &dir, "--github-pr", "1"])
        .await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("agents/extra.yaml"),
        "uncommitted edits are not the head: {out}"
    );
    bed.github.shutdown().await;
    bed.stack.shutdown().await;
}
