//! The invariants every pass checks at its end, after the refresh, over what its record is about
//! to say: no managed server is off unless its spec says so or it is quarantined; no Ready agent
//! lacks an authorized device; no operation is pending past its deadline; every key tether
//! minted is used or revoked. Pure: [`check`] takes the fleet, the inventory after the pass, the
//! agents' statuses, the devices the fleet owns, the tailnet's keys and the pending operations.
//!
//! Pending operations come in as plain [`Pending`] values, so any durable record of an
//! operation in flight can add its own; [`pending_in_inventory`] gives the ones the servers'
//! labels show today (quarantines waiting for their delete, replacements left half done).

use super::ledger::DELETION_WINDOW;
use super::status::{AgentStatus, Phase};
use crate::apply::keys::{self, FleetMarker};
use crate::cloud::tailscale::{AuthKey, AuthKeyId, Device, DeviceId};
use crate::cloud::{ServerId, ServerStatus};
use crate::plan::Observed;
use std::collections::BTreeMap;
use std::fmt;
use tether_schema::{Fleet, Power, labels};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One invariant, as the metric's `invariant` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    /// No managed server is off unless its spec says `power: off` or it is quarantined.
    ServerOff,
    /// No Ready agent has a missing or unauthorized device.
    ReadyDevice,
    /// No operation is pending past its deadline.
    Overdue,
    /// Every key tether minted is used or revoked.
    LiveKey,
}

impl Invariant {
    /// Every invariant, in the order they are reported.
    pub const ALL: [Invariant; 4] = [
        Invariant::ServerOff,
        Invariant::ReadyDevice,
        Invariant::Overdue,
        Invariant::LiveKey,
    ];

    /// The label value: `server-off`, `ready-device`, `overdue-operation`, `live-key`.
    pub fn as_str(self) -> &'static str {
        match self {
            Invariant::ServerOff => "server-off",
            Invariant::ReadyDevice => "ready-device",
            Invariant::Overdue => "overdue-operation",
            Invariant::LiveKey => "live-key",
        }
    }
}

/// An operation on an agent that is not finished, and when it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The agent it works on.
    pub agent: String,
    /// What it is, for people: `delete quarantined server 42`.
    pub operation: String,
    /// When it should be done by.
    pub deadline: OffsetDateTime,
}

/// One broken invariant, naming what breaks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    /// A managed server is off, though its spec says `power: on` (or it has no spec) and it is
    /// not quarantined.
    ServerOff {
        /// The agent.
        agent: String,
        /// The server.
        server: ServerId,
    },
    /// The record calls the agent Ready, yet none of its devices is online and authorized.
    ReadyWithoutDevice {
        /// The agent.
        agent: String,
        /// Its device that is online but not authorized, when there is one.
        unauthorized: Option<DeviceId>,
    },
    /// An operation is still pending past its deadline.
    Overdue {
        /// The agent.
        agent: String,
        /// The operation.
        operation: String,
        /// Its deadline, RFC 3339.
        deadline: String,
    },
    /// A key tether minted for this fleet is still valid, and no server of it awaits its
    /// enrolment.
    LiveKey {
        /// The key (its id; never its secret).
        key: AuthKeyId,
        /// The agent its description names, possibly cut.
        agent: Option<String>,
    },
}

impl Breach {
    /// The invariant it breaks.
    pub fn invariant(&self) -> Invariant {
        match self {
            Breach::ServerOff { .. } => Invariant::ServerOff,
            Breach::ReadyWithoutDevice { .. } => Invariant::ReadyDevice,
            Breach::Overdue { .. } => Invariant::Overdue,
            Breach::LiveKey { .. } => Invariant::LiveKey,
        }
    }

    /// The agent it concerns, when one.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Breach::ServerOff { agent, .. }
            | Breach::ReadyWithoutDevice { agent, .. }
            | Breach::Overdue { agent, .. } => Some(agent),
            Breach::LiveKey { agent, .. } => agent.as_deref(),
        }
    }
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Breach::ServerOff { agent, server } => write!(
                f,
                "{agent}: server {server} is off, though its spec does not say `power: off` and it is not quarantined"
            ),
            Breach::ReadyWithoutDevice {
                agent,
                unauthorized: Some(device),
            } => write!(
                f,
                "{agent}: Ready, but its device {device} is not authorized"
            ),
            Breach::ReadyWithoutDevice {
                agent,
                unauthorized: None,
            } => write!(f, "{agent}: Ready, but no device of it is online"),
            Breach::Overdue {
                agent,
                operation,
                deadline,
            } => write!(
                f,
                "{agent}: {operation} is still pending, due by {deadline}"
            ),
            Breach::LiveKey {
                key,
                agent: Some(agent),
            } => write!(
                f,
                "{agent}: auth key {key} is still valid and no server awaits it"
            ),
            Breach::LiveKey { key, agent: None } => {
                write!(f, "auth key {key} is still valid and no server awaits it")
            }
        }
    }
}

/// What the invariants are checked over.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The fleet as loaded.
    pub fleet: &'a Fleet,
    /// The inventory after the pass.
    pub observed: &'a Observed,
    /// The agents' statuses the record is about to write.
    pub agents: &'a [AgentStatus],
    /// The devices this fleet owns, id → agent.
    pub owned: &'a BTreeMap<DeviceId, String>,
    /// The tailnet's auth keys after the pass; `None` when they could not be read (then the
    /// key invariant is not judged).
    pub keys: Option<&'a [AuthKey]>,
    /// The operations not finished.
    pub pending: &'a [Pending],
    /// The pass's time.
    pub now: OffsetDateTime,
}

