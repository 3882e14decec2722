//! Self-healing provisions (`spec.policy.heal`): a running server that never joined the
//! tailnet is re-keyed (rebuilt with a fresh one-off key, same server) or replaced; one whose
//! device went offline is power-cycled, then replaced. Pure: the pass's time and what the
//! status branch remembers of earlier passes ([`Record`], in [`Context::heal`]) come in.
//!
//! # Guarantees
//! - Remedies act only on corroborated facts: a problem must be seen by
//!   `observations` consecutive passes whose device listing is complete ([`hold`]); a pass that
//!   could not list devices never plans (the observation fails it first), and a listing that
//!   looks partial advances no counter and takes no remedy on any agent.
//! - A device counts as offline only when Tailscale says so: not connected to the control
//!   plane *and* `lastSeen` older than `offlineThreshold`.
//! - At most `maxAttempts` remedies per agent, each after a doubling backoff; then the agent
//!   is marked failed with its reason and nothing more is done until it is healthy again (or
//!   its record is cleared). Each replacement creates one server, so no more than
//!   `maxAttempts + 1` servers ever exist for one agent's problem.
//! - Every remedy is a disruption ([`super::safety::disrupts`]) and passes the budgets.
//! - Attempts count whether or not the pass that made them lived to commit: the executor
//!   writes each attempt on its server ([`journal`]) before the remedy's first mutation, and
//!   the planner counts the furthest attempt found on the agent's servers, retired ones
//!   included. So kills never raise the cap, and a replacement left half done is found by its
//!   retired server and its name, never started again.

pub mod journal;

use super::inventory::{Inventory, owned_devices};
use super::{Action, Context, Note, Observed, safety};
use crate::compute::{Server, ServerStatus};
use crate::tailnet::Device;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use tether_schema::heal::HealPolicy;
use tether_schema::{Fleet, Power, grace, labels};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What a remedy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Remedy {
    /// Rebuild the same server with a fresh one-off auth key in its cloud-init (the disk is
    /// wiped: only for a server that never joined).
    Rekey,
    /// Hard-reset the server.
    PowerCycle,
    /// Create a new server, retire the old one.
    Replace,
}

