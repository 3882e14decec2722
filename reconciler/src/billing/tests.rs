//! Billing tests against real bare repositories seeded with the example fleet.

use super::*;
use git2::{Repository, Signature};
use std::path::PathBuf;

fn seeded() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let repo = Repository::init_bare(dir.path()).expect("init");
    let fleet = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet");
    let mut index = git2::Index::new().expect("index");
    add_dir(&repo, &mut index, &fleet, &fleet);
    let tree = repo
        .find_tree(index.write_tree_to(&repo).expect("tree"))
        .expect("tree");
    let sig = Signature::now("seed", "seed@example.com").expect("sig");
    repo.commit(Some("refs/heads/main"), &sig, &sig, "seed", &tree, &[])
        .expect("commit");
    dir
}

fn add_dir(repo: &Repository, index: &mut git2::Index, root: &Path, dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path: PathBuf = entry.expect("entry").path();
        if path.is_dir() {
            add_dir(repo, index, root, &path);
        } else {
            let data = std::fs::read(&path).expect("read");
            let rel = path
                .strip_prefix(root)
                .expect("relative")
                .to_string_lossy()
                .into_owned();
            let entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: 0o100_644,
                uid: 0,
                gid: 0,
                file_size: data.len() as u32,
                id: repo.blob(&data).expect("blob"),
                flags: 0,
                flags_extended: 0,
                path: rel.into_bytes(),
            };
            index.add(&entry).expect("add");
        }
    }
}

fn request(sub: &str, key: Option<&str>) -> AgentRequest {
    AgentRequest {
        subscription: sub.into(),
        customer: "cus_initech".into(),
        name: None,
        location: Some("nbg1".into()),
        runtime_version: Some("1.4.2".into()),
        idempotency_key: key.map(str::to_owned),
        ..AgentRequest::default()
    }
}

fn commits(repo: &Path) -> usize {
    let r = Repository::open(repo).expect("open");
    let mut walk = r.revwalk().expect("walk");
    walk.push_ref("refs/heads/main").expect("main");
    walk.count()
}

#[test]
fn the_same_request_twice_makes_one_commit() {
    let dir = seeded();
    let id = Identity::default();
    let t = Target {
        repo: dir.path(),
        base: None,
        branch: "main",
        push: None,
        identity: &id,
    };
    let first = add(&t, &request("sub_Initech1", Some("evt_1"))).expect("add");
    assert!(
        matches!(&first, Change::Committed { path, .. } if path == "agents/cus-initech/sub-initech1.yaml"),
        "{first:?}"
    );
    let again = add(&t, &request("sub_Initech1", Some("evt_1"))).expect("add again");
    assert!(
        matches!(again, Change::Unchanged { ref reason } if reason.contains("evt_1")),
        "{again:?}"
    );
    let no_key = add(&t, &request("sub_Initech1", None)).expect("same spec without key");
    assert!(matches!(no_key, Change::Unchanged { .. }));
    assert_eq!(commits(dir.path()), 2);
    let r = Repository::open(dir.path()).expect("open");
    let message = r
        .revparse_single("main")
        .expect("main")
        .peel_to_commit()
        .expect("commit")
        .message()
        .expect("utf-8")
        .to_owned();
    assert!(
        message.contains("Tether-Subscription: sub_Initech1")
            && message.contains("Tether-Idempotency-Key: evt_1"),
        "{message}"
    );
}

#[test]
fn an_invalid_request_is_refused_and_commits_nothing() {
    let dir = seeded();
    let id = Identity::default();
    let t = Target {
        repo: dir.path(),
        base: None,
        branch: "main",
        push: None,
        identity: &id,
    };
    let mut req = request("sub_X", None);
    req.location = Some("mars1".into());
    let err = add(&t, &req).expect_err("mars is not in the catalog");
    let BillingError::Invalid(diags) = err else {
        panic!("expected diagnostics")
    };
    assert!(diags[0].message.contains("mars1"), "{diags:?}");
    assert_eq!(commits(dir.path()), 1);
}

