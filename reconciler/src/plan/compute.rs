//! The planning function itself: match observed servers and devices to desired agents and
//! decide, per agent, what must change.

use super::{Action, Change, Context, Note, Observed, Plan, Summary, cost, safety};
use crate::cloud::tailscale::{Device, DeviceId};
use crate::cloud::{Server, ServerStatus};
use std::collections::{BTreeMap, BTreeSet};
use tether_schema::labels;
use tether_schema::{Agent, Fleet, Power};

/// Computes the plan that takes `observed` to `fleet`.
///
/// # Guarantees
/// - Pure and deterministic: the same inputs give the same plan, byte for byte, and hash.
/// - Every destructive or disruptive action passes the rules of [`safety`] (ownership of
///   servers and devices, protection, budgets, the shrink breaker); a server or device this
///   fleet cannot prove it owns is only ever counted in a note.
/// - A server labelled `tether/protect=true`, or with Hetzner delete protection, is never
///   deleted or replaced; no server is deleted when `policy.prune` is off, except the retired
///   half of a replacement once its successor is online.
/// - An agent whose name is taken by a server this fleet does not own is not created.
/// - The plan carries a [`super::Refusal`] when it breaks the deletion budget or the shrink
///   circuit breaker; such a plan must not be applied.
pub fn plan(fleet: &Fleet, observed: &Observed, ctx: &Context) -> Plan {
    let settings = &fleet.settings;
    let mut actions = Vec::new();
    let mut notes = Vec::new();

    let inventory = Inventory::classify(&observed.servers, settings.name.as_str());
    if !inventory.unmanaged.is_empty() {
        let mut names: Vec<String> = inventory.unmanaged.iter().map(|s| s.name.clone()).collect();
        names.sort();
        notes.push(Note::Unmanaged {
            count: names.len(),
            names,
        });
    }
    let devices = owned_devices(fleet, observed, &inventory, ctx, &mut notes);

    for (name, agent) in &fleet.agents {
        let own_devices = devices.get(name.as_str()).cloned().unwrap_or_default();
        match inventory.managed.get(name.as_str()) {
            None => match inventory.foreign.get(name.as_str()) {
                Some(other) => notes.push(Note::NameTaken {
                    agent: name.to_string(),
                    server_id: other.id,
                }),
                None => actions.push(create(agent, fleet, &own_devices)),
            },
            Some(server) => {
                plan_existing(agent, fleet, server, &own_devices, &mut actions, &mut notes)
            }
        }
    }

    for (agent, server) in &inventory.managed {
        if fleet.agents.contains_key(*agent) {
            continue;
        }
        let keep = if safety::is_protected(server) {
            Some(
                "protected: it was `protect: true` at its last applied spec, or has Hetzner delete protection",
            )
        } else if !settings.policy.prune {
            Some("`spec.policy.prune` is off")
        } else {
            None
        };
        match keep {
            Some(reason) => notes.push(Note::OrphanKept {
                agent: (*agent).to_owned(),
                server_id: server.id,
                reason: reason.to_owned(),
            }),
            None => actions.push(Action::Delete {
                agent: (*agent).to_owned(),
                server_id: server.id,
                server_type: server.server_type.clone(),
                location: server.location.clone(),
                devices: device_ids(devices.get(*agent)),
                reason: "its agent spec was removed".to_owned(),
            }),
        }
    }

    for server in &inventory.retired {
        retired(
            server,
            fleet,
            &inventory,
            &devices,
            &mut actions,
            &mut notes,
        );
    }

    if settings.policy.prune {
        for (agent, devs) in &devices {
            let known = fleet.agents.keys().any(|n| n.as_str() == *agent)
                || inventory.managed.contains_key(agent.as_str())
                || inventory.retired_agents.contains(agent.as_str());
            if !known {
                for d in devs {
                    actions.push(Action::DeleteDevice {
                        agent: (*agent).to_owned(),
                        device_id: d.id.clone(),
                        name: d.name.clone(),
                        reason: "its agent and server are gone".to_owned(),
                    });
                }
            }
        }
    }

    let managed_servers = inventory.managed.len() + inventory.retired.len();
    let owned_device_count = devices.values().map(Vec::len).sum();
    let in_progress = inventory.retired_agents.len();
    let actions = limit(
        fleet,
        actions,
        &mut notes,
        managed_servers,
        in_progress,
        owned_device_count,
        ctx,
    );
    let summary = summarize(&actions, observed, &mut notes);
    let refusal = safety::check(&actions, fleet, managed_servers, ctx);
    let deletions_allowed = safety::deletion_budget(fleet, managed_servers)
        .min(safety::window_budget(fleet, ctx.recent_deletions));
    Plan {
        version: 1,
        fleet: settings.name.as_str().to_owned(),
        revision: ctx.revision.clone(),
        managed_servers,
        deletions_allowed,
        actions,
        notes,
        summary,
        refusal,
        suspended: settings.suspend,
        plan_hash: String::new(),
    }
    .seal()
}

