//! Runtime fields plan in place: a version or env bump is an update in waves, never a
//! replacement, also for servers labelled before runtime fields left the spec hash.

use super::super::*;
use crate::compute::{ServerId, ServerStatus};
use tether_schema::{Agent, Fleet, labels, load_fleet};

fn fleet(agents: usize, version: &str, budget: u32) -> Fleet {
    let mut files = vec![tether_schema::SourceFile {
        path: "fleet.yaml".into(),
        content: tether_schema::Content::Bytes(format!(
            "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: rt}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  policy: {{maxDisruptionsPerRun: {budget}, maxDisruptionPercent: 100}}\n  catalog: {{serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}}\n"
        ).into_bytes()),
    }];
    for i in 0..agents {
        files.push(tether_schema::SourceFile {
            path: format!("agents/acme-{i:02}.yaml"),
            content: tether_schema::Content::Bytes(format!(
                "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: acme-{i:02}}}\nspec:\n  subscription: sub_{i}\n  runtime: {{version: \"{version}\", env: {{API_TOKEN: s3cr3t-{i}}}}}\n"
            ).into_bytes()),
        });
    }
    load_fleet(&files).expect("valid fleet")
}

/// The servers as `created_from` created them, labelled by `label`.
fn servers(
    created_from: &Fleet,
    label: fn(&Agent, &Fleet) -> BTreeMap<String, String>,
) -> Vec<Server> {
    created_from
        .agents
        .values()
        .zip(1u64..)
        .map(|(a, id)| Server {
            id: ServerId(id),
            name: a.name.to_string(),
            status: ServerStatus::Running,
            server_type: "cpx21".into(),
            location: "fsn1".into(),
            image: Some("ubuntu-24.04".into()),
            labels: label(a, created_from),
            ipv4: Some(format!("203.0.113.{id}")),
            ipv6: None,
            created: "2026-11-23T10:00:00Z".into(),
            delete_protected: false,
            rebuild_protected: false,
            disk_gb: None,
            project: None,
        })
        .collect()
}

fn current(a: &Agent, f: &Fleet) -> BTreeMap<String, String> {
    labels::server_labels(a, &f.settings)
}

/// The labels tether set before runtime fields left the spec hash.
fn legacy(a: &Agent, f: &Fleet) -> BTreeMap<String, String> {
    let mut l = labels::server_labels(a, &f.settings);
    l.remove(labels::RUNTIME);
    l.insert(
        labels::SPEC.to_owned(),
        labels::legacy_replacement_hash(a, &f.settings),
    );
    l
}

fn observed(servers: Vec<Server>) -> Observed {
    Observed {
        servers,
        ..Observed::default()
    }
}

fn kinds(p: &Plan) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for a in &p.actions {
        *out.entry(a.kind()).or_insert(0) += 1;
    }
    out
}

#[test]
fn a_version_bump_on_50_agents_updates_in_place_in_growing_waves_within_the_budget() {
    let old = fleet(50, "1.4.0", 5);
    let new = fleet(50, "1.5.0", 5);
    let ctx = Context {
        previous: Some(old.clone()),
        ..Context::default()
    };
    let p = plan(&new, &observed(servers(&old, current)), &ctx);
    assert_eq!(kinds(&p), BTreeMap::from([("update-runtime", 50)]));
    assert_eq!(p.summary.replace, 0);
    assert_eq!(p.summary.disruptions, 0);
    let mut per_wave: BTreeMap<u32, usize> = BTreeMap::new();
    for a in &p.actions {
        let Action::UpdateRuntime { wave, from, to, .. } = a else {
            unreachable!("only updates")
        };
        assert_eq!((from.as_deref(), to.as_str()), (Some("1.4.0"), "1.5.0"));
        *per_wave.entry(*wave).or_insert(0) += 1;
    }
    let sizes: Vec<usize> = per_wave.values().copied().collect();
    assert_eq!(sizes[..3], [1, 2, 4]);
    assert!(sizes.iter().all(|n| *n <= 5), "{sizes:?}");
    let text = render::text::render(&p, false);
    assert!(
        text.contains(
            "update runtime of server acme-00 (id 1): 1.4.0 → 1.5.0 (in place, wave 1 canary)"
        ),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"), "{text}");
}

#[test]
fn servers_labelled_before_the_upgrade_are_relabelled_once_not_replaced() {
    let same = fleet(3, "1.4.0", 5);
    let p = plan(
        &same,
        &observed(servers(&same, legacy)),
        &Context::default(),
    );
    assert_eq!(kinds(&p), BTreeMap::from([("relabel", 3)]));
    let Action::Relabel { to, .. } = &p.actions[0] else {
        unreachable!("relabel")
    };
    assert_eq!(
        to.get(labels::RUNTIME),
        Some(&labels::runtime_hash(
            same.agents.values().next().expect("agent")
        ))
    );
}

#[test]
fn a_bump_on_servers_labelled_before_the_upgrade_updates_them_in_place() {
    let old = fleet(3, "1.4.0", 5);
    let new = fleet(3, "1.5.0", 5);
    let ctx = Context {
        previous: Some(old.clone()),
        ..Context::default()
    };
    let p = plan(&new, &observed(servers(&old, legacy)), &ctx);
    assert_eq!(
        kinds(&p),
        BTreeMap::from([("relabel", 3), ("update-runtime", 3)])
    );
}

#[test]
fn a_halted_runtime_is_held_with_its_reason_until_the_spec_changes_it() {
    let old = fleet(3, "1.4.0", 5);
    let new = fleet(3, "1.5.0", 5);
    let agent = new.agents.values().next().expect("agent");
    let ctx = Context {
        previous: Some(old.clone()),
        halted_rollout: Some(runtime::Halted {
            runtime: labels::runtime_hash(agent),
            version: "1.5.0".into(),
            reason: "rollout halted: 1.5.0 failed on canary acme-00: exit 3".into(),
        }),
        ..Context::default()
    };
    let p = plan(&new, &observed(servers(&old, current)), &ctx);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let text = render::text::render(&p, false);
    assert!(
        text.contains("rollout halted: 1.5.0 failed on canary acme-00: exit 3"),
        "{text}"
    );
    let newer = fleet(3, "1.5.1", 5);
    let p = plan(&newer, &observed(servers(&old, current)), &ctx);
    assert_eq!(kinds(&p), BTreeMap::from([("update-runtime", 3)]));
}

#[test]
fn a_halt_written_on_the_canary_holds_the_version_though_the_status_branch_never_recorded_it() {
    let old = fleet(3, "1.5.0", 5);
    let new = fleet(3, "2.0.0", 5);
    let mut observed_servers = servers(&old, current);
    let canary = new.agents.values().next().expect("agent");
    // The daemon wrote the halt on the canary, rolled it back, and died before committing.
    observed_servers[0]
        .labels
        .insert(labels::RUNTIME_HALTED.into(), labels::runtime_hash(canary));
    let ctx = Context {
        previous: Some(old.clone()),
        ..Context::default()
    };
    let p = plan(&new, &observed(observed_servers.clone()), &ctx);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let text = render::text::render(&p, false);
    assert!(
        text.contains("rollout halted: 2.0.0 failed on acme-00 (recorded on its server's tether/runtime-halted label)"),
        "{text}"
    );
    let fixed = fleet(3, "2.0.1", 5);
    let p = plan(&fixed, &observed(observed_servers), &ctx);
    assert_eq!(
        kinds(&p),
        BTreeMap::from([("update-runtime", 3)]),
        "a new version is not held, and the label is not relabelled away"
    );
}
