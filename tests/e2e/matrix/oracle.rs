//! The matrix's oracle: what a user would check after a case, read from outside tether (the
//! emulators' own state and the git status branch), each check returning the promises it
//! found broken.

use super::operations::Desired;
use super::world::{AGENT, FLEET, Foreign, Spec, TAG, World};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tether::audit::STATUS_BRANCH;
use tether_emulators::hetzner::{ServerStatus, ServerSummary};
use tether_emulators::tailscale::wire::Device;
use tether_schema::labels;
use tether_schema::yaml::node::{self, Node, NodeKind};

/// The foreign resources as seeded, to tell whether anything touched them.
#[derive(Debug, Clone)]
pub struct ForeignBaseline {
    ids: Foreign,
    server: (String, ServerStatus, BTreeMap<String, String>, String),
    actions: usize,
    device: (bool, Vec<String>),
}

impl ForeignBaseline {
    /// The foreign server and device of `world` as they are now.
    pub fn take(world: &World) -> ForeignBaseline {
        let ids = world.foreign.clone();
        let server = foreign_server(world, &ids).expect("the foreign server exists");
        let device = foreign_device(world, &ids).expect("the foreign device exists");
        ForeignBaseline {
            server: (
                server.name,
                server.status,
                server.labels,
                server.server_type,
            ),
            actions: actions_on(world, ids.server),
            device: (device.authorized, device.tags),
            ids,
        }
    }
}

fn foreign_server(world: &World, ids: &Foreign) -> Option<ServerSummary> {
    world
        .stack
        .hetzner
        .servers()
        .into_iter()
        .find(|s| s.id == ids.server)
}

fn foreign_device(world: &World, ids: &Foreign) -> Option<Device> {
    world
        .stack
        .tailscale
        .devices()
        .into_iter()
        .find(|d| d.node_id == ids.device)
}

fn actions_on(world: &World, server: u64) -> usize {
    world
        .stack
        .hetzner
        .action_commands()
        .iter()
        .filter(|(_, s)| *s == server)
        .count()
}

fn is_fleets(s: &ServerSummary) -> bool {
    s.labels.get(labels::FLEET).map(String::as_str) == Some(FLEET)
}

/// The fleet's servers and every device, with the server each device runs on.
struct Inventory {
    servers: Vec<ServerSummary>,
    devices: Vec<(Device, Option<u64>)>,
}

impl Inventory {
    fn read(world: &World) -> Inventory {
        let on = world.stack.tailscale.device_servers();
        Inventory {
            servers: world
                .stack
                .hetzner
                .servers()
                .into_iter()
                .filter(is_fleets)
                .collect(),
            devices: world
                .stack
                .tailscale
                .devices()
                .into_iter()
                .filter(|d| d.node_id != world.foreign.device)
                .map(|d| {
                    let server = on.get(&d.node_id).copied().flatten();
                    (d, server)
                })
                .collect(),
        }
    }

    fn devices_of(&self, server: u64) -> Vec<&Device> {
        self.devices
            .iter()
            .filter(|(_, s)| *s == Some(server))
            .map(|(d, _)| d)
            .collect()
    }
}