/// Every observed device this fleet can prove it owns ([`safety::device_owner`]), with its
/// agent: what the status branch records as the fleet's device record.
pub fn device_ownership(
    fleet: &Fleet,
    observed: &Observed,
    ctx: &Context,
) -> BTreeMap<DeviceId, String> {
    let inventory = Inventory::classify(&observed.servers, fleet.settings.name.as_str());
    owned_devices(fleet, observed, &inventory, ctx, &mut Vec::new())
        .into_iter()
        .flat_map(|(agent, devs)| devs.into_iter().map(move |d| (d.id.clone(), agent.clone())))
        .collect()
}

/// The observed servers, sorted by what they are to this fleet.
struct Inventory<'a> {
    /// This fleet's current servers, by agent name.
    managed: BTreeMap<&'a str, &'a Server>,
    /// This fleet's retired servers (named [`labels::retired_name`]), left by replacements.
    retired: Vec<&'a Server>,
    /// Agents with a retired server: replacements still in progress.
    retired_agents: BTreeSet<&'a str>,
    /// Every server that is not this fleet's.
    unmanaged: Vec<&'a Server>,
    /// The servers that are not this fleet's, by name.
    foreign: BTreeMap<&'a str, &'a Server>,
}

impl<'a> Inventory<'a> {
    fn classify(servers: &'a [Server], fleet: &str) -> Inventory<'a> {
        let mut inv = Inventory {
            managed: BTreeMap::new(),
            retired: Vec::new(),
            retired_agents: BTreeSet::new(),
            unmanaged: Vec::new(),
            foreign: BTreeMap::new(),
        };
        for server in servers {
            let is_retired = server
                .labels
                .get(labels::RETIRED)
                .is_some_and(|v| v == "true");
            match server.labels.get(labels::AGENT) {
                Some(agent)
                    if safety::owns_server(server, fleet, agent)
                        && is_retired
                        && server.name == labels::retired_name(agent, server.id.0) =>
                {
                    inv.retired.push(server);
                    inv.retired_agents.insert(agent.as_str());
                }
                Some(agent)
                    if safety::owns_server(server, fleet, agent)
                        && !is_retired
                        && *agent == server.name =>
                {
                    inv.managed.insert(agent.as_str(), server);
                }
                _ => {
                    inv.unmanaged.push(server);
                    inv.foreign.insert(server.name.as_str(), server);
                }
            }
        }
        inv
    }

    /// The fleet's servers, current and retired, by the agent they serve.
    fn owned_by_agent(&self) -> BTreeMap<&'a str, Vec<&'a Server>> {
        let mut by_agent: BTreeMap<&str, Vec<&Server>> = BTreeMap::new();
        for (agent, server) in &self.managed {
            by_agent.entry(agent).or_default().push(server);
        }
        for server in &self.retired {
            if let Some(agent) = server.labels.get(labels::AGENT) {
                by_agent.entry(agent.as_str()).or_default().push(server);
            }
        }
        by_agent
    }
}

/// The devices this fleet can prove it owns ([`safety::device_owner`]), by agent, oldest first.
/// Devices named like one of the fleet's agents but not provably its own get a note.
fn owned_devices<'a>(
    fleet: &Fleet,
    observed: &'a Observed,
    inventory: &Inventory<'a>,
    ctx: &'a Context,
    notes: &mut Vec<Note>,
) -> BTreeMap<String, Vec<&'a Device>> {
    let fleet_tags: BTreeSet<&str> = fleet.settings.tags.iter().map(|t| t.as_str()).collect();
    let owned = inventory.owned_by_agent();
    let foreign: BTreeSet<&str> = inventory.foreign.keys().copied().collect();
    let mut by_agent: BTreeMap<String, Vec<&Device>> = BTreeMap::new();
    for d in &observed.devices {
        match safety::device_owner(d, ctx, &owned, &foreign, &fleet_tags) {
            Some((agent, _)) => by_agent.entry(agent.to_owned()).or_default().push(d),
            None => {
                let ours = fleet.agents.keys().any(|n| n.as_str() == d.hostname)
                    || owned.contains_key(d.hostname.as_str());
                if ours {
                    notes.push(Note::DeviceNotOwned {
                        agent: d.hostname.clone(),
                        device_id: d.id.clone(),
                    });
                }
            }
        }
    }
    for devs in by_agent.values_mut() {
        devs.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
    }
    by_agent
}

