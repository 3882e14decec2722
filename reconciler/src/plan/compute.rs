//! The planning function itself: match observed servers and devices to desired agents and
//! decide, per agent, what must change.

use super::{Action, Change, Context, Note, Observed, Plan, Summary, cost, safety};
use crate::cloud::tailscale::Device;
use crate::cloud::{Server, ServerStatus};
use std::collections::{BTreeMap, BTreeSet};
use tether_schema::labels;
use tether_schema::{Agent, Fleet, Power};

/// Computes the plan that takes `observed` to `fleet`.
///
/// # Guarantees
/// - Pure and deterministic: the same inputs give the same plan, byte for byte, and hash.
/// - Ownership is checked here on every server, whatever filter listed it: only a server whose
///   `tether/fleet` label names this fleet and whose `tether/agent` label names an agent can be
///   in a destructive action. Every other server is counted in [`Note::Unmanaged`].
/// - A server labelled `tether/protect=true`, or with Hetzner delete protection, is never
///   deleted; neither is any server when `policy.prune` is off.
/// - A devices is only deleted when its hostname is an agent's name and its tags are among the
///   fleet's tags.
/// - The plan carries a [`super::Refusal`] when it breaks the deletion budget or the shrink
///   circuit breaker; such a plan must not be applied.
pub fn plan(fleet: &Fleet, observed: &Observed, ctx: &Context) -> Plan {
    let settings = &fleet.settings;
    let mut actions = Vec::new();
    let mut notes = Vec::new();

    let (managed, retired, unmanaged) = classify(&observed.servers, settings.name.as_str());
    if !unmanaged.is_empty() {
        let mut names: Vec<String> = unmanaged.iter().map(|s| s.name.clone()).collect();
        names.sort();
        notes.push(Note::Unmanaged {
            count: names.len(),
            names,
        });
    }
    let devices = fleet_devices(
        &observed.devices,
        settings.tags.iter().map(|t| t.as_str()).collect(),
    );

    for (name, agent) in &fleet.agents {
        let own_devices = devices.get(name.as_str()).cloned().unwrap_or_default();
        match managed.get(name.as_str()) {
            None => actions.push(create(agent, fleet, &own_devices)),
            Some(server) => {
                plan_existing(agent, fleet, server, &own_devices, &mut actions, &mut notes)
            }
        }
    }

    for (agent, server) in &managed {
        if fleet.agents.contains_key(*agent) {
            continue;
        }
        let protected = server
            .labels
            .get(labels::PROTECT)
            .is_some_and(|v| v == "true")
            || server.delete_protected;
        let keep = if protected {
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
                devices: devices
                    .get(agent)
                    .map(|d| d.iter().map(|d| d.id.clone()).collect())
                    .unwrap_or_default(),
                reason: "its agent spec was removed".to_owned(),
            }),
        }
    }

    for server in &retired {
        let agent = server.labels.get(labels::AGENT).map_or("", String::as_str);
        if managed.contains_key(agent) {
            actions.push(Action::Delete {
                agent: agent.to_owned(),
                server_id: server.id,
                server_type: server.server_type.clone(),
                location: server.location.clone(),
                devices: Vec::new(),
                reason: format!(
                    "retired server {} was replaced by the agent's current server",
                    server.name
                ),
            });
        } else {
            notes.push(Note::OrphanKept {
                agent: agent.to_owned(),
                server_id: server.id,
                reason: format!(
                    "retired server {} is kept until its replacement exists",
                    server.name
                ),
            });
        }
    }

    if settings.policy.prune {
        for (agent, devs) in &devices {
            let known =
                fleet.agents.keys().any(|n| n.as_str() == *agent) || managed.contains_key(agent);
            if !known {
                for d in devs {
                    actions.push(Action::DeleteDevice {
                        agent: (*agent).to_owned(),
                        device_id: d.id.clone(),
                        name: d.name.clone(),
                        reason: "no agent or server of that name exists".to_owned(),
                    });
                }
            }
        }
    }

    let summary = summarize(&actions, observed, &mut notes);
    let managed_servers = managed.len() + retired.len();
    let refusal = safety::check(&actions, fleet, managed_servers, ctx);
    Plan {
        version: 1,
        fleet: settings.name.as_str().to_owned(),
        revision: ctx.revision.clone(),
        managed_servers,
        actions,
        notes,
        summary,
        refusal,
        plan_hash: String::new(),
    }
    .seal()
}

/// This fleet's servers by agent name, its retired servers (named
/// [`labels::retired_name`]), and everything else.
type Classified<'a> = (
    BTreeMap<&'a str, &'a Server>,
    Vec<&'a Server>,
    Vec<&'a Server>,
);

fn classify<'a>(servers: &'a [Server], fleet: &str) -> Classified<'a> {
    let mut managed: BTreeMap<&str, &Server> = BTreeMap::new();
    let mut retired = Vec::new();
    let mut unmanaged = Vec::new();
    for server in servers {
        let ours = server.labels.get(labels::FLEET).is_some_and(|f| f == fleet);
        let is_retired = server
            .labels
            .get(labels::RETIRED)
            .is_some_and(|v| v == "true");
        match server.labels.get(labels::AGENT) {
            Some(agent)
                if ours
                    && is_retired
                    && server.name == labels::retired_name(agent, server.id.0) =>
            {
                retired.push(server)
            }
            Some(agent) if ours && !is_retired && *agent == server.name => {
                managed.insert(agent.as_str(), server);
            }
            _ => unmanaged.push(server),
        }
    }
    (managed, retired, unmanaged)
}

/// Devices that may belong to the fleet, by hostname; only those whose tags are all fleet tags.
fn fleet_devices<'a>(
    devices: &'a [Device],
    fleet_tags: BTreeSet<&str>,
) -> BTreeMap<&'a str, Vec<&'a Device>> {
    let mut by_host: BTreeMap<&str, Vec<&Device>> = BTreeMap::new();
    for d in devices {
        if !d.tags.is_empty() && d.tags.iter().all(|t| fleet_tags.contains(t.as_str())) {
            by_host.entry(d.hostname.as_str()).or_default().push(d);
        }
    }
    for devs in by_host.values_mut() {
        devs.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
    }
    by_host
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
    let want = labels::server_labels(agent, &fleet.settings);
    let changes = replacement_changes(agent, server, &want);
    if !changes.is_empty() {
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
    if server.server_type != agent.server.server_type.as_str() {
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
        .find(|d| d.online && d.created >= server.created)
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
