//! Planner tests: fixture folders (`fixtures/<case>/case.json`, optionally with its own
//! `desired/` fleet) snapshot-tested in all three renderings, the comment size limit and the
//! plan hash; [`properties`] holds the property tests over random fleets and inventories.

use super::*;
use crate::compute::{ServerId, ServerStatus};
use crate::plan::render::{self, markdown, text};
use crate::testing::fleet_files;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tether_schema::{Fleet, load_fleet};

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
    /// Server types on offer, for the preconditions of a type change.
    #[serde(default)]
    types: BTreeMap<String, FixtureType>,
}

/// A server type on offer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FixtureType {
    disk: u64,
    #[serde(default = "local")]
    storage: String,
    #[serde(default = "x86")]
    architecture: String,
}

fn local() -> String {
    "local".to_owned()
}
fn x86() -> String {
    "x86".to_owned()
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
    /// Its primary disk in GB.
    #[serde(default)]
    disk: Option<u64>,
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
    load_fleet(&fleet_files(dir)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// The fleet as last applied: the desired fleet's files with `overlay`'s on top.
fn load_previous(desired: &Path, overlay: &Path) -> Fleet {
    let mut files = fleet_files(desired);
    for file in fleet_files(overlay) {
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
                rebuild_protected: false,
                disk_gb: s.disk,
                project: None,
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
        offer: offer::Offer {
            server_types: case
                .types
                .iter()
                .map(|(name, t)| {
                    let offered = offer::OfferedType {
                        disk_gb: Some(t.disk),
                        storage_type: t.storage.clone(),
                        architecture: t.architecture.clone(),
                        ..offer::OfferedType::default()
                    };
                    (name.clone(), offered)
                })
                .collect(),
            ..offer::Offer::default()
        },
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
            env_key: crate::plan::env::EnvKey::fixed([0x5a; 32]),
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
            rebuild_protected: false,
            disk_gb: None,
            project: None,
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
    // Each create lists its labels, `tether/runtime` among them: about 50 fit.
    assert!(
        shown > 40,
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
        rebuild_protected: false,
        disk_gb: None,
        project: None,
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

mod properties;
mod runtime;