fn device_ids(devices: Option<&Vec<&Device>>) -> Vec<DeviceId> {
    devices
        .map(|d| d.iter().map(|d| d.id.clone()).collect())
        .unwrap_or_default()
}

/// A retired server is deleted once its agent's current server is online (or meant to be
/// off), unless it is protected; until then it is kept.
fn retired(
    server: &Server,
    fleet: &Fleet,
    inventory: &Inventory<'_>,
    devices: &BTreeMap<String, Vec<&Device>>,
    actions: &mut Vec<Action>,
    notes: &mut Vec<Note>,
) {
    let agent = server.labels.get(labels::AGENT).map_or("", String::as_str);
    let successor = inventory.managed.get(agent);
    let successor_ready = successor.is_some_and(|s| {
        let off_by_spec = fleet
            .agents
            .get(agent)
            .is_some_and(|a| a.power == Power::Off);
        off_by_spec
            || devices
                .get(agent)
                .is_some_and(|devs| devs.iter().any(|d| d.online && safety::joined_after(d, s)))
    });
    let keep = if safety::is_protected(server) {
        Some(format!(
            "retired server {} is protected (`tether/protect=true` or Hetzner delete protection); delete it by hand once you no longer need its disk",
            server.name
        ))
    } else if successor.is_none() {
        Some(format!(
            "retired server {} is kept until its replacement exists",
            server.name
        ))
    } else if !successor_ready {
        Some(format!(
            "retired server {} is kept until its replacement is online",
            server.name
        ))
    } else {
        None
    };
    match keep {
        Some(reason) => notes.push(Note::OrphanKept {
            agent: agent.to_owned(),
            server_id: server.id,
            reason,
        }),
        None => {
            let old_devices = devices
                .get(agent)
                .map(|devs| {
                    devs.iter()
                        .filter(|d| successor.is_some_and(|s| !safety::joined_after(d, s)))
                        .map(|d| d.id.clone())
                        .collect()
                })
                .unwrap_or_default();
            actions.push(Action::Delete {
                agent: agent.to_owned(),
                server_id: server.id,
                server_type: server.server_type.clone(),
                location: server.location.clone(),
                devices: old_devices,
                reason: format!(
                    "retired server {} was replaced by the agent's current server, which is online",
                    server.name
                ),
            });
        }
    }
}

