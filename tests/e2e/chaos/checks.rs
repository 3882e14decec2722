//! The checks a user would make after a chaos run — of the emulated world (servers, devices,
//! auth keys, injected faults) and of the `tether/status` branch — each returning the problems it
//! found with their counts, so one run reports every broken promise at once.

use super::support::FLEET;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tether::sandbox::stack::Stack;
use tether_emulators::emulator::RequestLog;
use tether_emulators::hetzner::ServerStatus;
use tether_schema::labels;
use tether_schema::yaml::node::{self, Node, NodeKind};

/// The status branch `tether apply --git` writes by default.
const STATUS_BRANCH: &str = "tether/status";

/// The faults an emulator injected, from its request counters: (429 and 5xx answers, dropped
/// connections, lost responses). The rate limit is raised in these runs, so every 429 is
/// injected.
pub fn injected(log: &RequestLog) -> (u64, u64, u64) {
    let mut counts = (0, 0, 0);
    for (key, n) in log.snapshot() {
        match key.outcome.as_str() {
            "dropped" => counts.1 += n,
            "lost" => counts.2 += n,
            status if status == "429" || status.starts_with('5') => counts.0 += n,
            _ => {}
        }
    }
    counts
}

/// Every promise about the emulated world that `desired` (the agents of the applied spec)
/// implies, checked against the emulators' own state: [`fleet_problems`],
/// [`health_problems`] and [`key_problems`].
///
/// Returns one line per broken promise, prefixed with `when`, with its count.
pub fn world_problems(when: &str, stack: &Stack, desired: &BTreeSet<String>) -> Vec<String> {
    let mut problems = fleet_problems(when, stack, desired);
    problems.extend(health_problems(when, stack, desired));
    problems.extend(key_problems(when, stack));
    problems
}

/// Servers and devices match `desired`: exactly one labelled server and at most one device per
/// agent, no server or device of any other agent. The project and the tailnet hold only this
/// fleet, so every server and device in them is the fleet's.
pub fn fleet_problems(when: &str, stack: &Stack, desired: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let servers = stack.hetzner.servers();
    let mut by_name: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut by_label: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for s in &servers {
        by_name.entry(&s.name).or_default().push(s.id);
        if s.labels.get(labels::FLEET).map(String::as_str) == Some(FLEET)
            && let Some(agent) = s.labels.get(labels::AGENT)
        {
            by_label.entry(agent).or_default().push(s.id);
        }
    }
    let duplicated = |m: &BTreeMap<&str, Vec<u64>>| -> Vec<String> {
        m.iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|(name, ids)| format!("{name} {ids:?}"))
            .collect()
    };
    for (how, dups) in [
        ("name", duplicated(&by_name)),
        ("tether labels", duplicated(&by_label)),
    ] {
        if !dups.is_empty() {
            problems.push(format!(
                "{when}: {} agents have duplicate servers (by {how}): {}",
                dups.len(),
                dups.join(", ")
            ));
        }
    }
    if servers.len() != desired.len() {
        problems.push(format!(
            "{when}: {} servers exist, the spec has {} agents",
            servers.len(),
            desired.len()
        ));
    }
    let leftover: Vec<&str> = by_name
        .keys()
        .copied()
        .filter(|n| !desired.contains(*n))
        .collect();
    if !leftover.is_empty() {
        problems.push(format!(
            "{when}: {} leftover servers of agents not in the spec: {leftover:?}",
            leftover.len()
        ));
    }
    let unlabelled: Vec<&str> = servers
        .iter()
        .filter(|s| s.labels.get(labels::AGENT) != Some(&s.name))
        .map(|s| s.name.as_str())
        .collect();
    if !unlabelled.is_empty() {
        problems.push(format!(
            "{when}: {} servers lack this fleet's tether/agent label: {unlabelled:?}",
            unlabelled.len()
        ));
    }
    let missing: Vec<&String> = desired
        .iter()
        .filter(|a| !by_name.contains_key(a.as_str()))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{when}: {} agents have no server: {missing:?}",
            missing.len()
        ));
    }
    problems.extend(device_problems(when, stack, desired));
    problems
}

/// No agent has more than one device; no device of another agent is left.
fn device_problems(when: &str, stack: &Stack, desired: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_host: BTreeMap<String, usize> = BTreeMap::new();
    for d in stack.tailscale.devices() {
        *by_host.entry(d.hostname).or_default() += 1;
    }
    let doubled: Vec<String> = by_host
        .iter()
        .filter(|(h, n)| desired.contains(*h) && **n > 1)
        .map(|(h, n)| format!("{h} ×{n}"))
        .collect();
    if !doubled.is_empty() {
        problems.push(format!(
            "{when}: {} agents have more than one device: {doubled:?}",
            doubled.len()
        ));
    }
    let leftover: Vec<&String> = by_host.keys().filter(|h| !desired.contains(*h)).collect();
    if !leftover.is_empty() {
        problems.push(format!(
            "{when}: {} leftover devices of agents not in the spec: {leftover:?}",
            leftover.len()
        ));
    }
    problems
}

