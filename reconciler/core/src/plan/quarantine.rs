//! Quarantine before delete: the rules for a server whose agent's spec was removed. It is
//! powered off, its devices deauthorized, and it is renamed aside and labelled
//! ([`labels::QUARANTINED_AT`], [`labels::QUARANTINE_COMMIT`]); it is restored when the same
//! agent comes back with the same subscription, and deleted once its grace period has passed
//! (`spec.policy.quarantineGrace`, or the agent's own `tether/quarantine-grace`), inside the
//! deletion budgets, or earlier when `tether agent purge` labelled it [`labels::PURGE`].
//!
//! # Guarantees
//! - A quarantined server stays this fleet's (its ownership labels are kept) and counts in the
//!   base of the budgets; a protected one is never deleted.
//! - Without the pass's time ([`Context::now`]) or with a `tether/quarantined-at` that does not
//!   parse, no grace period is deemed over: the server is kept (fail closed).

use super::inventory::Inventory;
use super::{Action, Context, Note, Observed, safety};
use crate::compute::Server;
use crate::operation;
use crate::tailnet::{Device, DeviceId};
use std::collections::BTreeMap;
use tether_schema::{Agent, Fleet, grace, labels};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The grace period of `server` in seconds: its agent's own (`tether/quarantine-grace`), else
/// the fleet's. 0: quarantine is off.
pub fn grace_of(server: &Server, fleet: &Fleet) -> u64 {
    server
        .labels
        .get(labels::QUARANTINE_GRACE)
        .and_then(|v| v.parse().ok())
        .unwrap_or(fleet.settings.policy.quarantine_grace)
}

/// The fleet's quarantined servers by agent name (the newest when an agent has several).
pub fn quarantined_servers<'a>(
    fleet: &Fleet,
    observed: &'a Observed,
) -> BTreeMap<&'a str, &'a Server> {
    let mut by_agent: BTreeMap<&str, &Server> = BTreeMap::new();
    for server in Inventory::classify(&observed.servers, fleet.settings.name.as_str()).quarantined {
        let Some(agent) = server.labels.get(labels::AGENT) else {
            continue;
        };
        let newer = by_agent.get(agent.as_str()).is_none_or(|held| {
            (quarantined_at(held), held.id) < (quarantined_at(server), server.id)
        });
        if newer {
            by_agent.insert(agent.as_str(), server);
        }
    }
    by_agent
}

/// When `server` entered quarantine, from `tether/quarantined-at`.
pub fn quarantined_at(server: &Server) -> Option<OffsetDateTime> {
    let seconds: i64 = server.labels.get(labels::QUARANTINED_AT)?.parse().ok()?;
    OffsetDateTime::from_unix_timestamp(seconds).ok()
}

/// When `server` may be deleted: its quarantine time plus its grace period.
pub fn delete_after(server: &Server, fleet: &Fleet) -> Option<OffsetDateTime> {
    let grace = i64::try_from(grace_of(server, fleet)).ok()?;
    quarantined_at(server)?.checked_add(time::Duration::seconds(grace))
}

/// `revision` as a `tether/quarantine-commit` value: its first 12 characters, when they obey
/// Hetzner's label value rules (a git hash does).
pub fn short_commit(revision: Option<&str>) -> Option<String> {
    let short: String = revision?.chars().take(12).collect();
    (!short.is_empty() && short.chars().all(|c| c.is_ascii_alphanumeric())).then_some(short)
}

fn rfc3339(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "(unknown)".to_owned())
}

/// The quarantined server `agent` can have back: the newest one of the same agent and the same
/// subscription that nobody asked to purge.
pub(super) fn restorable<'a>(agent: &Agent, inventory: &Inventory<'a>) -> Option<&'a Server> {
    inventory
        .quarantined
        .iter()
        .filter(|s| {
            s.labels.get(labels::AGENT).map(String::as_str) == Some(agent.name.as_str())
                && s.labels.get(labels::SUBSCRIPTION).map(String::as_str)
                    == Some(agent.subscription.as_str())
                && !s.labels.contains_key(labels::PURGE)
        })
        .max_by_key(|s| (quarantined_at(s), s.id))
        .copied()
}

/// A quarantined server of `agent`, whatever its subscription.
pub(super) fn of_agent<'a>(agent: &str, inventory: &Inventory<'a>) -> Option<&'a Server> {
    inventory
        .quarantined
        .iter()
        .find(|s| s.labels.get(labels::AGENT).map(String::as_str) == Some(agent))
        .copied()
}