/// Whether `server` runs as `spec` says with its own device online, authorized and tagged
/// (or is off as the spec says); `Err` says what is wrong.
fn serves(inventory: &Inventory, server: &ServerSummary, spec: Spec) -> Result<(), String> {
    let mut wrong = Vec::new();
    if server.name != AGENT {
        wrong.push(format!("named {}", server.name));
    }
    if server.server_type != spec.server_type || server.location != spec.location {
        wrong.push(format!(
            "a {} in {} (spec: {} in {})",
            server.server_type, server.location, spec.server_type, spec.location
        ));
    }
    let status = if spec.on {
        ServerStatus::Running
    } else {
        ServerStatus::Off
    };
    if server.status != status {
        wrong.push(format!("{:?} (spec: {status:?})", server.status));
    }
    let devices = inventory.devices_of(server.id);
    if spec.on
        && !devices
            .iter()
            .any(|d| d.connected_to_control && d.authorized && d.tags.iter().any(|t| t == TAG))
    {
        let seen: Vec<String> = devices
            .iter()
            .map(|d| {
                format!(
                    "{} online={} authorized={}",
                    d.node_id, d.connected_to_control, d.authorized
                )
            })
            .collect();
        wrong.push(format!(
            "no device of its own online, authorized and tagged {TAG} ({seen:?})"
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("server {}: {}", server.id, wrong.join(", ")))
    }
}

/// The end state: `desired` reached, no duplicate, no orphan, no live key, nothing foreign
/// touched.
pub fn world_problems(world: &World, desired: Desired, foreign: &ForeignBaseline) -> Vec<String> {
    let inventory = Inventory::read(world);
    let mut problems = Vec::new();
    let ours: Vec<&ServerSummary> = inventory
        .servers
        .iter()
        .filter(|s| s.labels.get(labels::AGENT).map(String::as_str) == Some(AGENT))
        .collect();
    let expected = usize::from(desired != Desired::Gone);
    if ours.len() > expected {
        problems.push(format!(
            "duplicate: {} servers of the agent: {:?}",
            ours.len(),
            ours.iter().map(|s| (s.id, &s.name)).collect::<Vec<_>>()
        ));
    }
    let status = read_status(world.repo());
    match desired {
        Desired::Runs(spec) => match ours.as_slice() {
            [server] => {
                if let Err(e) = serves(&inventory, server, spec) {
                    problems.push(format!("not reached: {e}"));
                }
                if status.phase.as_deref() != Some("Ready") || status.server != Some(server.id) {
                    problems.push(format!(
                        "not recorded: status says {:?} on server {:?}, the agent runs on {}",
                        status.phase, status.server, server.id
                    ));
                }
            }
            [] => problems.push("not reached: the agent has no server".to_owned()),
            _ => {}
        },
        Desired::Quarantined => match ours.as_slice() {
            [server] => {
                let name = format!("{AGENT}-quarantined-{}", server.id);
                let live: Vec<&str> = inventory
                    .devices_of(server.id)
                    .iter()
                    .filter(|d| d.authorized)
                    .map(|d| d.node_id.as_str())
                    .collect();
                if server.name != name || server.status != ServerStatus::Off || !live.is_empty() {
                    problems.push(format!(
                        "not reached: server {} is {} {:?} with authorized devices {live:?} (want {name}, off, none authorized)",
                        server.id, server.name, server.status
                    ));
                }
                if status.phase.as_deref() != Some("Quarantined") {
                    problems.push(format!(
                        "not recorded: status says {:?}, the server is quarantined",
                        status.phase
                    ));
                }
            }
            [] => problems.push("not reached: the quarantined server is gone".to_owned()),
            _ => {}
        },
        Desired::Gone => {
            if status.phase.is_some() {
                problems.push(format!(
                    "not recorded: status still lists the agent as {:?}",
                    status.phase
                ));
            }
        }
    }
    let strays: Vec<String> = inventory
        .servers
        .iter()
        .filter(|s| s.labels.get(labels::AGENT).map(String::as_str) != Some(AGENT))
        .map(|s| format!("{} {}", s.id, s.name))
        .collect();
    if !strays.is_empty() {
        problems.push(format!(
            "orphan: servers of the fleet without the agent: {strays:?}"
        ));
    }
    let unlabelled: Vec<String> = world
        .stack
        .hetzner
        .servers()
        .into_iter()
        .filter(|s| s.id != foreign.ids.server && !is_fleets(s))
        .map(|s| format!("{} {}", s.id, s.name))
        .collect();
    if !unlabelled.is_empty() {
        problems.push(format!(
            "orphan: servers without the fleet's labels: {unlabelled:?}"
        ));
    }
    let live_servers: BTreeSet<u64> = inventory.servers.iter().map(|s| s.id).collect();
    let orphans: Vec<String> = inventory
        .devices
        .iter()
        .filter(|(_, s)| !s.is_some_and(|s| live_servers.contains(&s)))
        .map(|(d, s)| format!("{} ({}) of server {s:?}", d.node_id, d.hostname))
        .collect();
    if !orphans.is_empty() {
        problems.push(format!("orphan: devices without their server: {orphans:?}"));
    }
    let live_keys: Vec<String> = world
        .stack
        .tailscale
        .keys()
        .into_iter()
        .filter(|k| !k.invalid)
        .map(|k| format!("{} ({})", k.id, k.description))
        .collect();
    if !live_keys.is_empty() {
        problems.push(format!("live key: {live_keys:?}"));
    }
    problems.extend(foreign_problems(world, foreign));
    problems
}

/// The foreign server and device are exactly as seeded, and no action touched the server.
fn foreign_problems(world: &World, foreign: &ForeignBaseline) -> Vec<String> {
    let mut problems = Vec::new();
    match foreign_server(world, &foreign.ids) {
        Some(s) => {
            let now = (s.name, s.status, s.labels, s.server_type);
            if now != foreign.server {
                problems.push(format!(
                    "foreign server {} changed: {:?} → {now:?}",
                    foreign.ids.server, foreign.server
                ));
            }
        }
        None => problems.push(format!("foreign server {} deleted", foreign.ids.server)),
    }
    let actions = actions_on(world, foreign.ids.server);
    if actions != foreign.actions {
        problems.push(format!(
            "foreign server {}: {} actions on it since it was seeded",
            foreign.ids.server,
            actions - foreign.actions
        ));
    }
    match foreign_device(world, &foreign.ids) {
        Some(d) if (d.authorized, d.tags.clone()) == foreign.device => {}
        Some(d) => problems.push(format!(
            "foreign device {} changed: authorized {}, tags {:?}",
            foreign.ids.device, d.authorized, d.tags
        )),
        None => problems.push(format!("foreign device {} deleted", foreign.ids.device)),
    }
    problems
}

/// Right after a pass that ran to its end: the status branch calls the agent Ready only if its
/// server really runs as `spec` (the spec that pass applied) says, with its own device.
pub fn truth_problems(world: &World, spec: Option<Spec>) -> Vec<String> {
    let status = read_status(world.repo());
    if status.phase.as_deref() != Some("Ready") {
        return Vec::new();
    }
    let Some(spec) = spec else {
        return vec!["half state reported healthy: Ready without a spec".to_owned()];
    };
    let inventory = Inventory::read(world);
    let server = inventory
        .servers
        .iter()
        .find(|s| Some(s.id) == status.server);
    let wrong = match server {
        None => Err(format!("server {:?} does not exist", status.server)),
        Some(server) => serves(&inventory, server, spec),
    };
    match wrong {
        Ok(()) => Vec::new(),
        Err(e) => vec![format!("half state reported healthy: Ready, but {e}")],
    }
}

/// A complete record: every Hetzner action id answered to a pass that ran to its end, and
/// every server the fleet ever had, appear in the status branch's commits.
pub fn record_problems(world: &World, answered: &BTreeSet<u64>) -> Vec<String> {
    let history = status_history(world.repo());
    let mut problems = Vec::new();
    let mentioned = |id: u64| history.contains(&id);
    let unrecorded: Vec<&u64> = answered.iter().filter(|id| !mentioned(**id)).collect();
    if !unrecorded.is_empty() {
        problems.push(format!(
            "incomplete record: Hetzner actions {unrecorded:?} answered to a finished pass appear in no status commit"
        ));
    }
    let servers: BTreeSet<u64> = world
        .stack
        .hetzner
        .action_commands()
        .iter()
        .filter(|(c, s)| *c == "create_server" && *s != world.foreign.server)
        .map(|(_, s)| *s)
        .collect();
    let unrecorded: Vec<&u64> = servers.iter().filter(|id| !mentioned(**id)).collect();
    if !unrecorded.is_empty() {
        problems.push(format!(
            "incomplete record: servers {unrecorded:?} the fleet had appear in no status commit"
        ));
    }
    problems
}

/// What `status/<agent>.yaml` says at the tip of the status branch.
#[derive(Debug, Default)]
struct AgentStatus {
    phase: Option<String>,
    server: Option<u64>,
}

fn scalar<'n>(node: &'n Node, path: &[&str]) -> Option<&'n str> {
    let leaf = path.iter().try_fold(node, |n, key| n.get(key))?;
    match &leaf.kind {
        NodeKind::Scalar { text, .. } if !leaf.is_null() => Some(text),
        _ => None,
    }
}

