//! `tether audit log` in a clone whose status branch is only on the remote: the branch is
//! fetched and the actions shown; with no status branch anywhere it says so instead of
//! silently showing none.

use crate::common::{commit_all, example_fleet, tether_bin};
use std::path::Path;
use tether::sandbox::stack::{Stack, StackOptions};

fn audit(repo: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(tether_bin())
        .args(["audit", "log", "--repo"])
        .arg(repo)
        .args(["--format", "json"])
        .args(extra)
        .output()
        .expect("run tether audit log");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn actions(json: &str) -> usize {
    let history: serde_json::Value = serde_json::from_str(json).expect("json");
    history
        .as_array()
        .expect("agents")
        .iter()
        .flat_map(|a| a["changes"].as_array().cloned().unwrap_or_default())
        .map(|c| c["actions"].as_array().map_or(0, Vec::len))
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_log_fetches_the_status_branch_or_warns_that_there_is_none() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    commit_all(fleet.path(), "main", "the example fleet");
    let (code, _, err) = crate::common::apply(&stack, fleet.path(), &[]).await;
    assert_eq!(code, 0, "{err}");
    stack.shutdown().await;

    let dir = tempfile::tempdir().expect("temp dir");
    let bare = dir.path().join("fleet.git");
    let remote = git2::Repository::init_bare(&bare).expect("bare");
    remote.set_head("refs/heads/main").expect("HEAD");
    git2::Repository::open(fleet.path())
        .and_then(|r| {
            r.remote_anonymous(&format!("file://{}", bare.display()))?
                .push(
                    &[
                        "refs/heads/main:refs/heads/main",
                        "refs/heads/tether/status:refs/heads/tether/status",
                    ],
                    None,
                )
        })
        .expect("publish the fleet and its status branch");

    let clone = dir.path().join("clone");
    let repo =
        git2::Repository::clone(&format!("file://{}", bare.display()), &clone).expect("clone");
    assert!(
        repo.find_reference("refs/heads/tether/status").is_err(),
        "the clone has no local status branch"
    );
    let (code, out, err) = audit(&clone, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        actions(&out) > 0,
        "the fetched status branch gives the actions: {out}"
    );

    let lone = dir.path().join("lone");
    let lone_repo = git2::Repository::init(&lone).expect("init");
    lone_repo
        .remote_anonymous(&format!("file://{}", bare.display()))
        .and_then(|mut r| r.fetch(&["+refs/heads/main:refs/heads/main"], None, None))
        .expect("fetch main only");
    let (code, out, err) = audit(&lone, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(actions(&out), 0);
    assert!(
        err.contains("warning: the status branch `tether/status` is not in")
            && err.contains("--remote"),
        "{err}"
    );
    let url = format!("file://{}", bare.display());
    let (code, out, err) = audit(&lone, &["--remote", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(actions(&out) > 0, "--remote URL fetches it: {out} {err}");
}