impl Remedy {
    /// The remedy's name, as in the plan and the status branch.
    pub fn as_str(self) -> &'static str {
        match self {
            Remedy::Rekey => "rekey",
            Remedy::PowerCycle => "power-cycle",
            Remedy::Replace => "replace",
        }
    }

    /// The remedy named `text`.
    pub fn parse(text: &str) -> Option<Remedy> {
        [Remedy::Rekey, Remedy::PowerCycle, Remedy::Replace]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// What the status branch remembers of an agent's healing (`heal:` in `status/<agent>.yaml`);
/// absent while the agent is healthy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Consecutive passes, on complete listings, that saw the problem.
    pub observations: u32,
    /// Remedies taken since the agent was last healthy.
    pub attempts: u32,
    /// When the last remedy was taken, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<String>,
    /// The last remedy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_remedy: Option<Remedy>,
    /// Set once the attempts are used up: why the agent is failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

impl Record {
    /// Whether there is nothing to remember.
    pub fn is_clear(&self) -> bool {
        *self == Record::default()
    }
}

/// What is wrong with an agent's server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    /// No device of it joined within the deadline (`since`: its creation or the last remedy).
    NeverEnrolled { seconds: i64, after: &'static str },
    /// Its devices are offline, the newest last seen `seconds` ago.
    Offline { seconds: i64 },
}

impl Problem {
    fn describe(&self) -> String {
        match self {
            Problem::NeverEnrolled { seconds, after } => format!(
                "never enrolled {} after {after}",
                grace::format(u64::try_from(*seconds).unwrap_or(0))
            ),
            Problem::Offline { seconds } => format!(
                "device offline, last seen {} ago",
                grace::format(u64::try_from(*seconds).unwrap_or(0))
            ),
        }
    }

    fn remedy(&self, policy: &HealPolicy, attempt: u32) -> Remedy {
        match self {
            Problem::NeverEnrolled { .. } if attempt <= policy.rekeys => Remedy::Rekey,
            Problem::Offline { .. } if attempt <= policy.power_cycles => Remedy::PowerCycle,
            _ => Remedy::Replace,
        }
    }
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Why this pass's device listing cannot be trusted, if it cannot: it is empty while the
/// status branch records devices of this fleet, or it lacks a recorded device of an agent
/// whose current server runs.
pub(super) fn hold(
    observed: &Observed,
    inventory: &Inventory<'_>,
    ctx: &Context,
) -> Option<String> {
    if observed.devices.is_empty() && !ctx.owned_devices.is_empty() {
        return Some(format!(
            "the Tailscale device listing is empty while the status branch records {} device(s) of this fleet",
            ctx.owned_devices.len()
        ));
    }
    let listed: BTreeSet<&str> = observed.devices.iter().map(|d| d.id.0.as_str()).collect();
    ctx.owned_devices
        .iter()
        .find(|(id, agent)| {
            !listed.contains(id.0.as_str())
                && inventory
                    .managed
                    .get(agent.as_str())
                    .is_some_and(|s| s.status == ServerStatus::Running)
        })
        .map(|(id, agent)| {
            format!(
                "device {id} of agent {agent} is recorded on the status branch but missing from the Tailscale listing, and its server runs"
            )
        })
}

/// Everything [`plan`] reads.
pub(super) struct Inputs<'a> {
    pub fleet: &'a Fleet,
    pub observed: &'a Observed,
    pub inventory: &'a Inventory<'a>,
    pub devices: &'a BTreeMap<String, Vec<&'a Device>>,
    pub ctx: &'a Context,
}

/// Plans the remedies of this pass, appending them to `actions` (after the other rules, so an
/// agent with any other action is left to it) and what was seen to `notes`; returns every
/// agent's record after this pass's observation (attempts are counted once applied).
pub(super) fn plan(
    input: &Inputs<'_>,
    actions: &mut Vec<Action>,
    notes: &mut Vec<Note>,
) -> BTreeMap<String, Record> {
    let policy = input.fleet.settings.policy.heal;
    let mut records = BTreeMap::new();
    if !policy.enabled {
        return records;
    }
    let held = hold(input.observed, input.inventory, input.ctx);
    if let Some(reason) = &held {
        notes.push(Note::HealHeld {
            reason: reason.clone(),
        });
    }
    let busy: BTreeSet<String> = actions.iter().map(|a| a.agent().to_owned()).collect();
    for (name, agent) in &input.fleet.agents {
        let name = name.as_str();
        let devices = input.devices.get(name).map_or(&[][..], Vec::as_slice);
        let recorded = input.ctx.heal.get(name).cloned().unwrap_or_default();
        let previous = match journal::newest(servers_of(input.inventory, name), devices) {
            Some(started) => started.merge_into(recorded),
            None => recorded,
        };
        let Some(server) = input.inventory.managed.get(name).copied() else {
            if !previous.is_clear() {
                records.insert(name.to_owned(), previous);
            }
            continue;
        };
        let healthy = devices
            .iter()
            .any(|d| d.online && safety::joined_after(d, server));
        if healthy || agent.power == Power::Off || busy.contains(name) {
            if !healthy && !previous.is_clear() {
                records.insert(name.to_owned(), previous);
            }
            continue;
        }
        let seen = Seen {
            agent: name,
            server,
            devices,
            held: held.is_some(),
            // Hetzner refuses a rebuild of a rebuild-protected server: no re-key either.
            protected: agent.protect || safety::is_protected(server) || server.rebuild_protected,
        };
        let record = agent_course(&seen, previous, &policy, input.ctx, actions, notes);
        if !record.is_clear() {
            records.insert(name.to_owned(), record);
        }
    }
    records
}

/// `agent`'s servers: its current one and its retired ones (the old halves of replacements).
fn servers_of<'a>(inventory: &Inventory<'a>, agent: &'a str) -> impl Iterator<Item = &'a Server> {
    inventory.managed.get(agent).copied().into_iter().chain(
        inventory
            .retired
            .iter()
            .copied()
            .filter(move |s| s.labels.get(labels::AGENT).is_some_and(|a| a == agent)),
    )
}

/// Agents with a remedy started and not yet seen to work: an attempt is recorded on one of
/// their servers ([`journal`]) and no device of theirs was seen since. A key minted for such
/// an agent belongs to a remedy that a kill cut short (a finished pass revokes its remedy's
/// key itself), so the key sweep revokes it at once instead of sparing it as in flight.
pub fn remedies_in_progress(fleet: &Fleet, observed: &Observed, ctx: &Context) -> BTreeSet<String> {
    let inventory = Inventory::classify(&observed.servers, fleet.settings.name.as_str());
    let devices = owned_devices(fleet, observed, &inventory, ctx, &mut Vec::new());
    let agents: BTreeSet<&str> = inventory
        .managed
        .keys()
        .copied()
        .chain(
            inventory
                .retired
                .iter()
                .filter_map(|s| s.labels.get(labels::AGENT).map(String::as_str)),
        )
        .collect();
    agents
        .into_iter()
        .filter(|agent| {
            let devs = devices.get(*agent).map_or(&[][..], Vec::as_slice);
            journal::newest(servers_of(&inventory, agent), devs).is_some()
        })
        .map(str::to_owned)
        .collect()
}

/// What this pass sees of one agent.
struct Seen<'a> {
    agent: &'a str,
    server: &'a Server,
    devices: &'a [&'a Device],
    /// The listing is suspect ([`hold`]).
    held: bool,
    /// The agent or its server is protected: no re-key, no replacement.
    protected: bool,
}

