//! The safety rules, in one place: what tether may touch and how much of it at once. The
//! planner decides with them and the executor re-checks with them on the live inventory right
//! before every destructive or disruptive call. Pure: no I/O, no clock.
//!
//! # Guarantees
//! - **Servers.** A server is this fleet's only when its `tether/fleet` label names the fleet
//!   and its `tether/agent` label names the agent ([`owns_server`]); nothing else is ever
//!   deleted, disrupted or relabelled. A protected server ([`is_protected`]: the
//!   `tether/protect=true` label or Hetzner delete protection) is never deleted or replaced,
//!   retired servers included.
//! - **Devices.** A device is this fleet's only with proof ([`device_owner`]): its id is in the
//!   fleet's device record (written on the status branch by earlier passes), or it is attached
//!   to a server this fleet owns (its hostname is that server's name, all its tags are fleet
//!   tags, and it joined after the server was created). A device whose hostname is the name of
//!   a server this fleet does not own is never touched, recorded or not.
//! - **Budgets.** Per run: at most [`deletion_budget`] server deletions (a plan over it is
//!   refused as a whole), at most [`disruption_budget`] agents disrupted (replace, resize, power
//!   off, quarantine; the rest wait for later runs, counting replacements still in progress), at most
//!   [`deletion_budget`] of the fleet's devices deleted on their own (the rest wait). Across runs:
//!   at most `maxDeletionsPerHour` servers deleted in any rolling hour, counted from the status
//!   branch (deletions beyond it wait); without a status branch (`tether apply --fleet` on a
//!   folder) nothing remembers earlier runs, and it holds within the run only.
//! - **Fail closed.** Without a recorded baseline (no status branch, or it could not be read), a
//!   plan that deletes or quarantines any server is refused unless the operator confirms with
//!   `--allow-shrink`; so is a shrink beyond [`shrink_budget`] since the last applied revision.
//!   Reversible and irreversible steps are budgeted apart: the shrink breaker and the
//!   disruption budget bound quarantines (a removed spec's server powered off, restorable), the
//!   deletion budgets bound deletions.
//!
//! # Assumptions
//! - Hetzner server names are unique within a project, and Tailscale device ids are never
//!   reused.
//! - Two fleets in different Hetzner projects that share a tailnet do not use the same agent
//!   names: attachment by hostname cannot tell their devices apart (recorded devices can).

use super::{Action, Context, Note};
use crate::compute::Server;
use crate::tailnet::Device;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use tether_schema::{Fleet, labels};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Whether `server` carries this fleet's and `agent`'s ownership labels, and its
/// `tether/project` label names the project it was listed in (neither, with one token): a
/// server whose label disagrees with where it lives is not this fleet's.
pub fn owns_server(server: &Server, fleet: &str, agent: &str) -> bool {
    server.labels.get(labels::FLEET).is_some_and(|f| f == fleet)
        && server.labels.get(labels::AGENT).is_some_and(|a| a == agent)
        && server.labels.get(labels::PROJECT) == server.project.as_ref()
}

/// Whether `server` must never be deleted or replaced: `tether/protect=true` (the agent's spec
/// said `protect: true` when it was last applied) or Hetzner delete protection.
pub fn is_protected(server: &Server) -> bool {
    server
        .labels
        .get(labels::PROTECT)
        .is_some_and(|v| v == "true")
        || server.delete_protected
}

/// How a device was proven to be this fleet's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// Its id is in the fleet's device record.
    Recorded,
    /// It joined as the hostname of a server this fleet owns, after that server was created.
    Attached,
}