/// Every broken invariant, in [`Invariant::ALL`] order, then by agent.
pub fn check(facts: &Facts<'_>) -> Vec<Breach> {
    let mut breaches = servers_off(facts);
    breaches.extend(ready_without_device(facts));
    breaches.extend(overdue(facts));
    breaches.extend(live_keys(facts));
    breaches
}

fn servers_off(facts: &Facts<'_>) -> Vec<Breach> {
    crate::plan::managed_servers(facts.fleet, facts.observed)
        .into_iter()
        .filter(|(_, server)| server.status == ServerStatus::Off)
        .filter(|(agent, _)| {
            facts
                .fleet
                .agents
                .get(*agent)
                .is_none_or(|a| a.power != Power::Off)
        })
        .map(|(agent, server)| Breach::ServerOff {
            agent: agent.to_owned(),
            server: server.id,
        })
        .collect()
}

fn ready_without_device(facts: &Facts<'_>) -> Vec<Breach> {
    let mut online: BTreeMap<&str, Vec<&Device>> = BTreeMap::new();
    for d in facts.observed.devices.iter().filter(|d| d.online) {
        if let Some(agent) = facts.owned.get(&d.id) {
            online.entry(agent.as_str()).or_default().push(d);
        }
    }
    facts
        .agents
        .iter()
        .filter(|a| a.phase == Phase::Ready)
        .filter(|a| {
            a.server
                .as_ref()
                .is_some_and(|s| s.status == ServerStatus::Running)
        })
        .filter_map(|a| {
            let devices = online.get(a.agent.as_str()).map_or(&[][..], Vec::as_slice);
            if devices.iter().any(|d| d.authorized) {
                return None;
            }
            Some(Breach::ReadyWithoutDevice {
                agent: a.agent.clone(),
                unauthorized: devices.first().map(|d| d.id.clone()),
            })
        })
        .collect()
}

fn overdue(facts: &Facts<'_>) -> Vec<Breach> {
    facts
        .pending
        .iter()
        .filter(|p| p.deadline <= facts.now)
        .map(|p| Breach::Overdue {
            agent: p.agent.clone(),
            operation: p.operation.clone(),
            deadline: p.deadline.format(&Rfc3339).unwrap_or_default(),
        })
        .collect()
}

fn live_keys(facts: &Facts<'_>) -> Vec<Breach> {
    let Some(keys) = facts.keys else {
        return Vec::new();
    };
    let marker = FleetMarker::of(&facts.fleet.settings.name);
    let awaiting = keys::awaiting_enrolment(facts.fleet, facts.observed, facts.owned);
    keys.iter()
        .filter(|k| !k.invalid && marker.owns(&k.description))
        .filter(|k| !keys::in_flight(&marker, k, &awaiting, facts.now))
        .map(|k| Breach::LiveKey {
            key: k.id.clone(),
            agent: marker.agent_of(&k.description).map(str::to_owned),
        })
        .collect()
}

/// The operations the servers' labels show pending: a quarantined server (not protected)
/// waits for its delete, due one deletion window after its grace period ends (the budget
/// may hold a delete back that long); a retired server is a replacement left half done, and a
/// server with a `tether/operation` label a resize, quarantine or restore left half done
/// (decision 030), each due by the end of the pass that finds it.
pub fn pending_in_inventory(
    fleet: &Fleet,
    observed: &Observed,
    now: OffsetDateTime,
) -> Vec<Pending> {
    let name = fleet.settings.name.as_str();
    let ours =
        |s: &&crate::cloud::Server| s.labels.get(labels::FLEET).map(String::as_str) == Some(name);
    let quarantined = crate::plan::quarantined_servers(fleet, observed)
        .into_iter()
        .filter(|(_, s)| s.labels.get(labels::PROTECT).map(String::as_str) != Some("true"))
        .filter_map(|(agent, s)| {
            let deadline = crate::plan::quarantine::delete_after(s, fleet)?;
            Some(Pending {
                agent: agent.to_owned(),
                operation: format!("deleting quarantined server {}", s.id),
                deadline: deadline.checked_add(DELETION_WINDOW)?,
            })
        });
    let retired = observed
        .servers
        .iter()
        .filter(ours)
        .filter(|s| s.labels.contains_key(labels::RETIRED))
        .filter_map(|s| {
            Some(Pending {
                agent: s.labels.get(labels::AGENT)?.clone(),
                operation: format!("replacing the server (retired server {} is left)", s.id),
                deadline: now,
            })
        });
    let recorded = observed.servers.iter().filter(ours).filter_map(|s| {
        let (op, step) = tether_core::operation::pending(s)?;
        Some(Pending {
            agent: s.labels.get(labels::AGENT)?.clone(),
            operation: format!("{op} of server {} (stopped at step `{step}`)", s.id),
            deadline: now,
        })
    });
    quarantined.chain(retired).chain(recorded).collect()
}

#[cfg(test)]
#[path = "invariants_tests.rs"]
mod tests;