fn read_status(repo: &Path) -> AgentStatus {
    let r = git2::Repository::open(repo).expect("open the fleet repository");
    let Ok(tip) = r.revparse_single(&format!("refs/heads/{STATUS_BRANCH}")) else {
        return AgentStatus::default();
    };
    let tree = tip.peel_to_tree().expect("status tree");
    let Ok(entry) = tree.get_path(Path::new(&format!("status/{AGENT}.yaml"))) else {
        return AgentStatus::default();
    };
    let blob = r.find_blob(entry.id()).expect("status blob");
    let text = std::str::from_utf8(blob.content()).expect("utf-8 status");
    let doc = node::parse(text).expect("status is YAML");
    AgentStatus {
        phase: scalar(&doc, &["phase"]).map(str::to_owned),
        server: scalar(&doc, &["server", "id"]).and_then(|id| id.parse().ok()),
    }
}

/// Every number in the status branch's history: in its commit messages and in every version
/// of every file under `status/` (the agent's document, `deletions.yaml`, …).
fn status_history(repo: &Path) -> BTreeSet<u64> {
    let r = git2::Repository::open(repo).expect("open the fleet repository");
    let Ok(tip) = r.revparse_single(&format!("refs/heads/{STATUS_BRANCH}")) else {
        return BTreeSet::new();
    };
    let mut walk = r.revwalk().expect("revwalk");
    walk.push(tip.id()).expect("walk the status branch");
    let mut text = String::new();
    for oid in walk {
        let commit = r.find_commit(oid.expect("commit id")).expect("commit");
        text.push_str(commit.message().unwrap_or_default());
        text.push('\n');
        let tree = commit.tree().expect("tree");
        let Ok(folder) = tree.get_path(Path::new("status")) else {
            continue;
        };
        let folder = r.find_tree(folder.id()).expect("status/ is a folder");
        for entry in &folder {
            if let Ok(blob) = r.find_blob(entry.id()) {
                text.push_str(&String::from_utf8_lossy(blob.content()));
                text.push('\n');
            }
        }
    }
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}
