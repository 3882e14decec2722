use super::*;

const BRANCH: &str = "refs/heads/tether/status";

/// Commits `files` (name → text, under `status/`) on the status branch at `time`.
fn commit(repo: &Repository, time: i64, files: &[(&str, &str)]) -> Oid {
    let mut status = repo.treebuilder(None).expect("treebuilder");
    for (name, text) in files {
        let blob = repo.blob(text.as_bytes()).expect("blob");
        status.insert(name, blob, 0o100_644).expect("insert");
    }
    let status = status.write().expect("write");
    let mut root = repo.treebuilder(None).expect("treebuilder");
    root.insert(STATUS_DIR, status, 0o040_000).expect("insert");
    let tree = repo.find_tree(root.write().expect("write")).expect("tree");
    let sig =
        git2::Signature::new("tether", "tether@t", &git2::Time::new(time, 0)).expect("signature");
    let parent = repo
        .find_reference(BRANCH)
        .ok()
        .and_then(|r| r.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some(BRANCH), &sig, &sig, "apply", &tree, &parents)
        .expect("commit")
}

const FLEET: (&str, &str) = ("fleet.yaml", "fleet: aura-prod\n");

fn doc(phase: &str, server_type: &str, online: bool, error: Option<&str>) -> String {
    let device = if online {
        "device:\n  id: nd7\n  tailnetIps: [100.64.0.7, \"fd7a:115c:a1e0::7\"]\n  online: true\n"
    } else {
        "device: null\n"
    };
    let error = error.map_or("null".to_owned(), |e| format!("\"{e}\""));
    format!(
        "agent: acme\nphase: {phase}\nserver:\n  id: 42\n  status: running\n  serverType: {server_type}\n  location: fsn1\n  publicIps: [203.0.113.7, \"2001:db8::/64\"]\n{device}lastTransitionTime: t\nlastError: {error}\n"
    )
}

fn kinds(events: &[LifecycleEvent]) -> Vec<(&str, u64)> {
    events
        .iter()
        .map(|e| (e.kind.as_str(), e.sequence))
        .collect()
}

#[test]
fn an_agents_life_on_the_status_branch_is_one_event_per_transition_in_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(dir.path()).expect("init");
    let ready = doc("Ready", "cpx21", true, None);
    commit(
        &repo,
        100,
        &[
            FLEET,
            ("acme.yaml", &doc("Provisioning", "cpx21", false, None)),
        ],
    );
    let ready_at = commit(&repo, 200, &[FLEET, ("acme.yaml", &ready)]);
    // A pass that only rewrote the observation time says nothing new.
    commit(
        &repo,
        250,
        &[FLEET, ("acme.yaml", &ready.replace(": t\n", ": t2\n"))],
    );
    commit(
        &repo,
        300,
        &[FLEET, ("acme.yaml", &doc("Degraded", "cpx21", false, None))],
    );
    commit(&repo, 400, &[FLEET, ("acme.yaml", &ready)]);
    commit(
        &repo,
        500,
        &[FLEET, ("acme.yaml", &doc("Ready", "cpx31", true, None))],
    );
    commit(
        &repo,
        600,
        &[
            FLEET,
            (
                "acme.yaml",
                &doc("Failed", "cpx31", true, Some("rebuild failed")),
            ),
        ],
    );
    commit(
        &repo,
        700,
        &[
            FLEET,
            ("acme.yaml", &doc("Quarantined", "cpx31", false, None)),
        ],
    );
    commit(&repo, 800, &[FLEET]);
    let tip = repo.refname_to_id(BRANCH).expect("tip");

    let events = Deriver::new().advance(&repo, tip).expect("derive");
    assert_eq!(
        kinds(&events),
        [
            ("agent.provisioning", 1),
            ("agent.ready", 2),
            ("agent.unhealthy", 3),
            ("agent.recovered", 4),
            ("agent.updated", 5),
            ("agent.failed", 6),
            ("agent.quarantined", 7),
            ("agent.deleted", 8),
        ]
    );
    let ready = &events[1];
    assert_eq!(ready.status_commit, ready_at.to_string());
    assert_eq!(ready.time, 200);
    assert_eq!(ready.fleet, "aura-prod");
    let body = ready.to_cloudevent();
    assert_eq!(body["specversion"], "1.0");
    assert_eq!(body["type"], "agent.ready");
    assert_eq!(body["subject"], "acme");
    assert_eq!(body["sequence"], 2);
    assert_eq!(body["time"], "1970-01-01T00:03:20Z");
    assert_eq!(body["source"], "/tether/fleets/aura-prod");
    let data = &body["data"];
    assert_eq!(data["serverId"], 42);
    assert_eq!(data["serverType"], "cpx21");
    assert_eq!(data["location"], "fsn1");
    assert_eq!(data["ipv4"], "203.0.113.7");
    assert_eq!(data["ipv6"], "2001:db8::/64");
    assert_eq!(data["deviceId"], "nd7");
    assert_eq!(data["tailnetIps"][0], "100.64.0.7");
    assert_eq!(data["hostname"], "acme");
    assert_eq!(events[5].reason.as_deref(), Some("rebuild failed"));
}

