//! The planner's quarantine rules, one at a time, on small fleets built in code.

use crate::compute::{Euros, Server, ServerId, ServerStatus};
use crate::plan::{Action, Context, Note, Observed, Plan, plan};
use crate::tailnet::{Device, DeviceId};
use std::collections::BTreeMap;
use tether_schema::{Content, Fleet, SourceFile, labels, load_fleet};
use time::OffsetDateTime;

/// 2026-11-24T12:00:00Z.
const NOW: i64 = 1_795_521_600;
const HOUR: i64 = 3600;

/// A fleet named `q` with `policy` lines and one agent per `(name, subscription)`.
fn fleet(policy: &str, agents: &[(&str, &str)]) -> Fleet {
    let mut files = vec![SourceFile {
        path: "fleet.yaml".into(),
        content: Content::Bytes(
            format!("apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: q}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  policy: {{prune: true, {policy}}}\n  catalog: {{serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}}\n").into_bytes(),
        ),
    }];
    for (name, subscription) in agents {
        files.push(SourceFile {
            path: format!("agents/{name}.yaml"),
            content: Content::Bytes(
                format!("apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {name}}}\nspec:\n  subscription: {subscription}\n  runtime: {{version: \"1.0.0\"}}\n").into_bytes(),
            ),
        });
    }
    load_fleet(&files).expect("valid test fleet")
}

