//! Planner tests: fixture folders (`fixtures/<case>/case.json`, optionally with its own
//! `desired/` fleet) snapshot-tested in all three renderings, and property tests over random
//! fleets and inventories.

use super::*;
use crate::cloud::ServerStatus;
use crate::plan::render::{self, markdown, text};
use proptest::prelude::*;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tether_schema::{Content, Fleet, SourceFile, load_fleet};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Case {
    #[serde(default)]
    servers: Vec<FixtureServer>,
    #[serde(default)]
    devices: Vec<FixtureDevice>,
    #[serde(default)]
    context: FixtureContext,
    #[serde(default = "default_prices")]
    prices: BTreeMap<String, String>,
}

fn default_prices() -> BTreeMap<String, String> {
    [
        ("cpx11/fsn1", "5.3900"),
        ("cpx21/fsn1", "9.5200"),
        ("cpx31/fsn1", "17.8500"),
        ("cpx11/nbg1", "5.3900"),
        ("cpx21/nbg1", "9.5200"),
        ("cpx31/nbg1", "17.8500"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FixtureContext {
    revision: Option<String>,
    previous_agents: Option<usize>,
    #[serde(default)]
    allow_shrink: bool,
    /// The device record: device id → agent.
    #[serde(default)]
    owned_devices: BTreeMap<String, String>,
    recent_deletions: Option<usize>,
    /// The pass's time, RFC 3339.
    now: Option<String>,
}

/// A server; `managed: true` fills in the labels the agent of the same name wants (its
/// converged state), then `labels` entries are applied on top (`null` removes a key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FixtureServer {
    id: u64,
    name: String,
    #[serde(default = "running")]
    status: String,
    #[serde(rename = "type", default)]
    server_type: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    managed: bool,
    #[serde(default)]
    labels: BTreeMap<String, Option<String>>,
    #[serde(default)]
    delete_protected: bool,
}

fn running() -> String {
    "running".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FixtureDevice {
    id: String,
    hostname: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "agent_tag")]
    tags: Vec<String>,
    #[serde(default = "yes")]
    online: bool,
    #[serde(default = "later")]
    created: String,
}

fn agent_tag() -> Vec<String> {
    vec!["tag:agent".to_owned()]
}
fn yes() -> bool {
    true
}
fn later() -> String {
    "2026-11-23T10:05:00Z".to_owned()
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/plan/fixtures")
}

fn load_desired(dir: &Path) -> Fleet {
    let snapshot = crate::source::dir::read(dir).expect("read desired fleet");
    load_fleet(&snapshot.files).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// The fleet as last applied: the desired fleet's files with `overlay`'s on top.
fn load_previous(desired: &Path, overlay: &Path) -> Fleet {
    let mut files = crate::source::dir::read(desired)
        .expect("read desired fleet")
        .files;
    for file in crate::source::dir::read(overlay)
        .expect("read previous fleet")
        .files
    {
        files.retain(|f| f.path != file.path);
        files.push(file);
    }
    load_fleet(&files).unwrap_or_else(|e| panic!("{}: {e}", overlay.display()))
}

fn status(text: &str) -> ServerStatus {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).expect("known status")
}

/// The observed inventory of `case`; managed servers are as `fleet`'s agents were created.
fn observed(case: &Case, fleet: &Fleet) -> Observed {
    let servers = case
        .servers
        .iter()
        .map(|s| {
            let agent = fleet
                .agents
                .iter()
                .find(|(n, _)| n.as_str() == s.name)
                .map(|(_, a)| a);
            let mut labels = match (s.managed, agent) {
                (true, Some(a)) => tether_schema::labels::server_labels(a, &fleet.settings),
                (true, None) => [
                    (
                        tether_schema::labels::FLEET.to_owned(),
                        fleet.settings.name.to_string(),
                    ),
                    (tether_schema::labels::AGENT.to_owned(), s.name.clone()),
                ]
                .into(),
                (false, _) => BTreeMap::new(),
            };
            for (k, v) in &s.labels {
                match v {
                    Some(v) => labels.insert(k.clone(), v.clone()),
                    None => labels.remove(k),
                };
            }
            let pick = |given: &Option<String>, from_agent: Option<&str>, default: &str| {
                given
                    .clone()
                    .or(from_agent.map(str::to_owned))
                    .unwrap_or_else(|| default.to_owned())
            };
            Server {
                id: ServerId(s.id),
                name: s.name.clone(),
                status: status(&s.status),
                server_type: pick(
                    &s.server_type,
                    agent.map(|a| a.server.server_type.as_str()),
                    "cpx21",
                ),
                location: pick(
                    &s.location,
                    agent.map(|a| a.server.location.as_str()),
                    "fsn1",
                ),
                image: Some(pick(
                    &s.image,
                    agent.map(|a| a.server.image.as_str()),
                    "ubuntu-24.04",
                )),
                labels,
                ipv4: Some(format!("203.0.113.{}", s.id % 250)),
                ipv6: None,
                created: "2026-11-23T10:00:00Z".to_owned(),
                delete_protected: s.delete_protected,
            }
        })
        .collect();
    let devices = case
        .devices
        .iter()
        .map(|d| Device {
            id: DeviceId(d.id.clone()),
            legacy_id: String::new(),
            name: d
                .name
                .clone()
                .unwrap_or_else(|| format!("{}.tail1234.ts.net", d.hostname)),
            hostname: d.hostname.clone(),
            addresses: vec![std::net::IpAddr::from([100, 64, 0, 1])],
            user: "tagged-devices".to_owned(),
            tags: d.tags.clone(),
            authorized: true,
            online: d.online,
            last_seen: (!d.online).then(|| "2026-11-23T10:30:00Z".to_owned()),
            created: d.created.clone(),
            expires: None,
            ephemeral: false,
            external: false,
            os: "linux".to_owned(),
            client_version: String::new(),
            enabled_routes: None,
        })
        .collect();
    let prices = case
        .prices
        .iter()
        .map(|(k, v)| {
            let (t, l) = k.split_once('/').expect("type/location");
            (
                (t.to_owned(), l.to_owned()),
                Euros::parse(v).expect("price"),
            )
        })
        .collect();
    Observed {
        servers,
        devices,
        prices,
        offer: Default::default(),
    }
}

#[test]
fn every_fixture_plans_as_snapshotted_in_text_markdown_and_json() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 25,
        "expected at least 25 plan fixtures, found {}",
        cases.len()
    );
    for dir in cases {
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let case: Case = serde_json::from_str(
            &std::fs::read_to_string(dir.join("case.json")).expect("case.json"),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let desired_dir = if dir.join("desired").exists() {
            dir.join("desired")
        } else {
            fixtures_dir().join("_base")
        };
        let fleet = load_desired(&desired_dir);
        let previous = dir
            .join("previous")
            .exists()
            .then(|| load_previous(&desired_dir, &dir.join("previous")));
        let ctx = Context {
            revision: case.context.revision.clone(),
            previous: previous.clone(),
            previous_agents: case.context.previous_agents,
            allow_shrink: case.context.allow_shrink,
            owned_devices: case
                .context
                .owned_devices
                .iter()
                .map(|(id, agent)| (DeviceId(id.clone()), agent.clone()))
                .collect(),
            recent_deletions: case.context.recent_deletions,
            now: case.context.now.as_deref().map(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .expect("context.now is RFC 3339")
            }),
            ..Context::default()
        };
        let p = plan(
            &fleet,
            &observed(&case, previous.as_ref().unwrap_or(&fleet)),
            &ctx,
        );
        insta::assert_snapshot!(format!("{name}__text"), text::render(&p, false));
        insta::assert_snapshot!(
            format!("{name}__markdown"),
            markdown::render(&p, markdown::GITHUB_COMMENT_LIMIT)
        );
        insta::assert_snapshot!(
            format!("{name}__json"),
            serde_json::to_string_pretty(&p).expect("json")
        );
    }
}