/// The devices of `server`'s agent that joined after it and before the agent's current server
/// (when there is one): the devices that ran on it.
pub(super) fn devices_of(
    server: &Server,
    current: Option<&Server>,
    devices: Option<&Vec<&Device>>,
) -> Vec<DeviceId> {
    devices
        .into_iter()
        .flatten()
        .filter(|d| {
            safety::joined_after(d, server) && current.is_none_or(|c| !safety::joined_after(d, c))
        })
        .map(|d| d.id.clone())
        .collect()
}

/// The action for a server whose spec was removed and whose grace period is not zero.
pub(super) fn quarantine(
    agent: &str,
    server: &Server,
    fleet: &Fleet,
    devices: Vec<DeviceId>,
    ctx: &Context,
) -> Action {
    Action::Quarantine {
        agent: agent.to_owned(),
        server_id: server.id,
        server_type: server.server_type.clone(),
        location: server.location.clone(),
        devices,
        commit: short_commit(ctx.revision.as_deref()),
        grace: grace::format(grace_of(server, fleet)),
        reason: "its agent spec was removed; quarantined before delete".to_owned(),
    }
}

/// The action that gives `agent` its quarantined `server` back, named `name`.
pub(super) fn restore(
    agent: &Agent,
    server: &Server,
    devices: Vec<DeviceId>,
    name: String,
) -> Action {
    Action::Restore {
        agent: agent.name.as_str().to_owned(),
        server_id: server.id,
        name,
        devices,
        reason: match (quarantined_at(server), operation::pending(server)) {
            (None, Some((op, step))) => format!(
                "the spec is back while a {op} of its server stopped half way (at `{step}`): its devices are authorized again and it is powered on as its spec says"
            ),
            (None, None) => format!(
                "no other server holds the name {} any more: server {} gets it back",
                agent.name, server.name
            ),
            (since, _) => format!(
                "restore from quarantine: the spec is back with subscription {} (quarantined at {})",
                agent.subscription,
                rfc3339(since)
            ),
        },
    }
}

/// What becomes of a quarantined server that is not restored: deleted once purged or past its
/// grace period (the budgets apply later), otherwise kept with a note saying until when.
pub(super) fn run_course(
    server: &Server,
    fleet: &Fleet,
    inventory: &Inventory<'_>,
    devices: &BTreeMap<String, Vec<&Device>>,
    ctx: &Context,
    actions: &mut Vec<Action>,
    notes: &mut Vec<Note>,
) {
    let agent = server.labels.get(labels::AGENT).map_or("", String::as_str);
    let since = quarantined_at(server);
    let after = delete_after(server, fleet);
    let commit = server.labels.get(labels::QUARANTINE_COMMIT).cloned();
    if safety::is_protected(server) {
        notes.push(Note::OrphanKept {
            agent: agent.to_owned(),
            server_id: server.id,
            reason: format!(
                "quarantined server {} is protected (`tether/protect=true` or Hetzner delete protection); it is kept powered off",
                server.name
            ),
        });
        return;
    }
    let purged = server
        .labels
        .get(labels::PURGE)
        .is_some_and(|v| v == "true");
    let ended = matches!((ctx.now, after), (Some(now), Some(after)) if now >= after);
    let reason = if !fleet.settings.policy.prune {
        None
    } else if purged {
        Some(format!(
            "purged from quarantine by `tether agent purge` (quarantined at {}, commit {})",
            rfc3339(since),
            commit.as_deref().unwrap_or("unknown")
        ))
    } else if ended {
        Some(format!(
            "quarantine grace period ended (quarantined at {}, commit {})",
            rfc3339(since),
            commit.as_deref().unwrap_or("unknown")
        ))
    } else {
        None
    };
    match reason {
        Some(reason) => actions.push(Action::Delete {
            agent: agent.to_owned(),
            server_id: server.id,
            server_name: server.name.clone(),
            server_type: server.server_type.clone(),
            location: server.location.clone(),
            devices: devices_of(
                server,
                inventory.managed.get(agent).copied(),
                devices.get(agent),
            ),
            reason,
        }),
        None => notes.push(Note::Quarantined {
            agent: agent.to_owned(),
            server_id: server.id,
            since: rfc3339(since),
            commit,
            delete_after: if fleet.settings.policy.prune {
                rfc3339(after)
            } else {
                "never while `spec.policy.prune` is off".to_owned()
            },
        }),
    }
}

#[cfg(test)]
mod tests;
