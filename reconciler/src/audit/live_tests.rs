//! Tests of `tether status`'s lease, cost, device and disagreement lines, from status
//! documents shaped as [`super::super::status::to_yaml`] writes them and a hand-made inventory.

use super::*;
use crate::audit::overview::{Filter, FleetOverview};
use crate::audit::status::{AgentStatus, DeviceStatusDoc, Phase, ServerStatusDoc, to_yaml};
use crate::cloud::ServerStatus;

const NOW: &str = "2026-11-29T12:00:00Z";

fn doc(name: &str, id: u64, status: ServerStatus, online: bool) -> (String, String) {
    let a = AgentStatus {
        agent: name.to_owned(),
        phase: Phase::Ready,
        spec_revision: Some("4f1c2e9".to_owned()),
        server: Some(ServerStatusDoc {
            id,
            status,
            server_type: "cpx21".to_owned(),
            location: "fsn1".to_owned(),
            public_ips: vec![format!("203.0.113.{id}")],
        }),
        device: Some(DeviceStatusDoc {
            id: format!("n{id}"),
            tailnet_ips: vec![format!("100.64.0.{id}")],
            online,
        }),
        quarantine: None,
        last_transition_time: NOW.to_owned(),
        last_error: None,
        last_error_kind: None,
    };
    (format!("{name}.yaml"), to_yaml(&a))
}

fn files() -> BTreeMap<String, String> {
    [
        doc("acme-prod", 11, ServerStatus::Running, true),
        doc("acme-research", 12, ServerStatus::Running, true),
        doc("globex-ops", 13, ServerStatus::Running, true),
        doc("globex-sales", 14, ServerStatus::Running, true),
        (
            "fleet.yaml".to_owned(),
            format!("fleet: aura-prod\nrevision: 4f1c2e9\nlastReconcile: \"{NOW}\"\nplanHash: 9b8a7c6d\nrun: r-1\n"),
        ),
    ]
    .into_iter()
    .collect()
}

fn server(agent: &str, id: u64, status: &str, server_type: &str) -> LiveServer {
    LiveServer {
        agent: agent.to_owned(),
        id,
        status: status.to_owned(),
        server_type: server_type.to_owned(),
        location: "fsn1".to_owned(),
    }
}

fn device(agent: &str, online: bool, last_seen: Option<&str>) -> LiveDevice {
    LiveDevice {
        agent: agent.to_owned(),
        online,
        last_seen: last_seen.map(str::to_owned),
    }
}

/// acme-prod's server was deleted by hand, acme-research's replaced, globex-ops is off and
/// its device offline, and a server for an agent the status branch does not know runs.
fn drifted() -> Live {
    Live {
        servers: vec![
            server("acme-research", 22, "running", "cpx21"),
            server("globex-ops", 13, "off", "cpx21"),
            server("globex-sales", 14, "running", "cpx31"),
            server("stray", 99, "running", "cx99"),
        ],
        devices: vec![
            device("acme-research", true, None),
            device("globex-ops", false, Some("2026-11-29T11:40:00Z")),
            device("globex-sales", true, None),
        ],
        prices: [
            (("cpx21".to_owned(), "fsn1".to_owned()), Euros(86_900)),
            (("cpx31".to_owned(), "fsn1".to_owned()), Euros(163_900)),
        ]
        .into_iter()
        .collect(),
    }
}

fn lease() -> LeaseView {
    LeaseView {
        holder: "host-a/4711/9f3c".to_owned(),
        expires_at: "2026-11-29T12:02:00Z".to_owned(),
        live: true,
        released: false,
    }
}

fn render(extras: &Extras, overview: &FleetOverview) -> String {
    let mut out = overview.render_with(&extras.lines(), &|_, t| t.to_owned());
    out.push_str(&extras.section());
    out
}

#[test]
fn a_drifted_fleet_shows_its_lease_cost_devices_and_every_disagreement() {
    let files = files();
    let overview = FleetOverview::from_files(&files, None, &Filter::default());
    let extras = Extras::new(Some(lease()), Some(&drifted()), &overview.agents, &files);
    let kinds: Vec<(&str, &str)> = extras
        .disagreements
        .iter()
        .flatten()
        .map(|d| (d.agent.as_str(), d.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("acme-prod", "serverMissing"),
            ("acme-research", "serverReplaced"),
            ("globex-ops", "deviceOffline"),
            ("globex-ops", "statusDiffers"),
            ("stray", "serverExtra"),
        ]
    );
    let json = serde_json::to_string_pretty(&extras).expect("serializes");
    insta::assert_snapshot!(format!(
        "{}--- json ---\n{json}",
        render(&extras, &overview)
    ));
}

#[test]
fn a_fleet_that_agrees_with_the_live_state_says_so_and_without_live_shows_only_the_lease() {
    let files = files();
    let overview = FleetOverview::from_files(&files, None, &Filter::default());
    let agreeing = Live {
        servers: (11..=14)
            .zip(["acme-prod", "acme-research", "globex-ops", "globex-sales"])
            .map(|(id, a)| server(a, id, "running", "cpx21"))
            .collect(),
        devices: ["acme-prod", "acme-research", "globex-ops", "globex-sales"]
            .map(|a| device(a, true, None))
            .to_vec(),
        prices: drifted().prices,
    };
    let extras = Extras::new(None, Some(&agreeing), &overview.agents, &files);
    assert_eq!(extras.disagreements, Some(Vec::new()));
    let offline = Extras::new(Some(lease()), None, &overview.agents, &files);
    assert_eq!(offline.section(), "");
    insta::assert_snapshot!(format!(
        "{}=== without --live ===\n{}",
        render(&extras, &overview),
        render(&offline, &overview)
    ));
}

#[test]
fn a_filter_keeps_only_the_shown_agents_disagreements() {
    let files = files();
    let overview = FleetOverview::from_files(&files, None, &Filter::default());
    let keep: BTreeSet<&str> = ["globex-ops"].into_iter().collect();
    let extras = Extras::new(None, Some(&drifted()), &overview.agents, &files).narrowed(&keep);
    assert!(
        extras
            .disagreements
            .iter()
            .flatten()
            .all(|d| d.agent == "globex-ops")
    );
    assert_eq!(extras.devices.map(|d| d.len()), Some(1));
}