/// The agent `device` belongs to and how that is known, or `None` when this fleet cannot prove
/// it owns the device.
///
/// `owned` are the fleet's servers (current, retired and quarantined) by the agent they serve;
/// `foreign_names` the names of every other server in the project. A device named like another
/// server is this fleet's only by its record, and only while the fleet still holds a server of
/// the recorded agent (a quarantined server whose name was taken meanwhile).
pub fn device_owner<'a>(
    device: &Device,
    ctx: &'a Context,
    owned: &'a BTreeMap<&'a str, Vec<&'a Server>>,
    foreign_names: &BTreeSet<&str>,
    fleet_tags: &BTreeSet<&str>,
) -> Option<(&'a str, Proof)> {
    let recorded = ctx.owned_devices.get(&device.id);
    if foreign_names.contains(device.hostname.as_str()) {
        return recorded
            .filter(|agent| *agent == &device.hostname && owned.contains_key(agent.as_str()))
            .map(|agent| (agent.as_str(), Proof::Recorded));
    }
    if let Some(agent) = recorded {
        return Some((agent.as_str(), Proof::Recorded));
    }
    let tags_ok =
        !device.tags.is_empty() && device.tags.iter().all(|t| fleet_tags.contains(t.as_str()));
    let (agent, servers) = owned.get_key_value(device.hostname.as_str())?;
    let attached = tags_ok && servers.iter().any(|s| joined_after(device, s));
    attached.then_some((*agent, Proof::Attached))
}

/// Whether `device` joined the tailnet at or after `server` was created, comparing the two
/// RFC 3339 times as instants (Hetzner writes `+00:00`, Tailscale `Z`). A time that does not
/// parse proves nothing.
pub fn joined_after(device: &Device, server: &Server) -> bool {
    let parse = |t: &str| OffsetDateTime::parse(t, &Rfc3339).ok();
    match (parse(&device.created), parse(&server.created)) {
        (Some(d), Some(s)) => d >= s,
        _ => false,
    }
}

/// How many servers one run may delete out of `managed`: `maxDeletionsPerRun`, and
/// `maxDeletionPercent` of `managed` (rounded down, but at least one).
pub fn deletion_budget(fleet: &Fleet, managed: usize) -> usize {
    let policy = fleet.settings.policy;
    let by_percent = (managed * policy.max_deletion_percent as usize / 100).max(1);
    by_percent.min(policy.max_deletions_per_run as usize)
}

/// How many agents one run may disrupt out of `managed`: `maxDisruptionsPerRun`, and
/// `maxDisruptionPercent` of `managed` (rounded down, but at least one).
pub fn disruption_budget(fleet: &Fleet, managed: usize) -> usize {
    let policy = fleet.settings.policy;
    let by_percent = (managed * policy.max_disruption_percent as usize / 100).max(1);
    by_percent.min(policy.max_disruptions_per_run as usize)
}

/// Server deletions still allowed in the rolling hour, after `recent` deletions in it; the
/// whole hourly allowance when nothing is recorded.
pub fn window_budget(fleet: &Fleet, recent: Option<usize>) -> usize {
    (fleet.settings.policy.max_deletions_per_hour as usize).saturating_sub(recent.unwrap_or(0))
}

/// Whether the action stops or replaces an agent's running server.
pub fn disrupts(action: &Action) -> bool {
    matches!(
        action,
        Action::Replace { .. }
            | Action::Resize { .. }
            | Action::PowerOff { .. }
            | Action::Quarantine { .. }
            | Action::Heal { .. }
    )
}

/// Why a plan may not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// Every safety rule the plan breaks.
    pub reasons: Vec<String>,
    /// What the operator can do.
    pub how_to_proceed: String,
}