#[test]
fn the_markdown_rendering_stays_under_the_comment_limit_and_lists_what_fits() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        fixtures_dir().join("_base/fleet.yaml"),
        dir.path().join("fleet.yaml"),
    )
    .expect("fleet.yaml");
    std::fs::create_dir(dir.path().join("agents")).expect("agents/");
    for i in 0..1000 {
        std::fs::write(
            dir.path().join(format!("agents/new-{i}.yaml")),
            format!(
                "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: new-{i}}}\nspec:\n  subscription: sub_{i}\n  runtime: {{version: \"1.4.2\", env: {{LOG_LEVEL: info}}}}\n"
            ),
        )
        .expect("agent");
    }
    let fleet = load_desired(dir.path());
    let servers = (0..3000)
        .map(|i| Server {
            id: ServerId(i),
            name: format!("stranger-{i}"),
            status: ServerStatus::Running,
            server_type: "cpx21".into(),
            location: "fsn1".into(),
            image: None,
            labels: [
                (
                    tether_schema::labels::FLEET.to_owned(),
                    fleet.settings.name.to_string(),
                ),
                (
                    tether_schema::labels::AGENT.to_owned(),
                    format!("stranger-{i}"),
                ),
            ]
            .into(),
            ipv4: None,
            ipv6: None,
            created: String::new(),
            delete_protected: false,
        })
        .collect();
    let p = plan(
        &fleet,
        &Observed {
            servers,
            ..Observed::default()
        },
        &Context::default(),
    );
    let md = markdown::render(&p, markdown::GITHUB_COMMENT_LIMIT);
    assert!(md.chars().count() <= markdown::GITHUB_COMMENT_LIMIT);
    assert!(md.contains(markdown::MARKER) && md.contains(&p.plan_hash));
    let shown = md.matches("\n+ create server new-").count();
    assert!(
        shown > 50,
        "as many actions as fit are listed, not none: {shown}"
    );
    assert!(
        md.contains(&format!("… {} more not shown", p.actions.len() - shown)),
        "says how many actions were left out"
    );
    let attention = p
        .notes
        .iter()
        .filter(|n| render::needs_attention(n))
        .count();
    let listed = md.matches("\n- delete of stranger-").count();
    assert!(listed > 50 && attention > listed, "{listed} of {attention}");
    assert!(md.contains(&format!("… {} more not shown", attention - listed)));
}