/// Holds back what the budgets do not allow in this run, each with a [`Note::Deferred`]:
/// disruptions beyond the disruption budget (replacements in progress count), server
/// deletions beyond what is left of the hourly budget, and device deletions beyond the per-run
/// budget. Agents are taken in name order, so the same agents go first every run.
fn limit(
    fleet: &Fleet,
    actions: Vec<Action>,
    notes: &mut Vec<Note>,
    managed: usize,
    in_progress: usize,
    owned_devices: usize,
    ctx: &Context,
) -> Vec<Action> {
    let disruption_budget = safety::disruption_budget(fleet, managed);
    let mut disruptions_left = disruption_budget.saturating_sub(in_progress);
    let window = safety::window_budget(fleet, ctx.recent_deletions);
    let mut window_left = window;
    let device_budget = safety::deletion_budget(fleet, owned_devices);
    let mut devices_left = device_budget;
    let mut disrupted: BTreeSet<String> = BTreeSet::new();
    let mut sorted = actions;
    sorted.sort_by(|a, b| a.agent().cmp(b.agent()));
    let mut kept = Vec::with_capacity(sorted.len());
    for action in sorted {
        let agent = action.agent().to_owned();
        let deferred = if safety::disrupts(&action) {
            if disrupted.contains(&agent) {
                None
            } else if disruptions_left > 0 {
                disruptions_left -= 1;
                disrupted.insert(agent.clone());
                None
            } else {
                Some(format!(
                    "disruption budget: {disruption_budget} agent(s) per run (maxDisruptionsPerRun {}, maxDisruptionPercent {}%), {in_progress} replacement(s) still in progress",
                    fleet.settings.policy.max_disruptions_per_run,
                    fleet.settings.policy.max_disruption_percent
                ))
            }
        } else if action.deletes_server() {
            if window_left > 0 {
                window_left -= 1;
                None
            } else {
                Some(format!(
                    "hourly deletion budget: {} server(s) per rolling hour (maxDeletionsPerHour), {} deleted in the last hour",
                    fleet.settings.policy.max_deletions_per_hour,
                    ctx.recent_deletions.unwrap_or(0)
                ))
            }
        } else if matches!(action, Action::DeleteDevice { .. }) {
            if devices_left > 0 {
                devices_left -= 1;
                None
            } else {
                Some(format!(
                    "device deletion budget: {device_budget} device(s) per run of {owned_devices} owned"
                ))
            }
        } else {
            None
        };
        match deferred {
            None => kept.push(action),
            Some(reason) => notes.push(Note::Deferred {
                agent,
                action: action.kind().to_owned(),
                reason,
            }),
        }
    }
    kept
}

fn create(agent: &Agent, fleet: &Fleet, devices: &[&Device]) -> Action {
    let reason = if devices.is_empty() {
        "no server for this agent".to_owned()
    } else {
        "server missing but the agent has a device: it was deleted outside tether (drift)"
            .to_owned()
    };
    Action::Create {
        agent: agent.name.as_str().to_owned(),
        server_type: agent.server.server_type.as_str().to_owned(),
        location: agent.server.location.as_str().to_owned(),
        image: agent.server.image.as_str().to_owned(),
        labels: labels::server_labels(agent, &fleet.settings),
        reason,
    }
}