fn server(id: u64, agent: &str, subscription: &str) -> Server {
    Server {
        id: ServerId(id),
        name: agent.to_owned(),
        status: ServerStatus::Running,
        server_type: "cpx21".to_owned(),
        location: "fsn1".to_owned(),
        image: Some("ubuntu-24.04".to_owned()),
        labels: [
            (labels::FLEET, "q"),
            (labels::AGENT, agent),
            (labels::SUBSCRIPTION, subscription),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        ipv4: None,
        ipv6: None,
        created: "2026-11-20T10:00:00Z".to_owned(),
        delete_protected: false,
        rebuild_protected: false,
        disk_gb: None,
        project: None,
    }
}

/// `server(..)` as quarantined at `at` (unix seconds) by commit `c0ffee`.
fn quarantined(id: u64, agent: &str, subscription: &str, at: i64) -> Server {
    let mut s = server(id, agent, subscription);
    s.name = labels::quarantined_name(agent, id);
    s.status = ServerStatus::Off;
    s.labels
        .insert(labels::QUARANTINED_AT.to_owned(), at.to_string());
    s.labels
        .insert(labels::QUARANTINE_COMMIT.to_owned(), "c0ffee".to_owned());
    s
}

fn device(id: &str, hostname: &str) -> Device {
    Device {
        id: DeviceId(id.to_owned()),
        legacy_id: String::new(),
        name: format!("{hostname}.tail1234.ts.net"),
        hostname: hostname.to_owned(),
        addresses: Vec::new(),
        user: "tagged-devices".to_owned(),
        tags: vec!["tag:agent".to_owned()],
        authorized: true,
        online: false,
        last_seen: None,
        created: "2026-11-20T10:05:00Z".to_owned(),
        expires: None,
        ephemeral: false,
        external: false,
        os: "linux".to_owned(),
        client_version: "1.80.3".to_owned(),
        enabled_routes: None,
    }
}

/// The agent's server as its spec wants it.
fn current(id: u64, fleet: &Fleet, agent: &str) -> Server {
    let spec = fleet
        .agents
        .iter()
        .find(|(n, _)| n.as_str() == agent)
        .map(|(_, a)| a)
        .expect("agent in fleet");
    Server {
        labels: labels::server_labels(spec, &fleet.settings),
        ..server(id, agent, spec.subscription.as_str())
    }
}

fn at(now: Option<i64>) -> Context {
    Context {
        recent_deletions: Some(0),
        now: now.map(|t| OffsetDateTime::from_unix_timestamp(t).expect("time")),
        ..Context::default()
    }
}

/// The plan, with the last applied revision as large as the fleet unless `ctx` says otherwise.
fn planned(fleet: &Fleet, servers: Vec<Server>, devices: Vec<Device>, ctx: &Context) -> Plan {
    let observed = Observed {
        servers,
        devices,
        prices: [(("cpx21".to_owned(), "fsn1".to_owned()), Euros(95_200))].into(),
        ..Observed::default()
    };
    let ctx = Context {
        previous_agents: ctx.previous_agents.or(Some(fleet.agents.len())),
        ..ctx.clone()
    };
    plan(fleet, &observed, &ctx)
}

fn kinds(p: &Plan) -> Vec<(&str, &str)> {
    p.actions.iter().map(|a| (a.kind(), a.agent())).collect()
}

#[test]
fn a_removed_spec_quarantines_its_server_and_a_zero_grace_deletes_it() {
    let one = fleet("maxDisruptionPercent: 100", &[("a", "sub_a")]);
    let servers = vec![current(1, &one, "a"), server(2, "b", "sub_b")];
    let devices = vec![device("d2", "b")];
    let ctx = Context {
        previous_agents: Some(2),
        ..at(Some(NOW))
    };
    let p = planned(&one, servers.clone(), devices.clone(), &ctx);
    assert!(p.accepted(), "{p:?}");
    match p.actions.as_slice() {
        [
            Action::Quarantine {
                agent,
                server_id,
                devices,
                commit,
                grace,
                ..
            },
        ] => {
            assert_eq!((agent.as_str(), server_id.0), ("b", 2));
            assert_eq!(devices, &[DeviceId("d2".into())]);
            assert_eq!((commit, grace.as_str()), (&None, "1d"));
        }
        other => panic!("one quarantine expected, got {other:?}"),
    }
    assert_eq!((p.summary.quarantine, p.summary.delete), (1, 0));
    assert_eq!(
        (p.summary.quarantined, p.summary.quarantined_monthly_cost),
        (1, Some(Euros(95_200))),
        "a powered-off server still bills"
    );
    let off = planned(
        &fleet("quarantineGrace: \"off\"", &[("a", "sub_a")]),
        servers,
        devices,
        &ctx,
    );
    assert_eq!(kinds(&off), [("delete", "b")]);
}

#[test]
fn a_quarantined_server_inside_its_grace_period_is_kept_with_a_note() {
    let p = planned(
        &fleet("", &[]),
        vec![quarantined(5, "gone", "sub_gone", NOW - 23 * HOUR)],
        Vec::new(),
        &at(Some(NOW)),
    );
    assert!(p.actions.is_empty(), "{p:?}");
    assert_eq!(
        p.notes,
        [Note::Quarantined {
            agent: "gone".into(),
            server_id: ServerId(5),
            since: "2026-11-23T13:00:00Z".into(),
            commit: Some("c0ffee".into()),
            delete_after: "2026-11-24T13:00:00Z".into(),
        }]
    );
    assert_eq!(p.summary.quarantined, 1);
    assert_eq!(p.managed_servers, 1, "a quarantined server is still owned");
}

#[test]
fn a_quarantined_server_past_its_grace_period_is_deleted_within_the_budgets() {
    let servers = vec![
        quarantined(5, "x", "sub_x", NOW - 25 * HOUR),
        quarantined(6, "y", "sub_y", NOW - 30 * HOUR),
    ];
    let policy = "maxDeletionsPerHour: 1, maxDeletionPercent: 100";
    let p = planned(
        &fleet(policy, &[]),
        servers.clone(),
        Vec::new(),
        &at(Some(NOW)),
    );
    assert_eq!(kinds(&p), [("delete", "x")], "the hourly budget allows one");
    match &p.actions[0] {
        Action::Delete { reason, .. } => assert_eq!(
            reason,
            "quarantine grace period ended (quarantined at 2026-11-23T11:00:00Z, commit c0ffee)"
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        p.notes
            .iter()
            .any(|n| matches!(n, Note::Deferred { agent, .. } if agent == "y")),
        "{:?}",
        p.notes
    );
    let no_clock = planned(&fleet(policy, &[]), servers, Vec::new(), &at(None));
    assert!(
        no_clock.actions.is_empty(),
        "without the pass's time no grace period ends: {no_clock:?}"
    );
}

#[test]
fn a_protected_quarantined_server_is_never_deleted_not_even_when_purged() {
    let mut labelled = quarantined(5, "x", "sub_x", NOW - 100 * HOUR);
    labelled
        .labels
        .insert(labels::PROTECT.to_owned(), "true".to_owned());
    labelled
        .labels
        .insert(labels::PURGE.to_owned(), "true".to_owned());
    let mut hetzner = quarantined(6, "y", "sub_y", NOW - 100 * HOUR);
    hetzner.delete_protected = true;
    let p = planned(
        &fleet("maxDeletionPercent: 100", &[]),
        vec![labelled, hetzner],
        Vec::new(),
        &at(Some(NOW)),
    );
    assert!(p.actions.is_empty(), "{p:?}");
    assert_eq!(
        p.notes
            .iter()
            .filter(|n| matches!(n, Note::OrphanKept { .. }))
            .count(),
        2
    );
}

#[test]
fn a_purged_quarantined_server_is_deleted_before_its_grace_period_ends() {
    let mut purged = quarantined(5, "x", "sub_x", NOW - HOUR);
    purged
        .labels
        .insert(labels::PURGE.to_owned(), "true".to_owned());
    let p = planned(&fleet("", &[]), vec![purged], Vec::new(), &at(Some(NOW)));
    assert_eq!(kinds(&p), [("delete", "x")]);
}

#[test]
fn a_spec_re_added_with_the_same_subscription_is_restored_not_created() {
    let p = planned(
        &fleet("", &[("back", "sub_back")]),
        vec![quarantined(5, "back", "sub_back", NOW - HOUR)],
        vec![device("d5", "back")],
        &at(Some(NOW)),
    );
    assert_eq!(kinds(&p), [("restore", "back")]);
    assert_eq!((p.summary.create, p.summary.quarantined), (0, 0));
    match &p.actions[0] {
        Action::Restore {
            server_id, devices, ..
        } => {
            assert_eq!(server_id.0, 5);
            assert_eq!(devices, &[DeviceId("d5".into())]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_spec_re_added_with_another_subscription_is_created_and_the_quarantined_server_runs_its_course()
{
    let servers = vec![quarantined(5, "back", "sub_old", NOW - HOUR)];
    let fleet = fleet("", &[("back", "sub_new")]);
    let p = planned(&fleet, servers.clone(), Vec::new(), &at(Some(NOW)));
    assert_eq!(kinds(&p), [("create", "back")]);
    assert!(
        p.notes
            .iter()
            .any(|n| matches!(n, Note::Quarantined { server_id, .. } if server_id.0 == 5)),
        "{:?}",
        p.notes
    );
    let mut created = current(9, &fleet, "back");
    created.created = "2026-11-24T11:00:00Z".to_owned();
    let later = planned(
        &fleet,
        vec![servers[0].clone(), created],
        Vec::new(),
        &at(Some(NOW + 24 * HOUR)),
    );
    assert_eq!(kinds(&later), [("delete", "back")]);
    assert!(matches!(later.actions[0], Action::Delete { server_id, .. } if server_id.0 == 5));
}

#[test]
fn a_mass_removal_quarantines_within_the_disruption_budget_and_deletes_nothing() {
    let servers: Vec<Server> = (1..=10)
        .map(|i| server(i, &format!("a{i:02}"), &format!("sub_{i}")))
        .collect();
    let ctx = Context {
        previous_agents: Some(10),
        allow_shrink: true,
        ..at(Some(NOW))
    };
    let default = planned(&fleet("", &[]), servers.clone(), Vec::new(), &ctx);
    assert_eq!(default.summary.delete, 0);
    assert_eq!(default.summary.quarantine, 1, "10% of 10 servers per pass");
    let permissive = planned(
        &fleet(
            "maxDeletionPercent: 100, maxDisruptionPercent: 100, maxDisruptionsPerRun: 100",
            &[],
        ),
        servers,
        Vec::new(),
        &ctx,
    );
    assert!(permissive.accepted(), "{permissive:?}");
    assert_eq!(
        (permissive.summary.delete, permissive.summary.quarantine),
        (0, 10)
    );
}

#[test]
fn without_a_baseline_a_quarantine_is_refused_unless_the_shrink_is_confirmed() {
    let fleet = fleet("", &[]);
    let servers = vec![server(1, "gone", "sub_gone")];
    let blind = Context {
        previous_agents: None,
        ..at(Some(NOW))
    };
    let observed = Observed {
        servers,
        devices: Vec::new(),
        prices: BTreeMap::new(),
        ..Observed::default()
    };
    let refused = plan(&fleet, &observed, &blind);
    assert_eq!(kinds(&refused), [("quarantine", "gone")]);
    let refusal = refused.refusal.expect("refused");
    assert!(
        refusal.reasons[0].contains("quarantines 1 server(s)"),
        "{refusal:?}"
    );
    assert!(
        refusal
            .how_to_proceed
            .starts_with("the baseline is the status branch `tether/status`")
            && refusal.how_to_proceed.contains("--git <repo>"),
        "the advice is to read the status branch first: {}",
        refusal.how_to_proceed
    );
    let confirmed = Context {
        allow_shrink: true,
        ..blind
    };
    assert!(plan(&fleet, &observed, &confirmed).accepted());
}
