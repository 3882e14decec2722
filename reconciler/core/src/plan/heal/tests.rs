//! The planner's self-healing rules, one at a time, on small fleets built in code: a server
//! created at 10:00 and a pass at 10:20 unless a test says otherwise.

use super::{Record, Remedy};
use crate::compute::{Server, ServerId, ServerStatus};
use crate::plan::{Action, Context, Note, Observed, Plan, plan};
use crate::tailnet::{Device, DeviceId};
use tether_schema::{Content, Fleet, SourceFile, labels, load_fleet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const CREATED: &str = "2026-11-20T10:00:00Z";

fn t(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).expect("time")
}

/// A fleet named `h` with `heal` as its `spec.policy.heal` and the given agents.
fn fleet(heal: &str, agents: &[&str]) -> Fleet {
    let mut files = vec![SourceFile {
        path: "fleet.yaml".into(),
        content: Content::Bytes(
            format!("apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: h}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  policy: {{maxDisruptionPercent: 100, heal: {{{heal}}}}}\n  catalog: {{serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}}\n").into_bytes(),
        ),
    }];
    for name in agents {
        files.push(SourceFile {
            path: format!("agents/{name}.yaml"),
            content: Content::Bytes(
                format!("apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {name}}}\nspec:\n  subscription: sub_{name}\n  runtime: {{version: \"1.0.0\"}}\n").into_bytes(),
            ),
        });
    }
    load_fleet(&files).expect("valid test fleet")
}

/// The agent's running server, as its spec wants it.
fn server(id: u64, fleet: &Fleet, agent: &str) -> Server {
    let spec = fleet
        .agents
        .iter()
        .find(|(n, _)| n.as_str() == agent)
        .map(|(_, a)| a)
        .expect("agent in fleet");
    Server {
        id: ServerId(id),
        name: agent.to_owned(),
        status: ServerStatus::Running,
        server_type: "cpx21".to_owned(),
        location: "fsn1".to_owned(),
        image: Some("ubuntu-24.04".to_owned()),
        labels: labels::server_labels(spec, &fleet.settings),
        ipv4: None,
        ipv6: None,
        created: CREATED.to_owned(),
        delete_protected: false,
        rebuild_protected: false,
        disk_gb: None,
        project: None,
    }
}

/// A device of `agent` that joined after its server; offline since `last_seen` when given.
fn device(id: &str, agent: &str, last_seen: Option<&str>) -> Device {
    Device {
        id: DeviceId(id.to_owned()),
        legacy_id: String::new(),
        name: format!("{agent}.tail1234.ts.net"),
        hostname: agent.to_owned(),
        addresses: Vec::new(),
        user: "tagged-devices".to_owned(),
        tags: vec!["tag:agent".to_owned()],
        authorized: true,
        online: last_seen.is_none(),
        last_seen: last_seen.map(str::to_owned),
        created: "2026-11-20T10:01:00Z".to_owned(),
        expires: None,
        ephemeral: false,
        external: false,
        os: "linux".to_owned(),
        client_version: "1.80.3".to_owned(),
        enabled_routes: None,
    }
}

fn ctx(now: &str, heal: &[(&str, Record)]) -> Context {
    Context {
        previous_agents: Some(1),
        recent_deletions: Some(0),
        now: Some(t(now)),
        heal: heal
            .iter()
            .map(|(a, r)| ((*a).to_owned(), r.clone()))
            .collect(),
        ..Context::default()
    }
}

fn planned(fleet: &Fleet, servers: Vec<Server>, devices: Vec<Device>, ctx: &Context) -> Plan {
    let observed = Observed {
        servers,
        devices,
        ..Observed::default()
    };
    plan(fleet, &observed, ctx)
}

fn seen(observations: u32) -> Record {
    Record {
        observations,
        ..Record::default()
    }
}

fn heals(plan: &Plan) -> Vec<(String, Remedy, u32, String)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Heal {
                agent,
                remedy,
                attempt,
                reason,
                ..
            } => Some((agent.clone(), *remedy, *attempt, reason.clone())),
            _ => None,
        })
        .collect()
}

