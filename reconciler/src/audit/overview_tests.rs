//! Snapshot tests of `tether status`'s rendering, from status documents shaped as
//! [`super::super::status::to_yaml`] writes them.

use super::*;
use crate::audit::status::{AgentStatus, DeviceStatusDoc, QuarantineDoc, ServerStatusDoc, to_yaml};
use crate::cloud::ServerStatus;
use std::path::Path;

const REV: &str = "4f1c2e9a0b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e";
const NOW: &str = "2026-11-29T12:00:00Z";

fn example_fleet() -> Fleet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet");
    let snapshot = crate::source::dir::read(&dir).expect("example fleet");
    tether_schema::load_fleet(&snapshot.files).expect("valid example fleet")
}

fn agent(name: &str, phase: Phase, id: u64, online: Option<bool>) -> AgentStatus {
    AgentStatus {
        agent: name.to_owned(),
        phase,
        spec_revision: Some(REV.to_owned()),
        server: Some(ServerStatusDoc {
            id,
            status: ServerStatus::Running,
            server_type: "cpx21".to_owned(),
            location: "fsn1".to_owned(),
            public_ips: vec![format!("203.0.113.{}", id % 200), "2001:db8::1".to_owned()],
        }),
        device: online.map(|online| DeviceStatusDoc {
            id: format!("n{id}"),
            tailnet_ips: vec![format!("100.64.0.{}", id % 200)],
            online,
        }),
        quarantine: None,
        last_transition_time: NOW.to_owned(),
        last_error: None,
        last_error_kind: None,
    }
}

fn fleet_doc(
    phases: &[(&str, usize)],
    last_error: Option<&str>,
    deletions: usize,
) -> Vec<(String, String)> {
    let mut phases_yaml = String::new();
    for (p, n) in phases {
        phases_yaml.push_str(&format!("  {p}: {n}\n"));
    }
    let error = last_error
        .map(|e| format!("lastError: \"{e}\"\n"))
        .unwrap_or_default();
    let fleet = format!(
        "---\nfleet: example\nrevision: {REV}\nagents: 6\nphases:\n{phases_yaml}lastReconcile: \"{NOW}\"\nplanHash: 9b8a7c6d5e4f3a2b\nrun: r-20261129-1200\n{error}"
    );
    let mut list = String::from("---\ndeletions:");
    if deletions == 0 {
        list.push_str(" []\n");
    } else {
        list.push('\n');
        for i in 0..deletions {
            list.push_str(&format!(
                "  - at: \"{NOW}\"\n    agent: gone-{i}\n    serverId: {}\n",
                900 + i
            ));
        }
    }
    vec![
        ("fleet.yaml".to_owned(), fleet),
        ("deletions.yaml".to_owned(), list),
        ("devices.yaml".to_owned(), "---\ndevices: {}\n".to_owned()),
    ]
}

fn files(agents: &[AgentStatus], fleet: Vec<(String, String)>) -> BTreeMap<String, String> {
    let mut files: BTreeMap<String, String> = fleet.into_iter().collect();
    for a in agents {
        files.insert(format!("{}.yaml", a.agent), to_yaml(a));
    }
    files
}

fn healthy() -> Vec<AgentStatus> {
    vec![
        agent("acme-prod", Phase::Ready, 101, Some(true)),
        agent("acme-staging", Phase::Ready, 102, Some(true)),
        agent("globex-ops", Phase::Ready, 103, Some(true)),
    ]
}

fn both(files: &BTreeMap<String, String>, filter: &Filter) -> String {
    let now = time::OffsetDateTime::parse(NOW, &time::format_description::well_known::Rfc3339)
        .expect("NOW is RFC 3339")
        .unix_timestamp();
    let creates: Vec<String> = files
        .keys()
        .filter(|f| {
            ![
                "fleet.yaml",
                "deletions.yaml",
                "devices.yaml",
                "globex-sales.yaml",
            ]
            .contains(&f.as_str())
        })
        .map(|f| format!("create         {:<24} done", f.trim_end_matches(".yaml")))
        .collect();
    let commits = [
        (
            now - 600,
            vec![
                "update         acme-staging             done [server 102]",
                "create         globex-sales             FAILED: Hetzner 422 resource_unavailable",
            ],
        ),
        (
            now - 2 * 86_400 - 5400,
            creates.iter().map(String::as_str).collect(),
        ),
    ];
    let overview = FleetOverview::from_files(files, Some(&example_fleet()), filter)
        .with_activity(&activity(commits), now);
    let json = serde_json::to_string_pretty(&overview).expect("overview serializes");
    format!(
        "{}\n--- json ---\n{json}",
        overview.render(&|_, t| t.to_owned())
    )
}