#[test]
fn ids_are_stable_whoever_derives_them_and_advancing_derives_only_new_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(dir.path()).expect("init");
    commit(
        &repo,
        100,
        &[
            FLEET,
            ("acme.yaml", &doc("Provisioning", "cpx21", false, None)),
        ],
    );
    let first = repo.refname_to_id(BRANCH).expect("tip");
    let mut deriver = Deriver::new();
    let early = deriver.advance(&repo, first).expect("derive");
    commit(
        &repo,
        200,
        &[FLEET, ("acme.yaml", &doc("Ready", "cpx21", true, None))],
    );
    let tip = repo.refname_to_id(BRANCH).expect("tip");
    let late = deriver.advance(&repo, tip).expect("derive");
    assert_eq!(kinds(&late), [("agent.ready", 2)], "only the new commit");
    assert!(deriver.advance(&repo, tip).expect("again").is_empty());

    let all = Deriver::new().advance(&repo, tip).expect("derive");
    let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [early[0].id.as_str(), late[0].id.as_str()]);
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn a_restored_agent_and_a_runtime_change_are_their_own_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(dir.path()).expect("init");
    let ready = doc("Ready", "cpx21", true, None);
    let runtime = |v: &str| format!("agents:\n  acme:\n    desired: {v}\n    running: {v}\n");
    commit(
        &repo,
        100,
        &[
            FLEET,
            ("acme.yaml", &ready),
            ("runtime.yaml", &runtime("1.0.0")),
        ],
    );
    commit(
        &repo,
        200,
        &[
            FLEET,
            ("acme.yaml", &ready),
            ("runtime.yaml", &runtime("1.1.0")),
        ],
    );
    commit(
        &repo,
        300,
        &[
            FLEET,
            ("acme.yaml", &doc("Quarantined", "cpx21", false, None)),
            ("runtime.yaml", &runtime("1.1.0")),
        ],
    );
    commit(
        &repo,
        400,
        &[
            FLEET,
            ("acme.yaml", &ready),
            ("runtime.yaml", &runtime("1.1.0")),
        ],
    );
    let tip = repo.refname_to_id(BRANCH).expect("tip");
    let events = Deriver::new().advance(&repo, tip).expect("derive");
    assert_eq!(
        kinds(&events),
        [
            ("agent.provisioning", 1),
            ("agent.ready", 2),
            ("agent.updated", 3),
            ("agent.quarantined", 4),
            ("agent.restored", 5),
        ],
        "an agent first recorded Ready is announced provisioning first"
    );
    assert_eq!(events[0].status_commit, events[1].status_commit);
    assert_ne!(events[0].id, events[1].id);
    assert_eq!(events[1].data.runtime_version.as_deref(), Some("1.0.0"));
    assert_eq!(events[2].data.runtime_version.as_deref(), Some("1.1.0"));
}
