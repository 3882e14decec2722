//! A VM's hostile error text through the whole audit trail: the status commit tether writes
//! with it, read back by `tether audit log` (its history, and that history as JSON), forges no
//! action, no source commit and no subject, whether by a trailer line, a blank-line trick or a
//! `---` divider.

use super::commit::{self, Identity, Target};
use super::{log, message, trailers};
use crate::apply::{ActionReport, ApplyReport, Kind, Outcome};
use git2::{Repository, Signature};
use std::collections::BTreeMap;
use std::path::Path;

fn spec_commit(repo: &Repository) -> String {
    let dir = repo.path().parent().expect("work tree").to_owned();
    std::fs::create_dir_all(dir.join("agents")).expect("agents");
    std::fs::write(dir.join("agents/web-1.yaml"), "kind: Agent\n").expect("spec");
    let mut index = repo.index().expect("index");
    index.add_path(Path::new("agents/web-1.yaml")).expect("add");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let sig = Signature::now("billing", "billing@example.com").expect("sig");
    repo.commit(Some("refs/heads/main"), &sig, &sig, "add web-1", &tree, &[])
        .expect("commit")
        .to_string()
}

fn failed(agent: &str, reason: &str) -> ActionReport {
    ActionReport {
        kind: "update-runtime",
        agent: agent.to_owned(),
        outcome: Outcome::Failed {
            reason: reason.to_owned(),
            kind: Kind::Terminal,
        },
        server_id: None,
        ipv4: None,
        action_ids: Vec::new(),
        device_ids: Vec::new(),
        deleted_server: None,
        key_id: None,
        warning: None,
        reason: None,
        order: 5,
    }
}

#[test]
fn a_hostile_vm_error_in_a_status_commit_forges_no_audit_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let repo = Repository::init(dir.path()).expect("init");
    let source = spec_commit(&repo);
    let forged = "f".repeat(40);
    let hostile = format!(
        "boom\nTether-Source-Commit: {forged}\n\ndelete web-1 done [server 7]\n---\n\nTether-Source-Commit: {forged}\nTether-Run: forged\n\napply 0000000: +0 created, -1 deleted\n\nTether-Source-Commit: {forged}\n"
    );
    let report = ApplyReport {
        plan_hash: "p1".to_owned(),
        revision: Some(source.clone()),
        actions: vec![failed("web-1", &hostile)],
    };
    let text = message::commit_message(&report, "run-1");
    let block = trailers::block(&text);
    assert_eq!(block.get(super::TRAILER_SOURCE), Some(source.as_str()));
    assert_eq!(block.get(super::TRAILER_RUN), Some("run-1"));
    assert!(text.lines().next().is_some_and(|s| s.starts_with("apply ")));
    assert_eq!(
        text.lines().filter(|l| l.starts_with("delete")).count(),
        0,
        "{text}"
    );

    let id = Identity::default();
    let target = Target {
        repo: dir.path(),
        remote: None,
        branch: super::STATUS_BRANCH,
        source_branch: "main",
        identity: &id,
    };
    let files = BTreeMap::from([("fleet.yaml".to_owned(), "agents: 1\n".to_owned())]);
    commit::write(&target, &files, &text).expect("status commit");

    let history = log::history(
        dir.path(),
        "main",
        &[super::STATUS_BRANCH],
        Some("web-1"),
        None,
    )
    .expect("history");
    let actions = &history[0].changes[0].actions;
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert!(
        actions[0].starts_with("update-runtime web-1"),
        "{actions:?}"
    );
    assert!(
        !actions.iter().any(|a| a.starts_with("delete")),
        "{actions:?}"
    );
    let json = serde_json::to_string(&history).expect("json");
    assert!(!json.contains("\"delete web-1 done"), "{json}");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("parse");
    let lines = doc[0]["changes"][0]["actions"].as_array().expect("actions");
    assert!(
        lines
            .iter()
            .all(|l| !l.as_str().expect("text").contains('\n')),
        "{json}"
    );
    assert!(
        log::flagged(dir.path(), &[super::STATUS_BRANCH])
            .expect("flagged")
            .is_empty()
    );
}

#[test]
fn a_status_commit_whose_trailers_conflict_is_flagged_and_attributes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let repo = Repository::init(dir.path()).expect("init");
    let source = spec_commit(&repo);
    let id = Identity::default();
    let target = Target {
        repo: dir.path(),
        remote: None,
        branch: super::STATUS_BRANCH,
        source_branch: "main",
        identity: &id,
    };
    let files = BTreeMap::from([("fleet.yaml".to_owned(), "agents: 1\n".to_owned())]);
    let text = format!(
        "apply 1234567: +0 created, -1 deleted\n\ndelete web-1 done [server 7]\nApply: 1 done, 0 failed, 0 skipped.\n\nTether-Source-Commit: {source}\nTether-Source-Commit: {}\nTether-Run: r\n",
        "e".repeat(40)
    );
    let oid = commit::write(&target, &files, &text)
        .expect("write")
        .expect("commit");
    let history = log::history(
        dir.path(),
        "main",
        &[super::STATUS_BRANCH],
        Some("web-1"),
        None,
    )
    .expect("history");
    assert!(history[0].changes[0].actions.is_empty());
    let flagged = log::flagged(dir.path(), &[super::STATUS_BRANCH]).expect("flagged");
    assert_eq!(
        flagged,
        vec![log::Flagged {
            status_commit: oid.to_string(),
            tokens: vec![super::TRAILER_SOURCE.to_owned()],
        }]
    );
}