fn plan_existing(
    agent: &Agent,
    fleet: &Fleet,
    server: &Server,
    devices: &[&Device],
    actions: &mut Vec<Action>,
    notes: &mut Vec<Note>,
) {
    let name = agent.name.as_str().to_owned();
    if matches!(
        server.status,
        ServerStatus::Deleting
            | ServerStatus::Initializing
            | ServerStatus::Migrating
            | ServerStatus::Rebuilding
    ) {
        notes.push(Note::Waiting {
            agent: name,
            server_id: server.id,
            status: format!("{:?}", server.status).to_lowercase(),
        });
        return;
    }
    let mut want = labels::server_labels(agent, &fleet.settings);
    let changes = replacement_changes(agent, server, &want);
    if !changes.is_empty() {
        if agent.protect || safety::is_protected(server) {
            // Keep the recorded spec hash: relabelling it would hide the pending replacement.
            match server.labels.get(labels::SPEC) {
                Some(have) => want.insert(labels::SPEC.to_owned(), have.clone()),
                None => want.remove(labels::SPEC),
            };
            notes.push(Note::ReplaceBlocked {
                agent: name.clone(),
                server_id: server.id,
                fields: changes.into_iter().map(|c| c.field).collect(),
            });
        } else {
            actions.push(Action::Replace {
                agent: name,
                server_id: server.id,
                changes,
                old_devices: devices.iter().map(|d| d.id.clone()).collect(),
                server_type: agent.server.server_type.as_str().to_owned(),
                location: agent.server.location.as_str().to_owned(),
                image: agent.server.image.as_str().to_owned(),
                labels: want,
            });
            return;
        }
    }
    let resize = server.server_type != agent.server.server_type.as_str();
    if resize {
        actions.push(Action::Resize {
            agent: name.clone(),
            server_id: server.id,
            from: server.server_type.clone(),
            to: agent.server.server_type.as_str().to_owned(),
        });
    }
    if server.labels != want {
        actions.push(Action::Relabel {
            agent: name.clone(),
            server_id: server.id,
            from: server.labels.clone(),
            to: want,
        });
    }
    let running = matches!(
        server.status,
        ServerStatus::Running | ServerStatus::Starting
    );
    match (agent.power, running) {
        // A resize ends in the desired power state on its own.
        _ if resize => {}
        (Power::On, false) => actions.push(Action::PowerOn {
            agent: name.clone(),
            server_id: server.id,
        }),
        (Power::Off, true) => actions.push(Action::PowerOff {
            agent: name.clone(),
            server_id: server.id,
        }),
        _ => {}
    }
    duplicate_devices(&name, server, devices, actions);
    if server.status == ServerStatus::Running && !devices.iter().any(|d| d.online) {
        notes.push(Note::Unhealthy {
            agent: name,
            server_id: server.id,
        });
    }
}

/// Fields Hetzner cannot change in place that differ: location, image, and the `tether/spec`
/// hash (SSH keys and cloud-init, which the API does not show back).
fn replacement_changes(
    agent: &Agent,
    server: &Server,
    want: &BTreeMap<String, String>,
) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut differ = |field: &str, from: &str, to: &str| {
        if from != to {
            changes.push(Change {
                field: field.to_owned(),
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
    };
    differ("location", &server.location, agent.server.location.as_str());
    differ(
        "image",
        server.image.as_deref().unwrap_or("(none)"),
        agent.server.image.as_str(),
    );
    let have = server
        .labels
        .get(labels::SPEC)
        .map_or("(none)", String::as_str);
    differ(
        "cloud-init / SSH keys (tether/spec)",
        have,
        want.get(labels::SPEC).map_or("", String::as_str),
    );
    changes
}

/// Of several devices with the agent's hostname, keeps the newest online one created after the
/// server (else the newest) and deletes the rest.
fn duplicate_devices(agent: &str, server: &Server, devices: &[&Device], actions: &mut Vec<Action>) {
    if devices.len() < 2 {
        return;
    }
    let keep = devices
        .iter()
        .rev()
        .find(|d| d.online && safety::joined_after(d, server))
        .or_else(|| devices.last())
        .map(|d| d.id.clone());
    for d in devices.iter().filter(|d| Some(&d.id) != keep.as_ref()) {
        actions.push(Action::DeleteDevice {
            agent: agent.to_owned(),
            device_id: d.id.clone(),
            name: d.name.clone(),
            reason: "stale duplicate: another device of this agent belongs to its current server"
                .to_owned(),
        });
    }
}

fn summarize(actions: &[Action], observed: &Observed, notes: &mut Vec<Note>) -> Summary {
    let mut s = Summary::default();
    for a in actions {
        match a {
            Action::Create { .. } => s.create += 1,
            Action::Replace { .. } => s.replace += 1,
            Action::Resize { .. }
            | Action::Relabel { .. }
            | Action::PowerOn { .. }
            | Action::PowerOff { .. } => s.update += 1,
            Action::Delete { .. } => s.delete += 1,
            Action::DeleteDevice { .. } => s.delete_devices += 1,
        }
    }
    let (delta, unknown) = cost::monthly_delta(actions, &observed.servers, &observed.prices);
    s.monthly_cost_delta = delta;
    for (server_type, location) in unknown {
        notes.push(Note::PriceUnknown {
            server_type,
            location,
        });
    }
    s.api_calls = cost::api_calls(actions);
    s
}
