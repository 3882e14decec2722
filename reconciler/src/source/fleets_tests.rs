//! Tests of [`FleetCache`] against real repositories made with git2 in temporary directories.

use super::*;
use git2::Signature;

const FLEET: &str = "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: cached}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  catalog: {serverTypes: [cpx11, cpx21, cpx31], locations: [fsn1], images: [ubuntu-24.04]}\n";

pub(crate) fn agent(name: &str, server_type: &str) -> String {
    format!(
        "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {name}}}\nspec:\n  subscription: sub_{name}\n  server: {{type: {server_type}}}\n  runtime: {{version: \"1.4.2\"}}\n"
    )
}

/// Commits `fleet.yaml` and `agents` (file name, text) plus a README on `main` of `dir`.
pub(crate) fn commit(dir: &Path, agents: &[(&str, String)], readme: &str) -> String {
    let repo = Repository::open(dir)
        .or_else(|_| Repository::init(dir))
        .expect("repository");
    let mut folder = repo.treebuilder(None).expect("treebuilder");
    for (name, text) in agents {
        let blob = repo.blob(text.as_bytes()).expect("blob");
        folder.insert(name, blob, 0o100_644).expect("insert");
    }
    let mut root = repo.treebuilder(None).expect("treebuilder");
    let fleet = repo.blob(FLEET.as_bytes()).expect("blob");
    root.insert("fleet.yaml", fleet, 0o100_644).expect("insert");
    let readme = repo.blob(readme.as_bytes()).expect("blob");
    root.insert("README.md", readme, 0o100_644).expect("insert");
    root.insert("agents", folder.write().expect("tree"), 0o040_000)
        .expect("insert");
    let tree = repo
        .find_tree(root.write().expect("tree"))
        .expect("find tree");
    let sig = Signature::now("test", "test@tether.invalid").expect("signature");
    let parent = repo
        .find_reference("refs/heads/main")
        .ok()
        .and_then(|r| r.peel_to_commit().ok());
    let parents: Vec<_> = parent.iter().collect();
    repo.commit(Some("refs/heads/main"), &sig, &sig, "edit", &tree, &parents)
        .expect("commit")
        .to_string()
}

fn server_type(fleet: &Fleet, agent: &str) -> String {
    fleet
        .agents
        .iter()
        .find(|(name, _)| name.as_str() == agent)
        .map(|(_, a)| a.server.server_type.to_string())
        .expect("agent in fleet")
}

#[test]
fn a_second_read_of_the_same_tree_loads_nothing_and_gives_the_same_fleet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = commit(dir.path(), &[("a.yaml", agent("a", "cpx21"))], "one");
    let cache = FleetCache::new();

    let loaded = cache.read(dir.path(), "main").expect("readable");
    assert_eq!(loaded.commit.as_deref(), Some(first.as_str()));
    assert_eq!(cache.loads(), 1);
    let again = cache.read(dir.path(), "main").expect("readable");
    assert_eq!(cache.loads(), 1, "the same tree is not loaded twice");
    assert_eq!(again.commit.as_deref(), Some(first.as_str()));
    let (fresh, cached) = (loaded.fleet.expect("loads"), again.fleet.expect("cached"));
    assert_eq!(format!("{fresh:?}"), format!("{cached:?}"));

    // A new commit with the very same tree (an empty commit) is a hit too, at its own commit.
    let repo = Repository::open(dir.path()).expect("repo");
    let head = repo
        .find_reference("refs/heads/main")
        .and_then(|h| h.peel_to_commit())
        .expect("main");
    let sig = Signature::now("test", "test@tether.invalid").expect("signature");
    let empty = repo
        .commit(
            Some("refs/heads/main"),
            &sig,
            &sig,
            "empty",
            &head.tree().expect("tree"),
            &[&head],
        )
        .expect("commit")
        .to_string();
    let same_tree = cache.read(dir.path(), "main").expect("readable");
    assert_eq!(same_tree.commit.as_deref(), Some(empty.as_str()));
    assert_eq!(cache.loads(), 1);
}

#[test]
fn a_changed_spec_is_loaded_fresh_and_the_plan_sees_the_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    commit(dir.path(), &[("a.yaml", agent("a", "cpx21"))], "one");
    let cache = FleetCache::new();
    let before = cache.read(dir.path(), "main").expect("readable");
    assert_eq!(
        server_type(before.fleet.as_ref().expect("loads"), "a"),
        "cpx21"
    );

    let second = commit(dir.path(), &[("a.yaml", agent("a", "cpx31"))], "one");
    let after = cache.read(dir.path(), "main").expect("readable");
    assert_eq!(cache.loads(), 2);
    assert_eq!(after.commit.as_deref(), Some(second.as_str()));
    let fleet = after.fleet.expect("loads");
    assert_eq!(server_type(&fleet, "a"), "cpx31");

    let plan = crate::plan::plan(
        &fleet,
        &crate::plan::Observed::default(),
        &crate::plan::Context::default(),
    );
    let shown = crate::plan::render::text::render(&plan, false);
    assert!(shown.contains("cpx31"), "{shown}");
}

#[test]
fn a_broken_spec_fails_with_its_diagnostics_every_time_and_a_fix_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    commit(dir.path(), &[("a.yaml", agent("a", "cpx21"))], "one");
    let cache = FleetCache::new();
    cache
        .read(dir.path(), "main")
        .expect("readable")
        .fleet
        .expect("loads");

    let broken = "apiVersion: tether/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  subscription: sub_a\n  runtime: {version: \"1.4.2\"}\n  sever: {}\n";
    commit(dir.path(), &[("a.yaml", broken.to_owned())], "one");
    for pass in 2..=3 {
        let loaded = cache.read(dir.path(), "main").expect("readable");
        let error = loaded.fleet.expect_err("the broken spec does not load");
        let text = error.to_string();
        assert!(text.contains("agents/a.yaml"), "{text}");
        assert!(text.contains("sever"), "{text}");
        assert_eq!(
            cache.loads(),
            pass,
            "an error is loaded again, never cached"
        );
    }

    commit(dir.path(), &[("a.yaml", agent("a", "cpx11"))], "one");
    let fixed = cache.read(dir.path(), "main").expect("readable");
    assert_eq!(server_type(&fixed.fleet.expect("loads"), "a"), "cpx11");
    assert_eq!(cache.loads(), 4);
}

#[test]
fn only_the_most_recent_trees_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = agent("a", "cpx21");
    let first = commit(dir.path(), &[("a.yaml", a.clone())], "one");
    let second = commit(dir.path(), &[("a.yaml", a.clone())], "two");
    let third = commit(dir.path(), &[("a.yaml", a)], "three");
    let cache = FleetCache::new();
    for rev in [&first, &second, &third, &second, &third] {
        cache.read(dir.path(), rev).expect("readable");
    }
    assert_eq!(cache.loads(), 3, "the two most recent trees stay cached");
    cache.read(dir.path(), &first).expect("readable");
    assert_eq!(cache.loads(), 4, "the oldest tree was let go");
}

#[test]
fn an_unknown_revision_is_a_source_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    commit(dir.path(), &[("a.yaml", agent("a", "cpx21"))], "one");
    let error = FleetCache::new()
        .read(dir.path(), "nope")
        .expect_err("no such revision");
    assert!(matches!(error, SourceError::GitRev { .. }), "{error}");
}
