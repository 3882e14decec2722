//! `tether agent add/remove` and `tether audit log` as billing and auditors run them: real
//! processes against a real git repository.

use crate::common::{commit_all, example_fleet, tether};
use std::path::Path;
use std::process::Command;

fn count_commits(repo: &Path) -> usize {
    let r = git2::Repository::open(repo).expect("open");
    let mut walk = r.revwalk().expect("walk");
    walk.push_ref("refs/heads/main").expect("main");
    walk.count()
}

#[test]
fn agent_add_with_the_same_idempotency_key_commits_once() {
    let repo = example_fleet();
    commit_all(repo.path(), "main", "seed");
    let dir = repo.path().to_str().expect("utf-8");
    let args = [
        "agent",
        "add",
        "--runtime-version",
        "1.4.2",
        "--repo",
        dir,
        "--subscription",
        "sub_Hooli1",
        "--customer",
        "cus_hooli",
        "--location",
        "hel1",
        "--idempotency-key",
        "evt_42",
    ];
    let first = tether(repo.path(), &args);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.starts_with("committed "), "{}", first.stdout);
    let second = tether(repo.path(), &args);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second
            .stdout
            .contains("unchanged: idempotency key evt_42 was already applied"),
        "{}",
        second.stdout
    );
    assert_eq!(count_commits(repo.path()), 2);
    let valid = tether(repo.path(), &["validate", "--git", dir, "--rev", "main"]);
    assert_eq!(valid.code, 0, "{}", valid.stderr);
    assert!(valid.stdout.contains("7 agents"), "{}", valid.stdout);
}

#[test]
fn concurrent_agent_adds_from_two_processes_both_land() {
    let repo = example_fleet();
    commit_all(repo.path(), "main", "seed");
    let dir = repo.path().to_str().expect("utf-8");
    let bin = crate::common::tether_bin();
    let children: Vec<_> = (0..2)
        .map(|i| {
            Command::new(bin)
                .args([
                    "agent",
                    "add",
                    "--runtime-version",
                    "1.4.2",
                    "--repo",
                    dir,
                    "--subscription",
                    &format!("sub_Race{i}"),
                    "--customer",
                    "cus_race",
                ])
                .output()
        })
        .collect();
    for child in children {
        let out = child.expect("run tether");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(count_commits(repo.path()), 3);
    let r = git2::Repository::open(repo.path()).expect("open");
    let tree = r
        .revparse_single("main")
        .expect("main")
        .peel_to_commit()
        .expect("commit")
        .tree()
        .expect("tree");
    for i in 0..2 {
        assert!(
            tree.get_path(Path::new(&format!("agents/cus-race/sub-race{i}.yaml")))
                .is_ok(),
            "sub_Race{i} was lost"
        );
    }
}

#[test]
fn an_invalid_agent_is_refused_with_a_located_error() {
    let repo = example_fleet();
    commit_all(repo.path(), "main", "seed");
    let dir = repo.path().to_str().expect("utf-8");
    let run = tether(
        repo.path(),
        &[
            "agent",
            "add",
            "--runtime-version",
            "1.4.2",
            "--repo",
            dir,
            "--subscription",
            "sub_New1",
            "--customer",
            "cus_dup",
            "--name",
            "acme-prod",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error[duplicate-name]"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("nothing was committed"),
        "{}",
        run.stderr
    );
    assert_eq!(count_commits(repo.path()), 1);
}

#[test]
fn audit_log_names_who_added_an_agent() {
    let repo = example_fleet();
    commit_all(repo.path(), "main", "seed");
    let dir = repo.path().to_str().expect("utf-8");
    let add = Command::new(crate::common::tether_bin())
        .args([
            "agent",
            "add",
            "--runtime-version",
            "1.4.2",
            "--repo",
            dir,
            "--subscription",
            "sub_Aud1",
            "--customer",
            "cus_aud",
            "--name",
            "aud-one",
        ])
        .env("TETHER_AUTHOR_NAME", "Stripe Webhook")
        .env("TETHER_AUTHOR_EMAIL", "billing@example.com")
        .output()
        .expect("run");
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let log = tether(
        repo.path(),
        &[
            "audit", "log", "--repo", dir, "--agent", "aud-one", "--format", "json",
        ],
    );
    assert_eq!(log.code, 0, "{}", log.stderr);
    let doc: serde_json::Value = serde_json::from_str(&log.stdout).expect("json");
    assert_eq!(doc[0]["agent"], "aud-one");
    assert_eq!(
        doc[0]["changes"][0]["author"],
        "Stripe Webhook <billing@example.com>"
    );
    assert_eq!(doc[0]["changes"][0]["change"], "added");
    assert_eq!(doc[0]["changes"][0]["path"], "agents/cus-aud/aud-one.yaml");
}

#[test]
fn an_idempotency_key_with_a_line_break_is_refused_and_changes_nothing() {
    let repo = example_fleet();
    commit_all(repo.path(), "main", "seed");
    let dir = repo.path().to_str().expect("utf-8");
    let before = count_commits(repo.path());
    let forged = tether(
        repo.path(),
        &[
            "agent",
            "add",
            "--runtime-version",
            "1.4.2",
            "--repo",
            dir,
            "--subscription",
            "sub_Forge1",
            "--customer",
            "cus_forge",
            "--idempotency-key",
            "a\nTether-Idempotency-Key: b",
        ],
    );
    assert_eq!(forged.code, 64, "{}", forged.stderr);
    assert!(
        forged
            .stderr
            .contains("idempotency key (--idempotency-key)")
            && forged.stderr.contains("1 to 63 ASCII letters"),
        "{}",
        forged.stderr
    );
    assert!(
        !forged.stderr.contains("\nTether-Idempotency-Key"),
        "{}",
        forged.stderr
    );
    assert_eq!(count_commits(repo.path()), before);
    let later = tether(
        repo.path(),
        &[
            "agent",
            "add",
            "--runtime-version",
            "1.4.2",
            "--repo",
            dir,
            "--subscription",
            "sub_Forge1",
            "--customer",
            "cus_forge",
            "--idempotency-key",
            "b",
        ],
    );
    assert_eq!(later.code, 0, "{}", later.stderr);
    assert!(later.stdout.starts_with("committed "), "{}", later.stdout);
}