#[test]
fn the_hash_ignores_the_revision_but_not_the_inventory_or_the_policy() {
    let fleet = load_desired(&fixtures_dir().join("_base"));
    let base = plan(&fleet, &Observed::default(), &Context::default());
    let merged = plan(
        &fleet,
        &Observed::default(),
        &Context {
            revision: Some("abc".into()),
            ..Context::default()
        },
    );
    assert_eq!(
        base.plan_hash, merged.plan_hash,
        "the same plan from another commit (a merge of the approved PR) keeps its hash"
    );
    assert_eq!(merged.revision.as_deref(), Some("abc"));
    let stranger = Server {
        id: ServerId(99),
        name: "stranger".into(),
        status: ServerStatus::Running,
        server_type: "cpx21".into(),
        location: "fsn1".into(),
        image: None,
        labels: BTreeMap::new(),
        ipv4: None,
        ipv6: None,
        created: String::new(),
        delete_protected: false,
    };
    let other_inventory = plan(
        &fleet,
        &Observed {
            servers: vec![stranger],
            ..Observed::default()
        },
        &Context::default(),
    );
    assert_ne!(base.plan_hash, other_inventory.plan_hash);
    let mut stricter = fleet.clone();
    stricter.settings.policy.max_deletions_per_run = 0;
    let other_policy = plan(&stricter, &Observed::default(), &Context::default());
    assert_eq!(base.actions, other_policy.actions);
    assert_ne!(base.plan_hash, other_policy.plan_hash);
}

// ---- property tests -------------------------------------------------------------------------

const TYPES: [&str; 3] = ["cpx11", "cpx21", "cpx31"];
const LOCATIONS: [&str; 2] = ["fsn1", "nbg1"];

#[derive(Debug, Clone)]
struct GenAgent {
    server_type: usize,
    location: usize,
    version: u8,
    power_on: bool,
    protect: bool,
    plan_label: u8,
}

fn gen_agent() -> impl Strategy<Value = GenAgent> {
    (
        0..3usize,
        0..2usize,
        0..3u8,
        any::<bool>(),
        prop::bool::weighted(0.2),
        0..2u8,
    )
        .prop_map(
            |(server_type, location, version, power_on, protect, plan_label)| GenAgent {
                server_type,
                location,
                version,
                power_on,
                protect,
                plan_label,
            },
        )
}