/// Every safety rule `actions` break, or `None`.
pub fn check(actions: &[Action], fleet: &Fleet, managed: usize, ctx: &Context) -> Option<Refusal> {
    let policy = fleet.settings.policy;
    let mut reasons = Vec::new();
    let deletions = actions.iter().filter(|a| a.deletes_server()).count();
    let budget = deletion_budget(fleet, managed);
    if deletions > budget {
        reasons.push(format!(
            "the plan deletes {deletions} servers; the policy allows {budget} per run (maxDeletionsPerRun {}, maxDeletionPercent {}% of {managed} managed servers)",
            policy.max_deletions_per_run, policy.max_deletion_percent
        ));
    }
    let desired = fleet.agents.len();
    let quarantines = actions
        .iter()
        .filter(|a| matches!(a, Action::Quarantine { .. }))
        .count();
    match ctx.previous_agents {
        _ if ctx.allow_shrink => {}
        None if deletions > 0 => reasons.push(format!(
            "the plan deletes {deletions} server(s) and there is no record of an earlier applied revision to compare the fleet with (no readable status branch); tether does not delete without a baseline"
        )),
        None if quarantines > 0 => reasons.push(format!(
            "the plan quarantines {quarantines} server(s) (powers them off) and there is no record of an earlier applied revision to compare the fleet with (no readable status branch); tether does not power off removed agents without a baseline"
        )),
        None => {}
        Some(previous) => {
            let removed = previous.saturating_sub(desired);
            if desired == 0 && previous > 0 {
                reasons.push(format!("the fleet shrank from {previous} agents to none; a fleet that loads empty is almost always a mistake"));
            } else if removed > shrink_budget(fleet, previous) {
                reasons.push(format!(
                    "the fleet shrank from {previous} to {desired} agents since the last applied revision, more than the policy allows in one step ({}: the deletion budget of {previous} (maxDeletionsPerRun {}, maxDeletionPercent {}%), at least maxDisruptionsPerRun {})",
                    shrink_budget(fleet, previous),
                    policy.max_deletions_per_run,
                    policy.max_deletion_percent,
                    policy.max_disruptions_per_run
                ));
            }
        }
    }
    if reasons.is_empty() {
        return None;
    }
    // Without a baseline (and without --allow-shrink) the first reason is the missing baseline.
    let blind = ctx.previous_agents.is_none() && !ctx.allow_shrink;
    let how_to_proceed = match (blind, reasons.len()) {
        (true, 1) => NO_BASELINE.to_owned(),
        (true, _) => format!("{NO_BASELINE}. For the other reasons: {SHRINK}"),
        (false, _) => SHRINK.to_owned(),
    };
    Some(Refusal {
        reasons,
        how_to_proceed,
    })
}

/// What to do when the plan is refused for want of a baseline: read the status branch first.
const NO_BASELINE: &str = "the baseline is the status branch `tether/status`: run with `--git <repo>` (a folder has none), and fetch the branch into that repository first if it lives on a remote (`git fetch origin tether/status:tether/status`); `tether audit log` shows what it holds. Only for a fleet's very first run, with the deletions meant, re-run with `--allow-shrink`";

/// What to do when the plan shrinks the fleet more than the policy allows.
const SHRINK: &str = "check that the removed specs were meant to go, then remove them in smaller commits, raise `spec.policy` in fleet.yaml, or re-run with `--allow-shrink` if the shrink is intended. A refused plan changes nothing, so every later pass is refused the same way (adds included) until one is accepted: restore the removed specs, or apply once with `tether apply --git <repo> --allow-shrink` (the daemon goes on from that pass's baseline)";

/// How many agents the fleet may lose since the last applied revision (`previous` agents)
/// before the shrink circuit breaker refuses the plan: the per-run deletion budget of
/// `previous` ([`deletion_budget`]), but at least `maxDisruptionsPerRun`. A removed agent's
/// server is quarantined (powered off, restorable), not deleted, and quarantines are paced by
/// the disruption budget while deletions keep their own budgets; so a fleet may always lose as
/// many agents in one step as one run may disrupt, however small it is.
pub fn shrink_budget(fleet: &Fleet, previous: usize) -> usize {
    deletion_budget(fleet, previous).max(fleet.settings.policy.max_disruptions_per_run as usize)
}

/// Holds back what the budgets do not allow in this run, each with a [`Note::Deferred`]:
/// disruptions beyond the disruption budget (replacements in progress count), server
/// deletions beyond what is left of the hourly budget, and device deletions beyond the per-run
/// budget. Agents are taken in name order, so the same agents go first every run.
pub(super) fn limit(
    fleet: &Fleet,
    actions: Vec<Action>,
    notes: &mut Vec<Note>,
    managed: usize,
    in_progress: usize,
    owned_devices: usize,
    ctx: &Context,
) -> Vec<Action> {
    let disruption_budget = disruption_budget(fleet, managed);
    let mut disruptions_left = disruption_budget.saturating_sub(in_progress);
    let window = window_budget(fleet, ctx.recent_deletions);
    let mut window_left = window;
    let device_budget = deletion_budget(fleet, owned_devices);
    let mut devices_left = device_budget;
    let mut disrupted: BTreeSet<String> = BTreeSet::new();
    let mut sorted = actions;
    sorted.sort_by(|a, b| a.agent().cmp(b.agent()));
    let mut kept = Vec::with_capacity(sorted.len());
    for action in sorted {
        let agent = action.agent().to_owned();
        let deferred = if disrupts(&action) {
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