fn healing_notes(plan: &Plan) -> Vec<(String, bool)> {
    plan.notes
        .iter()
        .filter_map(|n| match n {
            Note::Healing {
                message, failed, ..
            } => Some((message.clone(), *failed)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_server_that_never_enrolled_past_its_deadline_is_rekeyed_once_corroborated() {
    let f = fleet("observations: 3", &["a"]);
    let plan = planned(
        &f,
        vec![server(1, &f, "a")],
        Vec::new(),
        &ctx("2026-11-20T10:20:00Z", &[("a", seen(2))]),
    );
    assert_eq!(
        heals(&plan),
        [(
            "a".to_owned(),
            Remedy::Rekey,
            1,
            "rekey 1/3: never enrolled 20m after creation".to_owned()
        )]
    );
    assert_eq!(plan.heal["a"].observations, 3);
    assert_eq!(plan.summary.heal, 1);
    let text = crate::plan::render::text::render(&plan, false);
    assert!(
        text.contains("HEAL server a (id 1): rekey 1/3: never enrolled 20m after creation"),
        "{text}"
    );
}

#[test]
fn a_single_observation_is_counted_but_takes_no_remedy() {
    let f = fleet("", &["a"]);
    let plan = planned(
        &f,
        vec![server(1, &f, "a")],
        Vec::new(),
        &ctx("2026-11-20T10:20:00Z", &[]),
    );
    assert!(heals(&plan).is_empty());
    assert_eq!(plan.heal["a"], seen(1));
    assert_eq!(
        healing_notes(&plan),
        [(
            "never enrolled 20m after creation; seen 1/3 time(s) before a remedy".to_owned(),
            false
        )]
    );
}

#[test]
fn a_server_inside_its_enrolment_deadline_is_left_to_boot() {
    let f = fleet("", &["a"]);
    let plan = planned(
        &f,
        vec![server(1, &f, "a")],
        Vec::new(),
        &ctx("2026-11-20T10:10:00Z", &[("a", seen(2))]),
    );
    assert!(heals(&plan).is_empty());
    assert!(
        plan.heal.is_empty(),
        "the count starts over: {:?}",
        plan.heal
    );
}

#[test]
fn an_empty_device_listing_while_devices_are_recorded_holds_every_remedy() {
    let f = fleet("", &["a", "b"]);
    let mut c = ctx("2026-11-20T10:20:00Z", &[("a", seen(2))]);
    c.owned_devices = [(DeviceId("n1".into()), "b".to_owned())].into();
    let plan = planned(
        &f,
        vec![server(1, &f, "a"), server(2, &f, "b")],
        Vec::new(),
        &c,
    );
    assert!(heals(&plan).is_empty(), "{:?}", plan.actions);
    assert!(
        plan.notes
            .iter()
            .any(|n| matches!(n, Note::HealHeld { reason } if reason.contains("listing is empty"))),
        "{:?}",
        plan.notes
    );
    assert_eq!(plan.heal["a"], seen(2), "a held pass advances no counter");
}

#[test]
fn a_listing_missing_a_recorded_device_of_a_running_server_holds_every_remedy() {
    let f = fleet("", &["a", "b"]);
    let mut c = ctx("2026-11-20T10:20:00Z", &[("a", seen(2))]);
    c.owned_devices = [(DeviceId("n2".into()), "b".to_owned())].into();
    let other = Device {
        hostname: "laptop".into(),
        tags: Vec::new(),
        ..device("n9", "laptop", None)
    };
    let plan = planned(
        &f,
        vec![server(1, &f, "a"), server(2, &f, "b")],
        vec![other],
        &c,
    );
    assert!(heals(&plan).is_empty());
    assert!(plan.notes.iter().any(
        |n| matches!(n, Note::HealHeld { reason } if reason.contains("device n2 of agent b"))
    ));
    assert_eq!(plan.heal["a"], seen(2));
}

#[test]
fn a_device_offline_past_the_threshold_is_power_cycled_then_replaced() {
    let f = fleet("observations: 2, backoff: 5m", &["a"]);
    let offline = || vec![device("n1", "a", Some("2026-11-20T10:05:00Z"))];
    let plan = planned(
        &f,
        vec![server(1, &f, "a")],
        offline(),
        &ctx("2026-11-20T10:20:00Z", &[("a", seen(1))]),
    );
    assert_eq!(
        heals(&plan),
        [(
            "a".to_owned(),
            Remedy::PowerCycle,
            1,
            "power cycle 1/3: device offline, last seen 15m ago".to_owned()
        )]
    );
    let after_one = Record {
        observations: 1,
        attempts: 1,
        last_attempt: Some("2026-11-20T10:20:00Z".into()),
        last_remedy: Some(Remedy::PowerCycle),
        failed: None,
    };
    let plan = planned(
        &f,
        vec![server(1, &f, "a")],
        offline(),
        &ctx("2026-11-20T10:30:00Z", &[("a", after_one)]),
    );
    let healed = heals(&plan);
    assert_eq!((healed[0].1, healed[0].2), (Remedy::Replace, 2));
    assert!(
        matches!(&plan.actions[0], Action::Heal { old_devices, .. } if old_devices == &[DeviceId("n1".into())])
    );
}

#[test]
fn a_device_seen_recently_or_online_is_not_offline() {
    let f = fleet("observations: 1", &["a"]);
    let recent = planned(
        &f,
        vec![server(1, &f, "a")],
        vec![device("n1", "a", Some("2026-11-20T10:15:00Z"))],
        &ctx("2026-11-20T10:20:00Z", &[]),
    );
    assert!(heals(&recent).is_empty());
    let online = planned(
        &f,
        vec![server(1, &f, "a")],
        vec![device("n1", "a", None)],
        &ctx("2026-11-20T10:20:00Z", &[("a", seen(5))]),
    );
    assert!(heals(&online).is_empty());
    assert!(online.heal.is_empty(), "a healthy agent's record is reset");
}

#[test]
fn the_next_attempt_waits_for_a_doubling_backoff() {
    let f = fleet(
        "observations: 1, backoff: 5m, enrolmentDeadline: 1m",
        &["a"],
    );
    let record = |attempts: u32, last: &str| Record {
        observations: 0,
        attempts,
        last_attempt: Some(last.into()),
        last_remedy: Some(Remedy::Rekey),
        failed: None,
    };
    // Two attempts: the third waits 10 minutes after the second.
    let waiting = planned(
        &f,
        vec![server(1, &f, "a")],
        Vec::new(),
        &ctx(
            "2026-11-21T10:08:00Z",
            &[("a", record(2, "2026-11-21T10:00:00Z"))],
        ),
    );
    assert!(heals(&waiting).is_empty(), "{:?}", waiting.actions);
    let notes = healing_notes(&waiting);
    assert!(
        notes[0]
            .0
            .contains("attempt 3/3 waits for its backoff until 2026-11-21T10:10:00Z"),
        "{notes:?}"
    );
    let due = planned(
        &f,
        vec![server(1, &f, "a")],
        Vec::new(),
        &ctx(
            "2026-11-21T10:11:00Z",
            &[("a", record(2, "2026-11-21T10:00:00Z"))],
        ),
    );
    let healed = heals(&due);
    assert_eq!((healed[0].1, healed[0].2), (Remedy::Replace, 3));
    assert!(
        healed[0]
            .3
            .starts_with("replace 3/3: never enrolled 11m after the last remedy")
    );
}

#[test]
fn when_the_attempts_are_used_up_the_agent_is_failed_and_nothing_is_done() {
    let f = fleet("observations: 1, maxAttempts: 2", &["a"]);
    let used_up = Record {
        observations: 0,
        attempts: 2,
        last_attempt: Some("2026-11-19T10:00:00Z".into()),
        last_remedy: Some(Remedy::Replace),
        failed: None,
    };
    let plan = planned(
        &f,
        vec![server(1, &f, "a")],
        Vec::new(),
        &ctx("2026-11-20T10:20:00Z", &[("a", used_up)]),
    );
    assert!(heals(&plan).is_empty());
    let failed = plan.heal["a"].failed.clone().expect("failed");
    assert!(
        failed
            .starts_with("self-healing gave up after 2 attempt(s) (last: replace): never enrolled"),
        "{failed}"
    );
    // The next pass: still failed, still nothing.
    let again = planned(
        &f,
        vec![server(1, &f, "a")],
        Vec::new(),
        &ctx("2026-11-20T11:20:00Z", &[("a", plan.heal["a"].clone())]),
    );
    assert!(again.actions.is_empty());
    assert_eq!(healing_notes(&again), [(failed, true)]);
}

#[test]
fn remedies_spend_the_disruption_budget() {
    let f = fleet("observations: 1", &["a", "b"]);
    let mut policy = f.clone();
    policy.settings.policy.max_disruptions_per_run = 1;
    let plan = planned(
        &policy,
        vec![server(1, &f, "a"), server(2, &f, "b")],
        Vec::new(),
        &ctx("2026-11-20T10:20:00Z", &[]),
    );
    assert_eq!(heals(&plan).len(), 1);
    assert!(plan.notes.iter().any(
        |n| matches!(n, Note::Deferred { agent, action, .. } if agent == "b" && action == "heal")
    ));
}

#[test]
fn protected_servers_are_never_rekeyed_and_heal_can_be_turned_off() {
    let f = fleet("observations: 1", &["a"]);
    let mut protected = server(1, &f, "a");
    protected.delete_protected = true;
    let plan = planned(
        &f,
        vec![protected],
        Vec::new(),
        &ctx("2026-11-20T10:20:00Z", &[]),
    );
    assert!(heals(&plan).is_empty());
    assert!(healing_notes(&plan)[0].0.contains("protected"));
    let off = fleet("enabled: false", &["a"]);
    let plan = planned(
        &off,
        vec![server(1, &off, "a")],
        Vec::new(),
        &ctx("2026-11-20T10:20:00Z", &[("a", seen(9))]),
    );
    assert!(plan.actions.is_empty() && plan.heal.is_empty());
}

#[test]
fn a_rebuild_protected_server_is_not_rekeyed_since_hetzner_would_refuse_the_rebuild() {
    let f = fleet("observations: 1", &["a"]);
    let mut locked = server(1, &f, "a");
    locked.rebuild_protected = true;
    let plan = planned(
        &f,
        vec![locked],
        Vec::new(),
        &ctx("2026-11-20T10:20:00Z", &[]),
    );
    assert!(heals(&plan).is_empty(), "{:?}", heals(&plan));
    assert!(healing_notes(&plan)[0].0.contains("protected"));
}

/// `server` with `attempt` of `remedy` recorded on it at `at` (unix seconds), as the executor
/// writes it before acting.
fn journaled(mut server: Server, attempt: u32, remedy: Remedy, at: &str) -> Server {
    let started = super::journal::Journal {
        attempt,
        remedy,
        at: t(at),
    };
    server.labels = started.stamp(&server.labels);
    server
}

#[test]
fn attempts_recorded_on_the_agents_servers_count_though_no_status_commit_recorded_them() {
    let f = fleet(
        "observations: 1, maxAttempts: 3, rekeys: 0, backoff: 1s",
        &["a"],
    );
    // Two replacements were killed before their status commits: each left its journal on the
    // server it retired. The status branch knows nothing of either.
    let mut first = journaled(
        server(1, &f, "a"),
        1,
        Remedy::Replace,
        "2026-11-20T10:20:00Z",
    );
    first.name = labels::retired_name("a", 1);
    first.labels.insert(labels::RETIRED.into(), "true".into());
    let mut second = journaled(
        server(2, &f, "a"),
        2,
        Remedy::Replace,
        "2026-11-20T10:40:00Z",
    );
    second.name = labels::retired_name("a", 2);
    second.labels.insert(labels::RETIRED.into(), "true".into());
    let mut current = server(3, &f, "a");
    current.created = "2026-11-20T10:41:00Z".into();
    let plan = planned(
        &f,
        vec![first.clone(), second.clone(), current.clone()],
        Vec::new(),
        &ctx("2026-11-20T11:20:00Z", &[]),
    );
    assert_eq!(
        heals(&plan)
            .into_iter()
            .map(|(_, r, n, _)| (r, n))
            .collect::<Vec<_>>(),
        [(Remedy::Replace, 3)],
        "the third attempt, not the first again"
    );
    // The third was killed as well: its journal on the (now retired) third server ends it.
    let mut third = journaled(current, 3, Remedy::Replace, "2026-11-20T11:20:00Z");
    third.name = labels::retired_name("a", 3);
    third.labels.insert(labels::RETIRED.into(), "true".into());
    let mut fourth = server(4, &f, "a");
    fourth.created = "2026-11-20T11:21:00Z".into();
    let plan = planned(
        &f,
        vec![first, second, third, fourth],
        Vec::new(),
        &ctx("2026-11-20T12:20:00Z", &[]),
    );
    assert!(heals(&plan).is_empty(), "{:?}", plan.actions);
    assert!(
        plan.heal["a"]
            .failed
            .as_deref()
            .is_some_and(|f| f.starts_with("self-healing gave up after 3 attempt(s)")),
        "{:?}",
        plan.heal
    );
}

#[test]
fn a_replacement_killed_before_its_create_keeps_its_attempt_while_the_create_is_planned() {
    let f = fleet("observations: 1, rekeys: 0", &["a"]);
    let mut retired = journaled(
        server(1, &f, "a"),
        1,
        Remedy::Replace,
        "2026-11-20T10:20:00Z",
    );
    retired.name = labels::retired_name("a", 1);
    retired.labels.insert(labels::RETIRED.into(), "true".into());
    let plan = planned(
        &f,
        vec![retired],
        Vec::new(),
        &ctx("2026-11-20T10:21:00Z", &[]),
    );
    let creates = plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Create { .. }))
        .count();
    assert_eq!(creates, 1, "{:?}", plan.actions);
    assert!(heals(&plan).is_empty());
    assert_eq!(
        plan.heal["a"].attempts, 1,
        "the attempt is carried to the status branch"
    );
}

#[test]
fn an_attempt_whose_device_came_back_is_history_for_the_next_problem() {
    let f = fleet("observations: 1, offlineThreshold: 60s", &["a"]);
    // Power-cycled at 10:10, back online after it, offline again since 10:15.
    let cycled = journaled(
        server(1, &f, "a"),
        1,
        Remedy::PowerCycle,
        "2026-11-20T10:10:00Z",
    );
    let plan = planned(
        &f,
        vec![cycled],
        vec![device("n1", "a", Some("2026-11-20T10:15:00Z"))],
        &ctx("2026-11-20T10:20:00Z", &[]),
    );
    assert_eq!(
        heals(&plan)
            .into_iter()
            .map(|(_, r, n, _)| (r, n))
            .collect::<Vec<_>>(),
        [(Remedy::PowerCycle, 1)]
    );
}