fn fleet_of(agents: &[(usize, GenAgent)], prune: bool) -> Fleet {
    let mut files = vec![SourceFile {
        path: "fleet.yaml".into(),
        content: Content::Bytes(
            format!(
                "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: prop}}\nspec:\n  defaults: {{server: {{image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  policy: {{prune: {prune}, maxDeletionsPerRun: 1000, maxDeletionPercent: 100}}\n  catalog: {{serverTypes: [cpx11, cpx21, cpx31], locations: [fsn1, nbg1], images: [ubuntu-24.04]}}\n"
            )
            .into_bytes(),
        ),
    }];
    for (i, a) in agents {
        files.push(SourceFile {
            path: format!("agents/a{i}.yaml"),
            content: Content::Bytes(
                format!(
                    "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: a{i}, labels: {{plan: p{}}}}}\nspec:\n  subscription: sub_{i}\n  server: {{type: {}, location: {}}}\n  runtime: {{version: \"1.{}\"}}\n  power: {}\n  protect: {}\n",
                    a.plan_label,
                    TYPES[a.server_type],
                    LOCATIONS[a.location],
                    a.version,
                    if a.power_on { "on" } else { "off" },
                    a.protect
                )
                .into_bytes(),
            ),
        });
    }
    load_fleet(&files).expect("generated fleet is valid")
}

/// Applies `plan` to a model of the inventory, the way the executor would.
fn simulate(plan: &Plan, fleet: &Fleet, observed: &Observed) -> Observed {
    let mut servers = observed.servers.clone();
    let mut devices = observed.devices.clone();
    let mut next_id = servers.iter().map(|s| s.id.0).max().unwrap_or(0) + 1000;
    let build = |agent: &str, id: u64| {
        let a = fleet
            .agents
            .iter()
            .find(|(n, _)| n.as_str() == agent)
            .map(|(_, a)| a)
            .expect("desired agent");
        Server {
            id: ServerId(id),
            name: agent.to_owned(),
            status: if a.power == tether_schema::Power::On {
                ServerStatus::Running
            } else {
                ServerStatus::Off
            },
            server_type: a.server.server_type.to_string(),
            location: a.server.location.to_string(),
            image: Some(a.server.image.to_string()),
            labels: tether_schema::labels::server_labels(a, &fleet.settings),
            ipv4: None,
            ipv6: None,
            created: "2026-11-24T00:00:00Z".into(),
            delete_protected: false,
        }
    };
    for action in &plan.actions {
        match action {
            Action::Create { agent, .. } => {
                next_id += 1;
                servers.push(build(agent, next_id));
            }
            Action::Replace {
                agent,
                server_id,
                old_devices,
                ..
            } => {
                servers.retain(|s| s.id != *server_id);
                devices.retain(|d| !old_devices.contains(&d.id));
                next_id += 1;
                servers.push(build(agent, next_id));
            }
            Action::Resize { server_id, to, .. } => servers
                .iter_mut()
                .filter(|s| s.id == *server_id)
                .for_each(|s| s.server_type.clone_from(to)),
            Action::Relabel { server_id, to, .. } => servers
                .iter_mut()
                .filter(|s| s.id == *server_id)
                .for_each(|s| s.labels.clone_from(to)),
            Action::PowerOn { server_id, .. } => servers
                .iter_mut()
                .filter(|s| s.id == *server_id)
                .for_each(|s| s.status = ServerStatus::Running),
            Action::PowerOff { server_id, .. } => servers
                .iter_mut()
                .filter(|s| s.id == *server_id)
                .for_each(|s| s.status = ServerStatus::Off),
            Action::Delete {
                server_id,
                devices: gone,
                ..
            } => {
                servers.retain(|s| s.id != *server_id);
                devices.retain(|d| !gone.contains(&d.id));
            }
            Action::DeleteDevice { device_id, .. } => devices.retain(|d| d.id != *device_id),
            Action::Quarantine {
                agent, server_id, ..
            } => servers
                .iter_mut()
                .filter(|s| s.id == *server_id)
                .for_each(|s| {
                    s.status = ServerStatus::Off;
                    s.name = tether_schema::labels::quarantined_name(agent, server_id.0);
                    s.labels.insert(
                        tether_schema::labels::QUARANTINED_AT.to_owned(),
                        "1795000000".to_owned(),
                    );
                }),
            Action::Restore {
                agent, server_id, ..
            } => servers
                .iter_mut()
                .filter(|s| s.id == *server_id)
                .for_each(|s| {
                    s.status = ServerStatus::Running;
                    s.name.clone_from(agent);
                    s.labels.remove(tether_schema::labels::QUARANTINED_AT);
                }),
        }
    }
    Observed {
        servers,
        devices,
        prices: observed.prices.clone(),
        offer: observed.offer.clone(),
    }
}