#[test]
fn remove_deletes_the_spec_and_is_idempotent() {
    let dir = seeded();
    let id = Identity::default();
    let t = Target {
        repo: dir.path(),
        base: None,
        branch: "main",
        push: None,
        identity: &id,
    };
    let gone = remove(&t, "sub_1OaBcGlobexOps", Some("evt_9")).expect("remove");
    assert!(
        matches!(&gone, Change::Committed { path, .. } if path == "agents/globex/globex-ops.yaml"),
        "{gone:?}"
    );
    assert!(matches!(
        remove(&t, "sub_1OaBcGlobexOps", None).expect("again"),
        Change::Unchanged { .. }
    ));
}

#[test]
fn concurrent_adds_both_land() {
    let dir = seeded();
    let path = dir.path().to_owned();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let id = Identity::default();
                let t = Target {
                    repo: &path,
                    base: None,
                    branch: "main",
                    push: None,
                    identity: &id,
                };
                add(
                    &t,
                    &request(&format!("sub_Par{i}"), Some(&format!("evt_par_{i}"))),
                )
                .expect("add")
            })
        })
        .collect();
    for h in handles {
        assert!(matches!(
            h.join().expect("thread"),
            Change::Committed { .. }
        ));
    }
    assert_eq!(commits(dir.path()), 5);
    let r = Repository::open(dir.path()).expect("open");
    let tree = r
        .revparse_single("main")
        .expect("main")
        .peel_to_commit()
        .expect("c")
        .tree()
        .expect("t");
    for i in 0..4 {
        assert!(
            tree.get_path(Path::new(&format!("agents/cus-initech/sub-par{i}.yaml")))
                .is_ok(),
            "sub_Par{i} lost"
        );
    }
}

#[test]
fn updating_a_subscription_keeps_unspecified_fields_and_never_renames() {
    let dir = seeded();
    let id = Identity::default();
    let t = Target {
        repo: dir.path(),
        base: None,
        branch: "main",
        push: None,
        identity: &id,
    };
    let req = AgentRequest {
        subscription: "sub_1OaBcAcmeProd".into(),
        customer: "cus_acme".into(),
        plan: Some("enterprise".into()),
        ..AgentRequest::default()
    };
    let changed = add(&t, &req).expect("update");
    let Change::Committed { path, .. } = changed else {
        panic!("expected a commit")
    };
    assert_eq!(path, "agents/acme/acme-prod.yaml");
    let r = Repository::open(dir.path()).expect("open");
    let tree = r
        .revparse_single("main")
        .expect("main")
        .peel_to_commit()
        .expect("c")
        .tree()
        .expect("t");
    let blob = r
        .find_blob(tree.get_path(Path::new(&path)).expect("spec").id())
        .expect("blob");
    let text = std::str::from_utf8(blob.content()).expect("utf-8");
    for kept in [
        "name: acme-prod",
        "protect: true",
        "type: cpx31",
        "AGENT_MODE: \"production\"",
        "plan: \"enterprise\"",
        "\"tag:agent-eu\"",
    ] {
        assert!(text.contains(kept), "{kept} missing from:\n{text}");
    }
    let rename = AgentRequest {
        name: Some("acme-new".into()),
        ..req
    };
    assert!(matches!(add(&t, &rename), Err(BillingError::Rename { .. })));
}

#[test]
fn a_pull_request_branch_starts_from_its_base_and_is_pushed_once() {
    let remote = seeded();
    let clone = tempfile::tempdir().expect("temp dir");
    Repository::init_bare(clone.path()).expect("clone");
    let url = format!("file://{}", remote.path().display());
    let id = Identity::default();
    let t = Target {
        repo: clone.path(),
        base: Some("main"),
        branch: "tether/agent-sub_Initech1",
        push: Some(&url),
        identity: &id,
    };
    let first = add(&t, &request("sub_Initech1", Some("evt_1"))).expect("add");
    assert!(matches!(first, Change::Committed { .. }), "{first:?}");
    let again = add(&t, &request("sub_Initech1", Some("evt_1"))).expect("add again");
    assert!(matches!(again, Change::Unchanged { .. }), "{again:?}");
    let r = Repository::open(remote.path()).expect("remote");
    let main = r.refname_to_id("refs/heads/main").expect("main");
    let branch = r
        .find_reference("refs/heads/tether/agent-sub_Initech1")
        .and_then(|b| b.peel_to_commit())
        .expect("the branch was pushed");
    assert_eq!(
        (branch.parent_id(0).expect("parent"), commits(remote.path())),
        (main, 1),
        "one commit on the new branch, off main; main itself unchanged"
    );
}

