//! The planning function itself: match observed servers and devices to desired agents and
//! decide, per agent, what must change.

use super::agent::{Facts, create, plan_existing};
use super::inventory::{Inventory, device_ids, owned_devices};
use super::{
    Action, Context, Note, Observed, PLAN_VERSION, Plan, Summary, confirm, cost, heal, projects,
    quarantine, runtime, safety,
};
use crate::compute::Server;
use crate::tailnet::Device;
use std::collections::{BTreeMap, BTreeSet};
use tether_schema::labels;
use tether_schema::{Fleet, Power};

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
/// - An agent whose name is taken by a server this fleet does not own is not created; its
///   quarantined server is restored all the same (under its quarantine name), never deleted
///   for the collision.
/// - No resize is planned that Hetzner would refuse: a type with a smaller disk, another
///   storage type or architecture needs a new server (a replacement, or a note under
///   `protect`) ([`super::resize`]).
/// - A server whose spec was removed is quarantined, not deleted, unless its grace period is
///   zero; it is deleted only once the grace period has passed or it was purged
///   ([`quarantine`]), and restored instead of a create when its agent comes back with the same
///   subscription.
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
    let mut restored = BTreeSet::new();
    let mut placement = projects::Placement::new(fleet, &observed.servers);
    let facts = Facts {
        fleet,
        offer: &observed.offer,
        ctx,
    };

    for (name, agent) in &fleet.agents {
        let own_devices = devices.get(name.as_str()).map_or(&[][..], Vec::as_slice);
        match inventory.managed.get(name.as_str()) {
            None => match (
                quarantine::restorable(agent, &inventory),
                inventory.foreign.get(name.as_str()),
            ) {
                // A restore wins over a name held by a server this fleet does not own: the
                // quarantined server is restored under its quarantine name, the collision noted.
                (Some(server), taken) => {
                    restored.insert(server.id);
                    let devs = quarantine::devices_of(server, None, devices.get(name.as_str()));
                    let new_name = match taken {
                        Some(other) => {
                            notes.push(Note::NameHeld {
                                agent: name.to_string(),
                                server_id: server.id,
                                name: server.name.clone(),
                                other_id: other.id,
                            });
                            server.name.clone()
                        }
                        None => name.to_string(),
                    };
                    actions.push(quarantine::restore(agent, server, devs, new_name));
                }
                (None, Some(other)) => notes.push(Note::NameTaken {
                    agent: name.to_string(),
                    server_id: other.id,
                }),
                (None, None) => {
                    let env = super::env::EnvView::new(&fleet.settings, &ctx.env_key);
                    let mut action = create(agent, fleet, own_devices, &env);
                    if let (Some(other), Action::Create { reason, .. }) =
                        (quarantine::of_agent(name.as_str(), &inventory), &mut action)
                    {
                        *reason = format!(
                            "no server for this agent; quarantined server {} served another subscription ({}) and is not restored",
                            other.id,
                            other
                                .labels
                                .get(labels::SUBSCRIPTION)
                                .map_or("none", String::as_str)
                        );
                    }
                    actions.extend(placement.place(agent, action, &mut notes));
                }
            },
            Some(server) if server.name != name.as_str() => {
                // Restored under its quarantine name while another server held the agent's.
                match inventory.foreign.get(name.as_str()) {
                    Some(other) => notes.push(Note::NameHeld {
                        agent: name.to_string(),
                        server_id: server.id,
                        name: server.name.clone(),
                        other_id: other.id,
                    }),
                    None => {
                        let devs = quarantine::devices_of(server, None, devices.get(name.as_str()));
                        actions.push(quarantine::restore(agent, server, devs, name.to_string()));
                        continue;
                    }
                }
                plan_existing(agent, server, own_devices, &facts, &mut actions, &mut notes);
            }
            Some(server) => {
                plan_existing(agent, server, own_devices, &facts, &mut actions, &mut notes)
            }
        }
    }

    for (agent, server) in &inventory.managed {
        if fleet.agents.contains_key(*agent) {
            continue;
        }
        let unconfirmed = confirm::unconfirmed(fleet, server, &ctx.subscriptions);
        let keep = if safety::is_protected(server) {
            Some(
                "protected: it was `protect: true` at its last applied spec, or has Hetzner delete protection",
            )
        } else if !settings.policy.prune {
            Some("`spec.policy.prune` is off")
        } else {
            unconfirmed.as_deref()
        };
        match keep {
            Some(reason) => notes.push(Note::OrphanKept {
                agent: (*agent).to_owned(),
                server_id: server.id,
                reason: reason.to_owned(),
            }),
            None if quarantine::grace_of(server, fleet) > 0 => actions.push(
                quarantine::quarantine(agent, server, fleet, device_ids(devices.get(*agent)), ctx),
            ),
            None => actions.push(Action::Delete {
                agent: (*agent).to_owned(),
                server_id: server.id,
                server_name: server.name.clone(),
                server_type: server.server_type.clone(),
                location: server.location.clone(),
                devices: device_ids(devices.get(*agent)),
                reason: "its agent spec was removed".to_owned(),
            }),
        }
    }
    for server in &inventory.quarantined {
        if !restored.contains(&server.id) {
            quarantine::run_course(
                server,
                fleet,
                &inventory,
                &devices,
                ctx,
                &mut actions,
                &mut notes,
            );
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
            let known = fleet.agents.contains_key(agent.as_str())
                || inventory.managed.contains_key(agent.as_str())
                || inventory.retired_agents.contains(agent.as_str())
                || inventory
                    .quarantined
                    .iter()
                    .any(|s| s.labels.get(labels::AGENT) == Some(agent));
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

    let heal = heal::plan(
        &heal::Inputs {
            fleet,
            observed,
            inventory: &inventory,
            devices: &devices,
            ctx,
        },
        &mut actions,
        &mut notes,
    );
    runtime::hold_halted_on_servers(fleet, &inventory.managed, &mut actions, &mut notes);
    let managed_servers = inventory.owned_count();
    let owned_device_count = devices.values().map(Vec::len).sum();
    let in_progress = inventory.retired_agents.len();
    let mut actions = safety::limit(
        fleet,
        actions,
        &mut notes,
        managed_servers,
        in_progress,
        owned_device_count,
        ctx,
    );
    runtime::assign_waves(
        &mut actions,
        safety::disruption_budget(fleet, managed_servers),
    );
    let summary = summarize(&actions, observed, &inventory, &mut notes);
    let refusal = safety::check(&actions, fleet, managed_servers, ctx);
    let deletions_allowed = safety::deletion_budget(fleet, managed_servers)
        .min(safety::window_budget(fleet, ctx.recent_deletions));
    let disruptions_allowed =
        safety::disruption_budget(fleet, managed_servers).saturating_sub(in_progress);
    Plan {
        version: PLAN_VERSION,
        fleet: settings.name.as_str().to_owned(),
        revision: ctx.revision.clone(),
        managed_servers,
        deletions_allowed,
        disruptions_allowed,
        actions,
        notes,
        summary,
        refusal,
        suspended: settings.suspend,
        heal,
        plan_hash: String::new(),
    }
    .seal()
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
                server_name: server.name.clone(),
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

fn summarize(
    actions: &[Action],
    observed: &Observed,
    inventory: &Inventory<'_>,
    notes: &mut Vec<Note>,
) -> Summary {
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
            Action::Quarantine { .. } => s.quarantine += 1,
            Action::Restore { .. } => s.restore += 1,
            Action::Heal { .. } => s.heal += 1,
            Action::UpdateRuntime { .. } => s.runtime_updates += 1,
        }
    }
    let (delta, mut unknown) = cost::monthly_delta(actions, &observed.servers, &observed.prices);
    s.monthly_cost_delta = delta;
    let (quarantined, cost, more) =
        cost::quarantined(actions, &inventory.quarantined, &observed.prices);
    s.quarantined = quarantined;
    s.quarantined_monthly_cost = (quarantined > 0).then_some(cost);
    unknown.extend(more);
    for (server_type, location) in unknown {
        notes.push(Note::PriceUnknown {
            server_type,
            location,
        });
    }
    s.api_calls = cost::api_calls(actions);
    let disrupted: std::collections::BTreeSet<&str> = actions
        .iter()
        .filter(|a| safety::disrupts(a))
        .map(Action::agent)
        .collect();
    s.disruptions = disrupted.len();
    s.deletions = actions.iter().filter(|a| a.deletes_server()).count();
    s
}