#[derive(Debug, Clone)]
enum Drift {
    Missing,
    Converged,
    OtherType,
    OtherLocation,
    OldSpec,
    OtherLabel,
    PowerFlipped,
}

fn drift() -> impl Strategy<Value = Drift> {
    prop_oneof![
        Just(Drift::Missing),
        Just(Drift::Converged),
        Just(Drift::OtherType),
        Just(Drift::OtherLocation),
        Just(Drift::OldSpec),
        Just(Drift::OtherLabel),
        Just(Drift::PowerFlipped)
    ]
}

#[derive(Debug, Clone)]
struct World {
    desired: Vec<(usize, GenAgent)>,
    drifts: Vec<Drift>,
    orphans: Vec<(usize, bool)>,
    strangers: usize,
    prune: bool,
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(gen_agent(), 0..12),
        prop::collection::vec(drift(), 12),
        prop::collection::vec((100..110usize, any::<bool>()), 0..4),
        0..4usize,
        any::<bool>(),
    )
        .prop_map(|(agents, drifts, orphans, strangers, prune)| World {
            desired: agents.into_iter().enumerate().collect(),
            drifts,
            orphans,
            strangers,
            prune,
        })
}

fn observed_of(world: &World, fleet: &Fleet) -> Observed {
    let mut servers = Vec::new();
    for ((i, _), drift) in world.desired.iter().zip(&world.drifts) {
        let name = format!("a{i}");
        let agent = fleet
            .agents
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, a)| a)
            .expect("agent");
        let mut s = Server {
            id: ServerId(*i as u64 + 1),
            name: name.clone(),
            status: if agent.power == tether_schema::Power::On {
                ServerStatus::Running
            } else {
                ServerStatus::Off
            },
            server_type: agent.server.server_type.to_string(),
            location: agent.server.location.to_string(),
            image: Some(agent.server.image.to_string()),
            labels: tether_schema::labels::server_labels(agent, &fleet.settings),
            ipv4: None,
            ipv6: None,
            created: "2026-11-23T00:00:00Z".into(),
            delete_protected: false,
        };
        match drift {
            Drift::Missing => continue,
            Drift::Converged => {}
            Drift::OtherType => s.server_type = "cpx11x".into(),
            Drift::OtherLocation => s.location = "hel1".into(),
            Drift::OldSpec => {
                s.labels
                    .insert(tether_schema::labels::SPEC.into(), "0000".into());
            }
            Drift::OtherLabel => {
                s.labels.insert("plan".into(), "legacy".into());
            }
            Drift::PowerFlipped => {
                s.status = if s.status == ServerStatus::Running {
                    ServerStatus::Off
                } else {
                    ServerStatus::Running
                }
            }
        }
        servers.push(s);
    }
    for (i, protect) in &world.orphans {
        let mut labels: BTreeMap<String, String> = [
            (tether_schema::labels::FLEET.to_owned(), "prop".to_owned()),
            (tether_schema::labels::AGENT.to_owned(), format!("a{i}")),
        ]
        .into();
        if *protect {
            labels.insert(tether_schema::labels::PROTECT.into(), "true".into());
        }
        servers.push(Server {
            id: ServerId(*i as u64 + 500),
            name: format!("a{i}"),
            status: ServerStatus::Running,
            server_type: "cpx21".into(),
            location: "fsn1".into(),
            image: None,
            labels,
            ipv4: None,
            ipv6: None,
            created: String::new(),
            delete_protected: false,
        });
    }
    for j in 0..world.strangers {
        servers.push(Server {
            id: ServerId(9000 + j as u64),
            name: format!("a{j}"),
            status: ServerStatus::Running,
            server_type: "cpx21".into(),
            location: "fsn1".into(),
            image: None,
            labels: BTreeMap::new(),
            ipv4: None,
            ipv6: None,
            created: String::new(),
            delete_protected: false,
        });
    }
    servers.sort_by_key(|s| s.id);
    servers.dedup_by_key(|s| s.id);
    Observed {
        servers,
        ..Observed::default()
    }
}