#[test]
fn a_healthy_fleet_lists_every_agent_ready_with_its_server() {
    let files = files(&healthy(), fleet_doc(&[("Ready", 3)], None, 0));
    let out = both(&files, &Filter::default());
    assert!(out.contains("cus_acme") && out.contains("sub_1OaBcAcmeProd"));
    insta::assert_snapshot!(out);
}

#[test]
fn a_failed_create_shows_the_agent_failed_with_its_error_and_no_server() {
    let mut agents = healthy();
    agents.push(AgentStatus {
        server: None,
        device: None,
        last_error: Some(
            "create globex-sales: Hetzner 422 resource_unavailable: cpx21 sold out in fsn1"
                .to_owned(),
        ),
        ..agent("globex-sales", Phase::Failed, 0, None)
    });
    let files = files(
        &agents,
        fleet_doc(
            &[("Failed", 1), ("Ready", 3)],
            Some(
                "1 action(s) failed: create globex-sales: Hetzner 422 resource_unavailable: cpx21 sold out in fsn1",
            ),
            0,
        ),
    );
    insta::assert_snapshot!(both(&files, &Filter::default()));
}

#[test]
fn an_unhealthy_agent_is_degraded_with_its_device_offline() {
    let mut agents = healthy();
    agents[1] = agent("acme-staging", Phase::Degraded, 102, Some(false));
    let files = files(
        &agents,
        fleet_doc(&[("Degraded", 1), ("Ready", 2)], None, 1),
    );
    insta::assert_snapshot!(both(&files, &Filter::default()));
}

#[test]
fn hostile_text_on_the_status_branch_reaches_the_terminal_escaped() {
    let files = files(
        &healthy(),
        fleet_doc(
            &[("Ready", 3)],
            // YAML escapes: ESC, BEL, RIGHT-TO-LEFT OVERRIDE and a line break, as a hostile
            // VM's report could have them stored.
            Some(r"boom\e]0;pwned\a\e[2J\u202E\nlast pass: fine"),
            0,
        ),
    );
    let both = both(&files, &Filter::default());
    let text = both.split("\n{").next().unwrap_or_default();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text}"
    );
    assert!(
        text.contains("boom\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{202e}\\u{a}last pass: fine"),
        "{text}"
    );
}

#[test]
fn a_refused_plan_is_the_fleets_last_error_and_a_quarantined_agent_says_until_when() {
    let mut agents = healthy();
    agents.push(AgentStatus {
        quarantine: Some(QuarantineDoc {
            since: NOW.to_owned(),
            commit: Some("77aa55c".to_owned()),
            delete_after: "2026-12-06T12:00:00Z".to_owned(),
        }),
        device: None,
        ..agent("initech-old", Phase::Quarantined, 104, None)
    });
    let files = files(
        &agents,
        fleet_doc(
            &[("Quarantined", 1), ("Ready", 3)],
            Some(
                "plan 1a2b3c4 of revision 5d6e7f8 refused, nothing changed: would delete 4 of 6 agents (67%), above maxShrinkPercent 30",
            ),
            0,
        ),
    );
    insta::assert_snapshot!(both(&files, &Filter::default()));
}