#[test]
fn a_new_agent_without_a_runtime_version_is_refused_and_nothing_is_committed() {
    let dir = seeded();
    let id = Identity::default();
    let t = Target {
        repo: dir.path(),
        base: None,
        branch: "main",
        push: None,
        identity: &id,
    };
    let before = commits(dir.path());
    let unpinned = AgentRequest {
        runtime_version: None,
        ..request("sub_Unpinned1", None)
    };
    let err = add(&t, &unpinned).expect_err("a new agent needs a runtime version");
    assert!(
        matches!(err, BillingError::RuntimeVersionRequired { ref subscription, .. } if subscription == "sub_Unpinned1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("--runtime-version"), "{err}");
    assert_eq!(commits(dir.path()), before);
}

/// A clone of `bare` with `main` checked out.
fn checkout_of(bare: &Path) -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().expect("tmp");
    Repository::open(bare)
        .and_then(|b| b.set_head("refs/heads/main"))
        .expect("the bare repository's HEAD is main");
    let url = format!("file://{}", bare.display());
    let repo = Repository::clone(&url, dir.path()).expect("clone");
    (dir, repo)
}

fn clean(repo: &Repository) -> Vec<String> {
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true);
    repo.statuses(Some(&mut opts))
        .expect("status")
        .iter()
        .map(|s| format!("{:?} {}", s.status(), s.path().unwrap_or("?")))
        .collect()
}

#[test]
fn a_commit_on_the_checked_out_branch_updates_the_work_tree_and_the_index() {
    let bare = seeded();
    let (dir, repo) = checkout_of(bare.path());
    let id = Identity::default();
    let t = Target {
        repo: dir.path(),
        base: None,
        branch: "main",
        push: None,
        identity: &id,
    };
    let added = add(&t, &request("sub_Initech1", None)).expect("add");
    let Change::Committed { commit, path } = added else {
        panic!("{added:?}")
    };
    assert_eq!(
        repo.head().expect("head").target(),
        Some(commit),
        "HEAD is the new commit"
    );
    assert!(
        dir.path().join(&path).is_file(),
        "the spec is in the work tree"
    );
    assert_eq!(clean(&repo), Vec::<String>::new(), "git status is clean");

    let removed = remove(&t, "sub_Initech1", None).expect("remove");
    assert!(matches!(removed, Change::Committed { .. }), "{removed:?}");
    assert!(
        !dir.path().join(&path).exists(),
        "the spec left the work tree"
    );
    assert_eq!(clean(&repo), Vec::<String>::new(), "git status is clean");
}

#[test]
fn a_pushed_commit_from_a_checkout_leaves_it_clean_at_the_remotes_tip() {
    let bare = seeded();
    let (dir, repo) = checkout_of(bare.path());
    let url = format!("file://{}", bare.path().display());
    let id = Identity::default();
    let t = Target {
        repo: dir.path(),
        base: None,
        branch: "main",
        push: Some(&url),
        identity: &id,
    };
    let added = add(&t, &request("sub_Initech1", None)).expect("add");
    let Change::Committed { commit, path } = added else {
        panic!("{added:?}")
    };
    let remote = Repository::open(bare.path()).expect("bare");
    assert_eq!(remote.refname_to_id("refs/heads/main").ok(), Some(commit));
    assert!(dir.path().join(&path).is_file());
    assert_eq!(clean(&repo), Vec::<String>::new());
}