fn converged(fleet: &Fleet, observed: &Observed, exempt: &BTreeSet<String>) -> Result<(), String> {
    for (name, agent) in &fleet.agents {
        if exempt.contains(name.as_str()) {
            continue;
        }
        let s = observed
            .servers
            .iter()
            .find(|s| {
                s.name == name.as_str()
                    && s.labels
                        .get(tether_schema::labels::FLEET)
                        .is_some_and(|f| f == "prop")
            })
            .ok_or(format!("{name}: no server"))?;
        let want_status = if agent.power == tether_schema::Power::On {
            ServerStatus::Running
        } else {
            ServerStatus::Off
        };
        if s.server_type != agent.server.server_type.as_str()
            || s.location != agent.server.location.as_str()
            || s.status != want_status
            || s.labels != tether_schema::labels::server_labels(agent, &fleet.settings)
        {
            return Err(format!("{name}: not converged: {s:?}"));
        }
    }
    Ok(())
}

/// Agents a plan says it will not converge, by design: protected ones that need a new server,
/// and those whose name another fleet's server holds.
fn exempt(plan: &Plan) -> BTreeSet<String> {
    plan.notes
        .iter()
        .filter_map(|n| match n {
            Note::ReplaceBlocked { agent, .. } | Note::NameTaken { agent, .. } => {
                Some(agent.clone())
            }
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn applying_a_plan_reaches_the_desired_state_and_then_plans_nothing(w in world()) {
        let fleet = fleet_of(&w.desired, w.prune);
        let observed = observed_of(&w, &fleet);
        let ctx = Context { allow_shrink: true, ..Context::default() };
        let first = plan(&fleet, &observed, &ctx);
        prop_assume!(first.accepted());
        let exempt = exempt(&first);
        // Budgets defer disruptions to later runs: converge within a bounded number of runs.
        let mut now = observed;
        let mut p = first;
        for _ in 0..20 {
            if p.is_empty() {
                break;
            }
            prop_assert!(p.accepted(), "a later run is refused: {:?}", p.refusal);
            now = simulate(&p, &fleet, &now);
            p = plan(&fleet, &now, &ctx);
        }
        prop_assert!(converged(&fleet, &now, &exempt).is_ok(), "{:?}", converged(&fleet, &now, &exempt));
        prop_assert!(p.is_empty(), "still not converged after 20 runs: {:?}", p.actions);
    }

    #[test]
    fn no_plan_destroys_a_server_without_the_fleet_label(w in world()) {
        let fleet = fleet_of(&w.desired, w.prune);
        let observed = observed_of(&w, &fleet);
        let p = plan(&fleet, &observed, &Context::default());
        let unlabelled: Vec<ServerId> = observed.servers.iter().filter(|s| s.labels.get(tether_schema::labels::FLEET).is_none_or(|f| f != "prop")).map(|s| s.id).collect();
        for a in &p.actions {
            if let Action::Delete { server_id, .. } | Action::Replace { server_id, .. } | Action::Resize { server_id, .. } | Action::PowerOff { server_id, .. } = a {
                prop_assert!(!unlabelled.contains(server_id), "{a:?}");
            }
        }
    }

    #[test]
    fn no_accepted_plan_exceeds_the_deletion_budget(w in world(), max in 0u32..4, pct in 0u32..60, previous in prop::option::of(0usize..20)) {
        let mut fleet = fleet_of(&w.desired, true);
        fleet.settings.policy.max_deletions_per_run = max;
        fleet.settings.policy.max_deletion_percent = pct;
        let observed = observed_of(&w, &fleet);
        let p = plan(&fleet, &observed, &Context { previous_agents: previous, ..Context::default() });
        let managed = observed.servers.iter().filter(|s| s.labels.get(tether_schema::labels::FLEET).is_some_and(|f| f == "prop")).count();
        if p.accepted() {
            let deletions = p.actions.iter().filter(|a| a.deletes_server()).count();
            prop_assert!(deletions <= safety::deletion_budget(&fleet, managed));
            prop_assert!(deletions as u32 <= max);
        }
    }
}
