//! Each end-of-pass invariant holding and broken, on a small fleet built in code.

use super::*;
use crate::audit::status::{DeviceStatusDoc, ServerStatusDoc};
use crate::cloud::Server;
use crate::cloud::tailscale::Device;
use tether_schema::{Content, SourceFile, load_fleet};

/// 2026-11-30T18:00:00Z.
const NOW: i64 = 1_796_061_600;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).expect("time")
}

/// Fleet `inv` with agents `a` (power on) and `b` (power off).
fn fleet() -> Fleet {
    let agent = |name: &str, power: &str| {
        SourceFile {
        path: format!("agents/{name}.yaml"),
        content: Content::Bytes(
            format!("apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {name}}}\nspec:\n  subscription: sub_{name}\n  power: {power}\n  runtime: {{version: \"1.0.0\"}}\n").into_bytes(),
        ),
    }
    };
    let files = vec![
        SourceFile {
            path: "fleet.yaml".into(),
            content: Content::Bytes(
                "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: inv}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  policy: {prune: true, quarantineGrace: 24h}\n  catalog: {serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}\n".as_bytes().to_vec(),
            ),
        },
        agent("a", "on"),
        agent("b", "off"),
    ];
    load_fleet(&files).expect("valid test fleet")
}

fn server(id: u64, agent: &str, status: ServerStatus) -> Server {
    Server {
        id: ServerId(id),
        name: agent.to_owned(),
        status,
        server_type: "cpx21".to_owned(),
        location: "fsn1".to_owned(),
        image: Some("ubuntu-24.04".to_owned()),
        labels: [
            (labels::FLEET, "inv"),
            (labels::AGENT, agent),
            (labels::SUBSCRIPTION, &format!("sub_{agent}")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        ipv4: None,
        ipv6: None,
        created: "2026-11-20T10:00:00Z".to_owned(),
        delete_protected: false,
        rebuild_protected: false,
        disk_gb: Some(80),
        project: None,
    }
}

fn device(id: &str, agent: &str, online: bool, authorized: bool) -> Device {
    Device {
        id: DeviceId(id.to_owned()),
        legacy_id: String::new(),
        name: format!("{agent}.tail1234.ts.net"),
        hostname: agent.to_owned(),
        addresses: Vec::new(),
        user: "tagged-devices".to_owned(),
        tags: vec!["tag:agent".to_owned()],
        authorized,
        online,
        last_seen: None,
        created: "2026-11-20T10:05:00Z".to_owned(),
        expires: None,
        ephemeral: false,
        external: false,
        os: "linux".to_owned(),
        client_version: "1.78.1".to_owned(),
        enabled_routes: None,
    }
}

fn ready(agent: &str, id: u64, status: ServerStatus) -> AgentStatus {
    AgentStatus {
        agent: agent.to_owned(),
        phase: Phase::Ready,
        spec_revision: None,
        server: Some(ServerStatusDoc {
            id,
            status,
            server_type: "cpx21".to_owned(),
            location: "fsn1".to_owned(),
            public_ips: Vec::new(),
        }),
        device: Some(DeviceStatusDoc {
            id: format!("n{id}"),
            tailnet_ips: Vec::new(),
            online: true,
        }),
        quarantine: None,
        last_transition_time: String::new(),
        last_error: None,
        last_error_kind: None,
    }
}

fn key(fleet: &Fleet, id: &str, agent: &str, created: &str, invalid: bool) -> AuthKey {
    AuthKey {
        id: AuthKeyId(id.to_owned()),
        description: FleetMarker::of(&fleet.settings.name).description("n0nce0000001", agent),
        created: created.to_owned(),
        expires: "2026-11-30T19:00:00Z".to_owned(),
        reusable: false,
        ephemeral: false,
        preauthorized: true,
        tags: vec!["tag:agent".to_owned()],
        invalid,
        revoked: None,
    }
}

/// `a` runs with its device online and authorized, `b` is off as its spec says.
struct Case {
    fleet: Fleet,
    observed: Observed,
    agents: Vec<AgentStatus>,
    owned: BTreeMap<DeviceId, String>,
    keys: Vec<AuthKey>,
    pending: Vec<Pending>,
}

impl Case {
    fn healthy() -> Case {
        Case {
            fleet: fleet(),
            observed: Observed {
                servers: vec![
                    server(1, "a", ServerStatus::Running),
                    server(2, "b", ServerStatus::Off),
                ],
                devices: vec![device("n1", "a", true, true)],
                ..Observed::default()
            },
            agents: vec![
                ready("a", 1, ServerStatus::Running),
                ready("b", 2, ServerStatus::Off),
            ],
            owned: [(DeviceId("n1".into()), "a".to_owned())].into(),
            keys: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn check(&self) -> Vec<Breach> {
        check(&Facts {
            fleet: &self.fleet,
            observed: &self.observed,
            agents: &self.agents,
            owned: &self.owned,
            keys: Some(&self.keys),
            pending: &self.pending,
            now: now(),
        })
    }
}

#[test]
fn a_converged_fleet_breaks_no_invariant() {
    assert_eq!(Case::healthy().check(), []);
}

#[test]
fn a_server_off_against_its_spec_breaks_the_power_invariant_and_one_off_by_spec_does_not() {
    let mut case = Case::healthy();
    case.observed.servers[0].status = ServerStatus::Off;
    let breaches = case.check();
    assert_eq!(
        breaches,
        [Breach::ServerOff {
            agent: "a".into(),
            server: ServerId(1)
        }]
    );
    assert_eq!(breaches[0].invariant(), Invariant::ServerOff);
    assert!(
        breaches[0].to_string().contains("server 1 is off"),
        "{}",
        breaches[0]
    );
}

#[test]
fn a_quarantined_server_that_is_off_breaks_no_invariant() {
    let mut case = Case::healthy();
    let mut held = server(3, "gone", ServerStatus::Off);
    held.name = labels::quarantined_name("gone", 3);
    held.labels
        .insert(labels::QUARANTINED_AT.to_owned(), (NOW - 3600).to_string());
    case.observed.servers.push(held);
    case.pending = pending_in_inventory(&case.fleet, &case.observed, now());
    assert_eq!(case.check(), []);
}

#[test]
fn a_ready_agent_whose_device_is_deauthorized_breaks_the_device_invariant() {
    let mut case = Case::healthy();
    case.observed.devices[0].authorized = false;
    assert_eq!(
        case.check(),
        [Breach::ReadyWithoutDevice {
            agent: "a".into(),
            unauthorized: Some(DeviceId("n1".into()))
        }]
    );
}

#[test]
fn a_ready_agent_without_a_device_breaks_the_device_invariant() {
    let mut case = Case::healthy();
    case.observed.devices.clear();
    case.owned.clear();
    let breaches = case.check();
    assert_eq!(
        breaches,
        [Breach::ReadyWithoutDevice {
            agent: "a".into(),
            unauthorized: None
        }]
    );
    assert_eq!(breaches[0].invariant(), Invariant::ReadyDevice);
}

#[test]
fn an_operation_past_its_deadline_breaks_the_pending_invariant_and_one_within_does_not() {
    let mut case = Case::healthy();
    let at = |offset: i64| OffsetDateTime::from_unix_timestamp(NOW + offset).expect("time");
    case.pending = vec![
        Pending {
            agent: "a".into(),
            operation: "resizing to cpx31".into(),
            deadline: at(60),
        },
        Pending {
            agent: "b".into(),
            operation: "rebuilding".into(),
            deadline: at(-60),
        },
    ];
    let breaches = case.check();
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(breaches[0].agent(), Some("b"));
    assert_eq!(breaches[0].invariant(), Invariant::Overdue);
    assert!(
        breaches[0]
            .to_string()
            .contains("rebuilding is still pending, due by 2026-11-30T17:59:00Z"),
        "{}",
        breaches[0]
    );
}

#[test]
fn a_quarantine_past_its_grace_and_a_deletion_window_is_overdue_and_a_retired_server_is_too() {
    let mut case = Case::healthy();
    let mut held = server(3, "gone", ServerStatus::Off);
    held.name = labels::quarantined_name("gone", 3);
    // Quarantined 26 hours ago with a 24 h grace: due one deletion window after, an hour ago.
    held.labels.insert(
        labels::QUARANTINED_AT.to_owned(),
        (NOW - 26 * 3600).to_string(),
    );
    let mut retired = server(4, "a", ServerStatus::Running);
    retired.name = labels::retired_name("a", 4);
    retired
        .labels
        .insert(labels::RETIRED.to_owned(), "true".to_owned());
    case.observed.servers.extend([held, retired]);
    case.pending = pending_in_inventory(&case.fleet, &case.observed, now());
    let overdue: Vec<String> = case
        .check()
        .iter()
        .filter(|b| b.invariant() == Invariant::Overdue)
        .map(ToString::to_string)
        .collect();
    assert_eq!(overdue.len(), 2, "{overdue:?}");
    assert!(
        overdue[0].starts_with("gone: deleting quarantined server 3"),
        "{overdue:?}"
    );
    assert!(
        overdue[1].starts_with("a: replacing the server (retired server 4 is left)"),
        "{overdue:?}"
    );
}

#[test]
fn a_server_left_with_an_operation_label_is_an_operation_pending_past_its_pass() {
    let mut case = Case::healthy();
    case.observed.servers[0].labels.insert(
        labels::OPERATION.to_owned(),
        "resize.changing-type".to_owned(),
    );
    case.pending = pending_in_inventory(&case.fleet, &case.observed, now());
    let overdue: Vec<String> = case
        .check()
        .iter()
        .filter(|b| b.invariant() == Invariant::Overdue)
        .map(ToString::to_string)
        .collect();
    assert_eq!(overdue.len(), 1, "{overdue:?}");
    assert!(
        overdue[0].starts_with("a: resize of server 1 (stopped at step `changing-type`)"),
        "{overdue:?}"
    );
}

#[test]
fn a_protected_quarantined_server_is_never_overdue() {
    let mut case = Case::healthy();
    let mut held = server(3, "gone", ServerStatus::Off);
    held.name = labels::quarantined_name("gone", 3);
    held.labels.insert(
        labels::QUARANTINED_AT.to_owned(),
        (NOW - 30 * 86_400).to_string(),
    );
    held.labels
        .insert(labels::PROTECT.to_owned(), "true".to_owned());
    case.observed.servers.push(held);
    assert_eq!(pending_in_inventory(&case.fleet, &case.observed, now()), []);
}

#[test]
fn a_valid_key_of_the_fleet_that_no_server_awaits_breaks_the_key_invariant() {
    let mut case = Case::healthy();
    let fleet = case.fleet.clone();
    case.keys = vec![
        // Used (invalid now): fine.
        key(&fleet, "k-used", "a", "2026-11-30T17:50:00Z", true),
        // Valid, and `a` is online: it should have been revoked.
        key(&fleet, "k-live", "a", "2026-11-30T17:50:00Z", false),
    ];
    let breaches = case.check();
    assert_eq!(
        breaches,
        [Breach::LiveKey {
            key: AuthKeyId("k-live".into()),
            agent: Some("a".into())
        }]
    );
    assert_eq!(breaches[0].invariant(), Invariant::LiveKey);
}

#[test]
fn a_young_key_of_an_agent_still_enrolling_and_keys_of_others_break_no_invariant() {
    let mut case = Case::healthy();
    let fleet = case.fleet.clone();
    case.observed.devices.clear();
    case.owned.clear();
    case.agents[0].phase = Phase::Provisioning;
    let mut other = key(&fleet, "k-other", "a", "2026-11-30T17:58:00Z", false);
    other.description = "a person's key".to_owned();
    case.keys = vec![
        key(&fleet, "k-enrolling", "a", "2026-11-30T17:58:00Z", false),
        other,
    ];
    assert_eq!(case.check(), []);
}

#[test]
fn keys_that_could_not_be_listed_are_not_judged() {
    let mut case = Case::healthy();
    let fleet = case.fleet.clone();
    case.keys = vec![key(&fleet, "k-live", "a", "2026-11-30T17:50:00Z", false)];
    let breaches = check(&Facts {
        fleet: &case.fleet,
        observed: &case.observed,
        agents: &case.agents,
        owned: &case.owned,
        keys: None,
        pending: &case.pending,
        now: now(),
    });
    assert_eq!(breaches, []);
}
