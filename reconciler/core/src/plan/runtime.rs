//! Runtime fields (the runtime version and env) are delivered in place by the on-VM agent, never
//! by a new server: what the planner reads from a server's `tether/runtime` label, how servers
//! labelled before that change are read, and how an update is cut into health-gated waves.
//!
//! Start at [`update`]; [`assign_waves`] numbers the updates of a plan; [`effective_labels`] is
//! the one-time reading of pre-upgrade servers (decision 023).

use super::env::EnvView;
use super::{Action, Change, Note};
use crate::compute::Server;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tether_schema::{Agent, Fleet, FleetSettings, Power, labels};

/// A rollout the daemon halted: the plan does not start it again while the spec asks for the
/// same version (agents' env differs, so the version is what names a rollout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Halted {
    /// The `tether/runtime` hash of the runtime that failed (of the agent that failed).
    pub runtime: String,
    /// The version that failed.
    pub version: String,
    /// Why, as recorded on the status branch.
    pub reason: String,
}

/// The labels `server` is planned with. A server created before runtime fields left the
/// `tether/spec` hash has no `tether/runtime` label and a legacy spec hash; when that hash is
/// the desired agent's (or the last applied agent's), it is read as the equivalent new pair,
/// so upgrading tether relabels such servers once instead of replacing them. Any other server
/// is read as labelled.
pub fn effective_labels(
    agent: &Agent,
    server: &Server,
    settings: &FleetSettings,
    previous: Option<&Fleet>,
) -> Option<BTreeMap<String, String>> {
    if server.labels.contains_key(labels::RUNTIME) {
        return None;
    }
    let spec = server.labels.get(labels::SPEC)?;
    let created_from = if *spec == labels::legacy_replacement_hash(agent, settings) {
        Some((agent, settings))
    } else {
        previous.and_then(|p| {
            let old = p.agents.get(agent.name.as_str())?;
            (*spec == labels::legacy_replacement_hash(old, &p.settings))
                .then_some((old, &p.settings))
        })
    };
    let (old, old_settings) = created_from?;
    let mut labels = server.labels.clone();
    labels.insert(
        labels::SPEC.to_owned(),
        labels::replacement_hash(old, old_settings),
    );
    labels.insert(labels::RUNTIME.to_owned(), labels::runtime_hash(old));
    Some(labels)
}

/// The in-place update that brings the server's runtime (its effective `tether/runtime`
/// label) to the agent's, if they differ and the server is meant to run; `None` otherwise.
/// A version whose rollout was halted gives a [`Note::RolloutHalted`] instead.
pub fn update(
    agent: &Agent,
    server: &Server,
    have: &BTreeMap<String, String>,
    previous: Option<&Fleet>,
    halted: Option<&Halted>,
    env: &EnvView<'_>,
) -> Option<Result<Action, Note>> {
    let current = have.get(labels::RUNTIME)?;
    let want = labels::runtime_hash(agent);
    if *current == want || agent.power == Power::Off {
        return None;
    }
    if let Some(h) = halted.filter(|h| h.version == agent.runtime.version.as_str()) {
        return Some(Err(Note::RolloutHalted {
            agent: agent.name.as_str().to_owned(),
            version: h.version.clone(),
            reason: h.reason.clone(),
        }));
    }
    let old = previous
        .and_then(|p| p.agents.get(agent.name.as_str()))
        .filter(|old| labels::runtime_hash(old) == *current);
    Some(Ok(Action::UpdateRuntime {
        agent: agent.name.as_str().to_owned(),
        server_id: server.id,
        from: old.map(|o| o.runtime.version.as_str().to_owned()),
        to: agent.runtime.version.as_str().to_owned(),
        changes: changes(old, agent, env),
        wave: 0,
    }))
}

/// Holds the runtime updates to a version whose rollout halted on one of `managed` (its server
/// carries `tether/runtime-halted` with the hash of its agent's spec runtime): the halt the
/// daemon wrote on the server before rolling back, which holds even when the daemon died
/// before its status commit recorded it. Each held update becomes a [`Note::RolloutHalted`].
pub fn hold_halted_on_servers(
    fleet: &Fleet,
    managed: &BTreeMap<&str, &Server>,
    actions: &mut Vec<Action>,
    notes: &mut Vec<Note>,
) {
    let halted: BTreeMap<&str, &str> = managed
        .iter()
        .filter_map(|(name, server)| {
            let agent = fleet.agents.get(*name)?;
            let label = server.labels.get(labels::RUNTIME_HALTED)?;
            (*label == labels::runtime_hash(agent))
                .then_some((agent.runtime.version.as_str(), *name))
        })
        .collect();
    if halted.is_empty() {
        return;
    }
    actions.retain(|action| {
        let Action::UpdateRuntime { agent, to, .. } = action else {
            return true;
        };
        let Some(on) = halted.get(to.as_str()) else {
            return true;
        };
        notes.push(Note::RolloutHalted {
            agent: agent.clone(),
            version: to.clone(),
            reason: format!(
                "rollout halted: {to} failed on {on} (recorded on its server's {} label)",
                labels::RUNTIME_HALTED
            ),
        });
        false
    });
}

/// The runtime fields that differ, shown as a plan shows them (env hidden unless public);
/// without a record of the old runtime, every field of the new one.
fn changes(old: Option<&Agent>, new: &Agent, env: &EnvView<'_>) -> Vec<Change> {
    let mut out = Vec::new();
    let from = old.map(|o| o.runtime.version.as_str().to_owned());
    if from.as_deref() != Some(new.runtime.version.as_str()) {
        out.push(Change {
            field: "runtime version".to_owned(),
            from,
            to: new.runtime.version.as_str().to_owned(),
            forces_replacement: false,
        });
    }
    out.extend(env.changes(old, new, false));
    out
}

/// The size of each wave of a rollout over `agents` agents: a canary of one, then batches
/// doubling up to `budget` (at least one) until every agent is covered.
pub fn wave_sizes(agents: usize, budget: usize) -> Vec<usize> {
    let cap = budget.max(1);
    let mut sizes = Vec::new();
    let (mut left, mut next) = (agents, 1usize);
    while left > 0 {
        let size = next.min(cap).min(left);
        sizes.push(size);
        left -= size;
        next = next.saturating_mul(2);
    }
    sizes
}

/// Numbers the plan's runtime updates into waves (1 = the canary) in agent order, each wave
/// within `budget` agents.
pub fn assign_waves(actions: &mut [Action], budget: usize) {
    let mut updates: Vec<&mut u32> = actions
        .iter_mut()
        .filter_map(|a| match a {
            Action::UpdateRuntime { wave, .. } => Some(wave),
            _ => None,
        })
        .collect();
    let sizes = wave_sizes(updates.len(), budget);
    let mut slots = updates.iter_mut();
    for (number, size) in (1u32..).zip(sizes) {
        for slot in slots.by_ref().take(size) {
            **slot = number;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_start_with_one_canary_and_double_within_the_budget() {
        assert_eq!(wave_sizes(0, 5), Vec::<usize>::new());
        assert_eq!(wave_sizes(1, 5), vec![1]);
        assert_eq!(wave_sizes(7, 5), vec![1, 2, 4]);
        assert_eq!(
            wave_sizes(50, 5),
            [vec![1, 2, 4], vec![5; 8], vec![3]].concat()
        );
        assert_eq!(wave_sizes(3, 0), vec![1, 1, 1]);
        assert_eq!(wave_sizes(50, 5).iter().sum::<usize>(), 50);
    }
}