#[test]
fn filters_narrow_the_rows_and_the_counts() {
    let mut agents = healthy();
    agents[2] = agent("globex-ops", Phase::Degraded, 103, Some(false));
    let files = files(
        &agents,
        fleet_doc(&[("Degraded", 1), ("Ready", 2)], None, 0),
    );
    let spec = example_fleet();
    let names = |filter: Filter| -> Vec<String> {
        FleetOverview::from_files(&files, Some(&spec), &filter)
            .agents
            .into_iter()
            .map(|a| a.agent)
            .collect()
    };
    let by_customer = Filter {
        customer: Some("cus_acme".to_owned()),
        ..Filter::default()
    };
    assert_eq!(names(by_customer), ["acme-prod", "acme-staging"]);
    let by_phase = Filter {
        phase: phase_named("degraded"),
        ..Filter::default()
    };
    assert_eq!(names(by_phase.clone()), ["globex-ops"]);
    let counts = FleetOverview::from_files(&files, Some(&spec), &by_phase).phases;
    assert_eq!(counts, BTreeMap::from([("Degraded".to_owned(), 1)]));
    let by_agent = Filter {
        agent: Some("acme-prod".to_owned()),
        ..Filter::default()
    };
    assert_eq!(names(by_agent), ["acme-prod"]);
}

#[test]
fn phase_names_are_the_documents_vocabulary_in_any_case() {
    assert_eq!(phase_named("READY"), Some(Phase::Ready));
    assert_eq!(phase_named("quarantined"), Some(Phase::Quarantined));
    assert_eq!(phase_named("running"), None);
}

#[test]
fn the_painter_colours_only_the_phase_cell() {
    let files = files(&healthy()[..1], fleet_doc(&[("Ready", 1)], None, 0));
    let out = FleetOverview::from_files(&files, None, &Filter::default())
        .render(&|p, t| format!("<{p}>{t}</>"));
    let row = out.lines().last().expect("a row");
    assert!(row.starts_with("acme-prod  -  "), "{row}");
    assert!(row.contains("<Ready>Ready  </>"), "{row}");
    assert!(!out.contains("deletions:"), "no spec, no budget: {out}");
}

#[test]
fn activity_takes_the_newest_action_and_the_newest_successful_create() {
    let day = 86_400;
    let commits = [
        (10 * day, vec!["update     acme-prod   FAILED: Hetzner 503"]),
        (9 * day, vec!["create     globex-ops  failed: sold out"]),
        (
            day,
            vec![
                "create     acme-prod   done [server 101]",
                "create globex-ops done",
            ],
        ),
    ];
    let activity = activity(commits);
    let files = files(&healthy(), fleet_doc(&[("Ready", 3)], None, 0));
    let view = FleetOverview::from_files(&files, None, &Filter::default())
        .with_activity(&activity, 10 * day + 3 * 3600);
    let prod = &view.agents[0];
    assert_eq!(prod.last_action.as_deref(), Some("update failed"));
    assert_eq!(prod.last_action_at.as_deref(), Some("1970-01-11T00:00:00Z"));
    assert_eq!(prod.age.as_deref(), Some("9d3h"));
    let ops = &view.agents[2];
    assert_eq!(ops.last_action.as_deref(), Some("create failed"));
    assert_eq!(
        ops.age.as_deref(),
        Some("9d3h"),
        "the failed create does not reset the age"
    );
    assert_eq!(view.agents[1].last_action, None);
}

#[test]
fn each_agent_shows_the_runtime_its_on_vm_agent_reports_and_runtime_yaml_is_no_agent() {
    let mut files = files(&healthy(), fleet_doc(&[("Ready", 3)], None, 0));
    files.insert(
        "runtime.yaml".to_owned(),
        "agents:\n  acme-prod:\n    desired: 1.5.0\n    running: 1.5.0\n    heartbeat: healthy\n  globex-ops:\n    desired: 1.5.0\n    running: 1.4.0\n    heartbeat: stale\n".to_owned(),
    );
    let view = FleetOverview::from_files(&files, None, &Filter::default());
    let runtime: Vec<(&str, Option<&str>)> = view
        .agents
        .iter()
        .map(|a| (a.agent.as_str(), a.runtime.as_deref()))
        .collect();
    assert_eq!(
        runtime,
        [
            ("acme-prod", Some("1.5.0 healthy")),
            ("acme-staging", None),
            ("globex-ops", Some("1.4.0 stale")),
        ]
    );
}
