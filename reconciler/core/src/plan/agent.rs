//! One agent's decisions: the create of a missing server, or what must change on the existing
//! one.

use super::env::EnvView;
use super::offer::Offer;
use super::{Action, Change, Context, Note, fields, projects, quarantine, resize, runtime, safety};
use crate::compute::{Server, ServerStatus};
use crate::operation::{self, Operation};
use crate::tailnet::Device;
use std::collections::BTreeMap;
use tether_schema::labels;
use tether_schema::{Agent, Fleet, Power};

/// The create of `agent`'s server; `devices` are the agent's devices, whose presence
/// without a server means it was deleted outside tether.
pub(super) fn create(
    agent: &Agent,
    fleet: &Fleet,
    devices: &[&Device],
    env: &EnvView<'_>,
) -> Action {
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
        tags: fields::tags(agent),
        ssh_keys: fields::ssh_keys(agent),
        runtime_version: agent.runtime.version.as_str().to_owned(),
        env: env.shown(agent),
        reason,
    }
}

/// What the decisions about one agent read besides the agent and its server.
pub(super) struct Facts<'a> {
    /// The fleet.
    pub fleet: &'a Fleet,
    /// What Hetzner offers, for the preconditions of a type change ([`resize::refusal`]).
    pub offer: &'a Offer,
    /// The run's context.
    pub ctx: &'a Context,
}

/// What changes on `agent`'s existing `server`: a replacement (or a note saying why not), a
/// resize, labels, power, the runtime, duplicate devices; notes for waiting and unhealthy
/// servers. A server still carrying a quarantine or restore ([`operation::pending`]) is
/// restored: the devices a half-done quarantine deauthorized are authorized again.
pub(super) fn plan_existing(
    agent: &Agent,
    server: &Server,
    devices: &[&Device],
    facts: &Facts<'_>,
    actions: &mut Vec<Action>,
    notes: &mut Vec<Note>,
) {
    let (fleet, ctx) = (facts.fleet, facts.ctx);
    let env = EnvView::new(&fleet.settings, &ctx.env_key);
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
    if matches!(
        operation::pending(server),
        Some((Operation::Quarantine | Operation::Restore, _))
    ) {
        let devs = quarantine::devices_of(server, None, Some(&devices.to_vec()));
        actions.push(quarantine::restore(
            agent,
            server,
            devs,
            server.name.clone(),
        ));
        return;
    }
    let mut want = labels::server_labels(agent, &fleet.settings);
    let effective =
        runtime::effective_labels(agent, server, &fleet.settings, ctx.previous.as_ref());
    let have = effective.as_ref().unwrap_or(&server.labels);
    keep_agent_labels(have, &mut want);
    projects::keep_label(server, &mut want);
    let viewed = effective.as_ref().map(|labels| Server {
        labels: labels.clone(),
        ..server.clone()
    });
    let mut changes = fields::replacement_changes(
        agent,
        viewed.as_ref().unwrap_or(server),
        &want,
        ctx.previous.as_ref(),
        &env,
    );
    let to = agent.server.server_type.as_str();
    let refused = (server.server_type != to)
        .then(|| resize::refusal(server, to, facts.offer))
        .flatten();
    if refused.is_some() {
        fields::force_type_change(&mut changes, server, agent);
    }
    if !changes.is_empty() {
        if agent.protect || safety::is_protected(server) {
            // Keep the recorded spec hash: relabelling it would hide the pending replacement.
            match server.labels.get(labels::SPEC) {
                Some(have) => want.insert(labels::SPEC.to_owned(), have.clone()),
                None => want.remove(labels::SPEC),
            };
            blocked(&name, server, to, changes, refused.clone(), notes);
        } else {
            // The new server starts with no operation under way.
            want.remove(labels::OPERATION);
            actions.push(Action::Replace {
                agent: name,
                server_id: server.id,
                changes,
                old_devices: devices.iter().map(|d| d.id.clone()).collect(),
                server_type: agent.server.server_type.as_str().to_owned(),
                location: agent.server.location.as_str().to_owned(),
                image: agent.server.image.as_str().to_owned(),
                labels: projects::replacement_labels(agent, want),
            });
            return;
        }
    }
    let resize = refused.is_none()
        && (server.server_type != to
            || operation::pending(server).is_some_and(|(op, _)| op == Operation::Resize));
    if resize {
        actions.push(Action::Resize {
            agent: name.clone(),
            server_id: server.id,
            from: server.server_type.clone(),
            to: agent.server.server_type.as_str().to_owned(),
        });
    }
    let update = runtime::update(
        agent,
        server,
        have,
        ctx.previous.as_ref(),
        ctx.halted_rollout.as_ref(),
        &env,
    );
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
    match update {
        Some(Ok(action)) => actions.push(action),
        Some(Err(note)) => notes.push(note),
        None => {}
    }
    duplicate_devices(&name, server, devices, actions);
    if server.status == ServerStatus::Running && !devices.iter().any(|d| d.online) {
        notes.push(Note::Unhealthy {
            agent: name,
            server_id: server.id,
        });
    }
}

/// The notes of a protected agent whose spec needs a new server: why the type change cannot be
/// made in place (`refused`), and which other fields force a replacement.
fn blocked(
    agent: &str,
    server: &Server,
    to: &str,
    changes: Vec<Change>,
    refused: Option<String>,
    notes: &mut Vec<Note>,
) {
    let fields: Vec<String> = changes
        .into_iter()
        .filter(|c| c.forces_replacement && !(refused.is_some() && c.field == fields::SERVER_TYPE))
        .map(|c| c.field)
        .collect();
    if let Some(reason) = refused {
        notes.push(Note::ResizeBlocked {
            agent: agent.to_owned(),
            server_id: server.id,
            from: server.server_type.clone(),
            to: to.to_owned(),
            reason,
        });
    }
    if !fields.is_empty() {
        notes.push(Note::ReplaceBlocked {
            agent: agent.to_owned(),
            server_id: server.id,
            fields,
        });
    }
}

/// The labels the on-VM agent's channel, self-healing and the operations own are kept as the
/// server has them: the `tether/runtime` label moves only when a rollout wave is healthy (and
/// `tether/runtime-halted` only when one halts), `tether/agent-key` only when the agent's
/// credential is minted or rotated, a remedy's journal (`tether/heal-*`) only when the next
/// remedy starts, and a recorded operation (`tether/operation`) is removed only by the
/// operation's own last step.
fn keep_agent_labels(have: &BTreeMap<String, String>, want: &mut BTreeMap<String, String>) {
    for key in [
        labels::RUNTIME,
        labels::AGENT_KEY,
        labels::OPERATION,
        labels::HEAL_ATTEMPT,
        labels::HEAL_REMEDY,
        labels::HEAL_AT,
        labels::RUNTIME_HALTED,
    ] {
        if let Some(value) = have.get(key) {
            want.insert(key.to_owned(), value.clone());
        }
    }
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