/// Every agent of `desired` is up: its server runs and its device is online.
pub fn health_problems(when: &str, stack: &Stack, desired: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let not_running: Vec<String> = stack
        .hetzner
        .servers()
        .iter()
        .filter(|s| desired.contains(&s.name) && s.status != ServerStatus::Running)
        .map(|s| format!("{} ({:?})", s.name, s.status))
        .collect();
    if !not_running.is_empty() {
        problems.push(format!(
            "{when}: {} agents' servers are not running: {not_running:?}",
            not_running.len()
        ));
    }
    let online: BTreeSet<String> = stack
        .tailscale
        .devices()
        .into_iter()
        .filter(|d| d.connected_to_control)
        .map(|d| d.hostname)
        .collect();
    let offline: Vec<&String> = desired.difference(&online).collect();
    if !offline.is_empty() {
        problems.push(format!(
            "{when}: {} agents have no online device: {offline:?}",
            offline.len()
        ));
    }
    problems
}

/// No auth key is still able to enrol a device: every key tether minted was used or revoked.
/// The tailnet has no other key minter, so every key in it is tether's.
pub fn key_problems(when: &str, stack: &Stack) -> Vec<String> {
    let keys = stack.tailscale.keys();
    let live: Vec<String> = keys
        .iter()
        .filter(|k| !k.invalid)
        .map(|k| format!("{} ({})", k.id, k.description))
        .collect();
    if live.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "{when}: {} of {} minted auth keys are still valid (pre-authorised, tagged): {live:?}",
        live.len(),
        keys.len()
    )]
}

/// What `tether/status` says: each agent's server id, and `status/fleet.yaml`'s agent count
/// and revision.
#[derive(Debug, Default)]
struct StatusBranch {
    agents: BTreeMap<String, Option<u64>>,
    fleet_agents: Option<usize>,
    revision: Option<String>,
}

fn scalar<'n>(node: &'n Node, path: &[&str]) -> Option<&'n str> {
    let leaf = path.iter().try_fold(node, |n, key| n.get(key))?;
    match &leaf.kind {
        NodeKind::Scalar { text, .. } if !leaf.is_null() => Some(text),
        _ => None,
    }
}

fn read_status(repo: &Path) -> Option<StatusBranch> {
    let r = git2::Repository::open(repo).expect("open the fleet repository");
    let tree = r
        .revparse_single(STATUS_BRANCH)
        .ok()?
        .peel_to_commit()
        .expect("status branch tip is a commit")
        .tree()
        .expect("status tree");
    let folder = tree
        .get_path(Path::new("status"))
        .expect("status/ on the status branch")
        .to_object(&r)
        .expect("status/ object")
        .peel_to_tree()
        .expect("status/ is a folder");
    let mut status = StatusBranch::default();
    for entry in &folder {
        let name = entry.name().expect("utf-8 file name").to_owned();
        let blob = r.find_blob(entry.id()).expect("status file blob");
        let text = std::str::from_utf8(blob.content()).expect("utf-8 status file");
        let doc = node::parse(text).expect("status file is YAML");
        let fleet_wide = name
            .strip_suffix(".yaml")
            .is_some_and(|n| tether_schema::names::RESERVED_AGENT_NAMES.contains(&n));
        if name == "fleet.yaml" {
            status.fleet_agents = scalar(&doc, &["agents"]).and_then(|n| n.parse().ok());
            status.revision = scalar(&doc, &["revision"]).map(str::to_owned);
        } else if let Some(agent) = name.strip_suffix(".yaml").filter(|_| !fleet_wide) {
            let id = scalar(&doc, &["server", "id"]).and_then(|n| n.parse().ok());
            status.agents.insert(agent.to_owned(), id);
        }
    }
    Some(status)
}

/// The status branch tells the truth about the live fleet: one document per agent of the
/// applied revision `head` and no other, each naming the server that really runs it, and
/// `status/fleet.yaml` counting those agents at that revision.
pub fn status_problems(
    when: &str,
    repo: &Path,
    stack: &Stack,
    desired: &BTreeSet<String>,
    head: &str,
) -> Vec<String> {
    let Some(status) = read_status(repo) else {
        return vec![format!("{when}: no {STATUS_BRANCH} branch")];
    };
    let mut problems = Vec::new();
    let live: BTreeMap<String, u64> = stack
        .hetzner
        .servers()
        .into_iter()
        .map(|s| (s.name, s.id))
        .collect();
    let listed: BTreeSet<String> = status.agents.keys().cloned().collect();
    let extra: Vec<&String> = listed.difference(desired).collect();
    let absent: Vec<&String> = desired.difference(&listed).collect();
    if !extra.is_empty() || !absent.is_empty() {
        problems.push(format!(
            "{when}: status lists {} agents not in the spec {extra:?} and misses {} agents of the spec {absent:?}",
            extra.len(),
            absent.len()
        ));
    }
    let wrong: Vec<String> = status
        .agents
        .iter()
        .filter(|(agent, _)| desired.contains(*agent))
        .filter(|(agent, id)| live.get(*agent) != id.as_ref())
        .map(|(agent, id)| {
            format!(
                "{agent}: status {id:?}, live {:?}",
                live.get(agent.as_str())
            )
        })
        .collect();
    if !wrong.is_empty() {
        problems.push(format!(
            "{when}: status names the wrong server for {} agents: {wrong:?}",
            wrong.len()
        ));
    }
    if status.fleet_agents != Some(desired.len()) {
        problems.push(format!(
            "{when}: status/fleet.yaml says {:?} agents, the spec has {}",
            status.fleet_agents,
            desired.len()
        ));
    }
    if status.revision.as_deref() != Some(head) {
        problems.push(format!(
            "{when}: status/fleet.yaml is at revision {:?}, the applied revision is {head}",
            status.revision
        ));
    }
    problems
}