/// One agent's problem, counted, backed off, remedied or given up on.
fn agent_course(
    seen: &Seen<'_>,
    mut record: Record,
    policy: &HealPolicy,
    ctx: &Context,
    actions: &mut Vec<Action>,
    notes: &mut Vec<Note>,
) -> Record {
    let Seen {
        agent,
        server,
        devices,
        held,
        protected,
    } = *seen;
    let note = |message: String, failed: bool| Note::Healing {
        agent: agent.to_owned(),
        server_id: server.id,
        message,
        failed,
    };
    if let Some(reason) = &record.failed {
        notes.push(note(reason.clone(), true));
        return record;
    }
    let Some(now) = ctx.now else {
        return record;
    };
    if server.status != ServerStatus::Running {
        return record;
    }
    let Some(problem) = problem(server, devices, &record, policy, now) else {
        record.observations = 0;
        return record;
    };
    let what = problem.describe();
    if held {
        notes.push(note(
            format!("{what}; not counted: the device listing looks partial"),
            false,
        ));
        return record;
    }
    record.observations = record.observations.saturating_add(1);
    if record.observations < policy.observations {
        notes.push(note(
            format!(
                "{what}; seen {}/{} time(s) before a remedy",
                record.observations, policy.observations
            ),
            false,
        ));
        return record;
    }
    if record.attempts >= policy.max_attempts {
        let reason = format!(
            "self-healing gave up after {} attempt(s) (last: {}): {what}",
            record.attempts,
            record.last_remedy.map_or("none", Remedy::as_str)
        );
        notes.push(note(reason.clone(), true));
        record.failed = Some(reason);
        return record;
    }
    if let Some(next) = next_attempt(&record, policy)
        && now < next
    {
        notes.push(note(
            format!(
                "{what}; attempt {}/{} waits for its backoff until {}",
                record.attempts + 1,
                policy.max_attempts,
                next.format(&Rfc3339).unwrap_or_default()
            ),
            false,
        ));
        return record;
    }
    let attempt = record.attempts + 1;
    let remedy = problem.remedy(policy, attempt);
    if protected && remedy != Remedy::PowerCycle {
        notes.push(note(
            format!(
                "{what}; a {} would wipe or replace it, and it is protected: remedy it by hand",
                remedy.as_str()
            ),
            false,
        ));
        return record;
    }
    actions.push(Action::Heal {
        agent: agent.to_owned(),
        server_id: server.id,
        remedy,
        attempt,
        max_attempts: policy.max_attempts,
        old_devices: devices.iter().map(|d| d.id.clone()).collect(),
        reason: format!(
            "{} {attempt}/{}: {what}",
            remedy.as_str().replace('-', " "),
            policy.max_attempts
        ),
    });
    record
}

/// What is wrong, if anything: no device of the server within the deadline after its creation
/// (or the last remedy), or every device of it offline past the threshold.
fn problem(
    server: &Server,
    devices: &[&Device],
    record: &Record,
    policy: &HealPolicy,
    now: OffsetDateTime,
) -> Option<Problem> {
    let created = parse_time(&server.created)?;
    let last = record.last_attempt.as_deref().and_then(parse_time);
    let ours: Vec<&&Device> = devices
        .iter()
        .filter(|d| safety::joined_after(d, server))
        .collect();
    if ours.is_empty() {
        let (since, after) = match last {
            Some(t) if t > created => (t, "the last remedy"),
            _ => (created, "creation"),
        };
        let seconds = (now - since).whole_seconds();
        let deadline = i64::try_from(policy.enrolment_deadline).unwrap_or(i64::MAX);
        return (seconds >= deadline).then_some(Problem::NeverEnrolled { seconds, after });
    }
    let threshold = i64::try_from(policy.offline_threshold).unwrap_or(i64::MAX);
    let mut newest: Option<i64> = None;
    for d in ours {
        if d.online {
            return None;
        }
        let seen = d.last_seen.as_deref().and_then(parse_time)?;
        let ago = (now - seen).whole_seconds();
        newest = Some(newest.map_or(ago, |n| n.min(ago)));
    }
    let seconds = newest?;
    (seconds >= threshold).then_some(Problem::Offline { seconds })
}

/// When the next attempt may be made: the last one plus `backoff × 2^(attempts−1)`.
fn next_attempt(record: &Record, policy: &HealPolicy) -> Option<OffsetDateTime> {
    let last = parse_time(record.last_attempt.as_deref()?)?;
    let doublings = record.attempts.saturating_sub(1).min(20);
    let wait = policy.backoff.saturating_mul(1u64 << doublings);
    last.checked_add(time::Duration::seconds(
        i64::try_from(wait).unwrap_or(i64::MAX),
    ))
}

#[cfg(test)]
mod tests;