#[test]
fn uncommitted_edits_to_the_same_spec_refuse_the_change_and_keep_the_branch() {
    let bare = seeded();
    let (dir, repo) = checkout_of(bare.path());
    let id = Identity::default();
    let t = Target {
        repo: dir.path(),
        base: None,
        branch: "main",
        push: None,
        identity: &id,
    };
    let before = repo.head().expect("head").target();
    let spec = dir.path().join("agents/cus-initech/sub-initech1.yaml");
    std::fs::create_dir_all(spec.parent().expect("folder")).expect("mkdir");
    std::fs::write(&spec, "my draft\n").expect("draft");
    let err = add(&t, &request("sub_Initech1", None)).expect_err("dirty");
    assert!(
        matches!(&err, BillingError::DirtyWorkTree { paths, .. } if paths == "agents/cus-initech/sub-initech1.yaml"),
        "{err:?}"
    );
    assert_eq!(repo.head().expect("head").target(), before);
    assert_eq!(
        std::fs::read_to_string(&spec).expect("draft"),
        "my draft\n",
        "the draft is kept"
    );
}

#[test]
fn a_spec_committed_behind_billings_back_is_checked_and_a_damaged_index_changes_nothing() {
    let dir = seeded();
    let id = Identity::default();
    let t = Target {
        repo: dir.path(),
        base: None,
        branch: "main",
        push: None,
        identity: &id,
    };
    let Ok(Change::Committed { commit, path }) = add(&t, &request("sub_a", Some("evt_a"))) else {
        panic!("the first add commits");
    };
    // Someone commits a second spec with the same subscription straight to the branch.
    let repo = Repository::open(dir.path()).expect("open");
    let first = repo.find_commit(commit).expect("commit");
    let text = String::from_utf8(
        first
            .tree()
            .expect("tree")
            .get_path(Path::new(&path))
            .expect("spec")
            .to_object(&repo)
            .expect("blob")
            .peel_to_blob()
            .expect("blob")
            .content()
            .to_vec(),
    )
    .expect("utf-8")
    .replace("name: sub-a", "name: other-a");
    let tree = commit::with_file(
        &repo,
        &first.tree().expect("tree"),
        "agents/x/other.yaml",
        &text,
    )
    .expect("tree");
    let sig = Signature::now("someone", "someone@example.com").expect("sig");
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "by hand",
        &repo.find_tree(tree).expect("tree"),
        &[&first],
    )
    .expect("commit");
    match add(&t, &request("sub_b", None)) {
        Err(BillingError::Invalid(problems)) => assert!(
            problems.iter().any(|p| p.file == "agents/x/other.yaml"),
            "{problems:?}"
        ),
        other => panic!("the duplicate subscription is refused, got {other:?}"),
    }
    // Back to billing's own commit, with the index overwritten by garbage: still exact.
    repo.reference("refs/heads/main", commit, true, "undo")
        .expect("reset");
    std::fs::write(
        repo.path().join("tether/billing-index"),
        "tether billing index v1\nspec\tzz\n",
    )
    .expect("damage the index");
    assert!(matches!(
        add(&t, &request("sub_c", Some("evt_a"))),
        Ok(Change::Unchanged { .. })
    ));
    assert!(matches!(
        add(&t, &request("sub_c", Some("evt_c"))),
        Ok(Change::Committed { .. })
    ));
    assert_eq!(commits(dir.path()), 3);
}

#[test]
fn a_billing_commit_is_signed_with_the_receivers_key() {
    let dir = seeded();
    let signer = crate::audit::signing::tests::signer(3);
    let allowed = crate::audit::signers::AllowedSigners::parse(
        &format!("billing@tether.invalid {}\n", signer.public_key()),
        "allowed_signers",
    )
    .expect("allowed signers");
    let id = Identity {
        name: "tether billing".into(),
        email: "billing@tether.invalid".into(),
        signer: Some(std::sync::Arc::new(signer)),
    };
    let t = Target {
        repo: dir.path(),
        base: None,
        branch: "main",
        push: None,
        identity: &id,
    };
    let Change::Committed { commit, .. } =
        add(&t, &request("sub_Initech1", Some("evt_1"))).expect("add")
    else {
        panic!("a commit");
    };
    let r = Repository::open(dir.path()).expect("open");
    let (armored, data) = r.extract_signature(&commit, None).expect("signed");
    let when = r
        .find_commit(commit)
        .expect("commit")
        .committer()
        .when()
        .seconds();
    let key = allowed
        .check(
            "billing@tether.invalid",
            when,
            armored.as_str().expect("text"),
            &data,
        )
        .expect("signed by the receiver's key");
    assert!(key.starts_with("SHA256:"));
}
