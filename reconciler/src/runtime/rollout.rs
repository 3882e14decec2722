//! Health-gated waves: a plan's runtime updates go out wave by wave (1 is the canary; later
//! waves double up to the disruption budget, numbered by [`crate::plan::runtime`]). Each wave
//! is served the new runtime and waits until every agent of it reports the new version healthy.
//! A wave that reports a failure, or is not healthy by the deadline, halts the rollout: its
//! agents are served their last good runtime again, later waves are not started, and the
//! [`Record`] (on the status branch as `status/runtime.yaml`) says why.
//!
//! # Guarantees
//! - Only the agents of the running wave are served the new runtime; an agent of a later wave
//!   keeps being served what it runs.
//! - A server's `tether/runtime` label moves only after its wave was healthy, and only while it
//!   still carries this fleet's and its agent's labels.
//! - A halted runtime is not rolled out again until the spec changes it
//!   ([`crate::plan::Context::halted_rollout`]). The halt is written on the failed agent's
//!   server (`tether/runtime-halted`) before the wave is rolled back, so it holds even when
//!   the daemon dies before its status commit
//!   ([`crate::plan::runtime::hold_halted_on_servers`]).
//! - Completed waves are durable by their labels: after a restart the planner updates only the
//!   agents whose `tether/runtime` label still lags the spec, so the rollout goes on where it
//!   was, and the restarted daemon serves the lagging agents the runtime their label shows
//!   ([`Service::serve_as_labelled`]): a wave cut short is rolled back to it.
//! - Time and waits come from the injected [`Clock`].

use super::Service;
use super::wire::Desired;
use crate::cloud::retry::Clock;
use crate::cloud::{Compute, ServerId, hetzner};
use crate::plan::runtime::Halted;
use crate::plan::{Action, safety};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tether_schema::{Fleet, labels};
use tokio::sync::watch;

/// How often a wave's reports are checked.
pub const CHECK_EVERY: Duration = Duration::from_millis(20);

/// A rollout, as `status/runtime.yaml` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The version rolled out.
    pub target: String,
    /// Its `tether/runtime` hash (version and env).
    pub runtime: String,
    /// The version the agents ran before, when tether had a record of it.
    pub last_good: Option<String>,
    /// The waves run, in order.
    pub waves: Vec<WaveRecord>,
    /// Agents that run the target healthy.
    pub agents_done: usize,
    /// Whether the rollout was halted.
    pub halted: bool,
    /// Why it was halted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Record {
    /// The halt, for the planner, when the rollout was halted.
    pub fn halted(&self) -> Option<Halted> {
        self.halted.then(|| Halted {
            runtime: self.runtime.clone(),
            version: self.target.clone(),
            reason: self.reason.clone().unwrap_or_default(),
        })
    }
}

/// One wave of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveRecord {
    /// 1 is the canary.
    pub wave: u32,
    /// Its agents.
    pub agents: Vec<String>,
    /// `healthy`, or `rolled back` when it halted the rollout.
    pub outcome: String,
}

/// How one runtime update ended; the executor reports it (`apply/runtime.rs`).
#[derive(Debug)]
pub struct Update<'a> {
    /// The plan's [`Action::UpdateRuntime`].
    pub action: &'a Action,
    /// The agent's server, once it was looked at.
    pub server_id: Option<ServerId>,
    /// How it ended.
    pub ended: Ended,
}

/// How a runtime update ended.
#[derive(Debug)]
pub enum Ended {
    /// Its wave was healthy and its server relabelled.
    Done,
    /// Attempted and failed (or rolled back).
    Failed(RolloutError),
    /// Not attempted.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// Why a runtime update failed; its `Display` is the reason the report shows.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// Reading the agent's server before its wave failed.
    #[error("{source}")]
    Read {
        /// The server.
        server_id: ServerId,
        /// The client's error.
        #[source]
        source: hetzner::Error,
    },
    /// The plan names an agent that the fleet being applied does not have.
    #[error("agent `{agent}` is not in the fleet being applied")]
    NotInFleet {
        /// The agent.
        agent: String,
    },
    /// The wave reported a failure or was not healthy by its deadline: the rollout halted and
    /// the wave is served its previous runtime again.
    #[error("{reason}")]
    Halted {
        /// The agent whose update this was.
        agent: String,
        /// The halt and how far the rollback got, naming the failing agent and the versions.
        reason: String,
    },
    /// The wave was healthy, but moving the server's `tether/runtime` label failed.
    #[error("{reason}")]
    Relabel {
        /// The server.
        server_id: ServerId,
        /// What failed, naming the server.
        reason: String,
    },
}

impl<'a> Update<'a> {
    fn new(action: &'a Action, ended: Ended) -> Self {
        Update {
            action,
            server_id: None,
            ended,
        }
    }

    fn skipped(action: &'a Action, reason: &str) -> Self {
        Update::new(
            action,
            Ended::Skipped {
                reason: reason.to_owned(),
            },
        )
    }
}

/// One update of a wave.
struct Member<'a> {
    action: &'a Action,
    agent: &'a str,
    server_id: ServerId,
    before: Option<Desired>,
}

/// Runs `updates` (the plan's [`Action::UpdateRuntime`]s) wave by wave, with time and waits
/// from `clock`.
pub async fn run<'a, C: Compute, K: Clock>(
    updates: &[&'a Action],
    fleet: &Fleet,
    compute: &C,
    service: &Service,
    stop: &watch::Receiver<bool>,
    clock: &K,
) -> Vec<Update<'a>> {
    let mut waves: BTreeMap<u32, Vec<&Action>> = BTreeMap::new();
    for action in updates {
        if let Action::UpdateRuntime { wave, .. } = action {
            waves.entry(*wave).or_default().push(action);
        }
    }
    let Some(first) = updates.iter().find_map(|a| match a {
        Action::UpdateRuntime {
            agent, from, to, ..
        } => Some((agent, from, to)),
        _ => None,
    }) else {
        return Vec::new();
    };
    let runtime = fleet
        .agents
        .get(first.0.as_str())
        .map(labels::runtime_hash)
        .unwrap_or_default();
    let mut record = Record {
        target: first.2.clone(),
        runtime,
        last_good: first.1.clone(),
        waves: Vec::new(),
        agents_done: 0,
        halted: false,
        reason: None,
    };
    let mut reports = Vec::new();
    for (number, actions) in waves {
        if let Some(reason) = record
            .reason
            .clone()
            .or_else(|| (*stop.borrow()).then(|| "tether is shutting down; not started".to_owned()))
        {
            reports.extend(actions.iter().map(|a| Update::skipped(a, &reason)));
            continue;
        }
        let outcome = wave(
            number,
            &actions,
            (fleet, compute, service, clock),
            &mut record,
        )
        .await;
        reports.extend(outcome);
        service.set_rollout(record.clone());
    }
    tracing::info!(target = %record.target, waves = record.waves.len(), agents = record.agents_done, halted = record.halted, "runtime rollout finished");
    reports
}

/// Serves one wave the new runtime, waits for it, and relabels or rolls back.
async fn wave<'a, C: Compute, K: Clock>(
    number: u32,
    actions: &[&'a Action],
    (fleet, compute, service, clock): (&Fleet, &C, &Service, &K),
    record: &mut Record,
) -> Vec<Update<'a>> {
    let mut reports = Vec::new();
    let mut members = Vec::new();
    for action in actions {
        let Action::UpdateRuntime {
            agent, server_id, ..
        } = action
        else {
            continue;
        };
        let Some(spec) = fleet.agents.get(agent.as_str()) else {
            reports.push(failed(
                action,
                *server_id,
                RolloutError::NotInFleet {
                    agent: agent.to_string(),
                },
            ));
            continue;
        };
        let skip = |reason: String| {
            let mut r = Update::skipped(action, &reason);
            r.server_id = Some(*server_id);
            r
        };
        match compute.get_server(*server_id).await {
            Ok(Some(s)) if !safety::owns_server(&s, fleet.settings.name.as_str(), agent) => {
                reports.push(skip(format!(
                    "server {server_id} no longer carries the labels tether/fleet={} and tether/agent={agent}; not touching it",
                    fleet.settings.name
                )));
                continue;
            }
            Ok(Some(s)) if !s.labels.contains_key(labels::AGENT_KEY) => {
                reports.push(skip(format!(
                    "server {server_id} has no tether-agent (created without the agent API, or before it existed): its runtime cannot change in place; recreate it to get one"
                )));
                continue;
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                reports.push(skip(format!("server {server_id} no longer exists")));
                continue;
            }
            Err(e) => {
                let e = RolloutError::Read {
                    server_id: *server_id,
                    source: e,
                };
                reports.push(failed(action, *server_id, e));
                continue;
            }
        }
        let before = service.serve(agent, Some(service.desired_of(spec)));
        members.push(Member {
            action,
            agent,
            server_id: *server_id,
            before,
        });
    }
    let names: Vec<String> = members.iter().map(|m| m.agent.to_owned()).collect();
    tracing::info!(wave = number, agents = names.len(), target = %record.target, "runtime wave started");
    match wait(&members, &record.target, service, clock).await {
        Ok(()) => {
            for m in &members {
                reports.push(match relabel(m, fleet, compute).await {
                    Ok(()) => {
                        record.agents_done += 1;
                        let mut r = Update::new(m.action, Ended::Done);
                        r.server_id = Some(m.server_id);
                        r
                    }
                    Err(reason) => failed(
                        m.action,
                        m.server_id,
                        RolloutError::Relabel {
                            server_id: m.server_id,
                            reason,
                        },
                    ),
                });
            }
            record.waves.push(WaveRecord {
                wave: number,
                agents: names,
                outcome: "healthy".to_owned(),
            });
        }
        Err((agent, why)) => {
            let place = if number == 1 {
                format!("canary {agent}")
            } else {
                format!("{agent} in wave {number}")
            };
            let reason = format!("rollout halted: {} failed on {place}: {why}", record.target);
            tracing::warn!(wave = number, %agent, "{reason}; rolling the wave back");
            if let Some(failed) = members.iter().find(|m| m.agent == agent) {
                mark_halted(failed, fleet, compute).await;
            }
            for m in &members {
                service.serve(m.agent, m.before.clone());
            }
            let settled = rolled_back(&members, service, clock).await;
            for m in &members {
                let back = match settled.get(m.agent) {
                    Some(true) => "rolled back",
                    _ => "rollback served but not yet reported healthy",
                };
                let to = m
                    .before
                    .as_ref()
                    .map_or("the runtime it ran", |d| d.version.as_str());
                let halted = RolloutError::Halted {
                    agent: m.agent.to_owned(),
                    reason: format!("{reason}; {back} to {to}"),
                };
                reports.push(failed(m.action, m.server_id, halted));
            }
            record.waves.push(WaveRecord {
                wave: number,
                agents: names,
                outcome: "rolled back".to_owned(),
            });
            record.halted = true;
            record.reason = Some(reason);
        }
    }
    reports
}

/// Waits until every member reports `target` healthy (a report made after the wave started);
/// the first failure (an unhealthy report of `target`, or the deadline) as `(agent, why)`.
async fn wait<K: Clock>(
    members: &[Member<'_>],
    target: &str,
    service: &Service,
    clock: &K,
) -> Result<(), (String, String)> {
    let timeout = service.config().wave_timeout;
    let started = clock.now();
    let deadline = started + timeout;
    loop {
        let mut pending = None;
        for m in members {
            let report = service
                .reported(m.agent)
                .filter(|r| r.at >= started)
                .map(|r| r.report);
            match report {
                Some(r) if r.version.as_deref() == Some(target) && r.healthy => {}
                Some(r) if r.version.as_deref() == Some(target) => {
                    let why = r.error.unwrap_or_else(|| "reported unhealthy".to_owned());
                    return Err((m.agent.to_owned(), why));
                }
                Some(r) => {
                    let last = r.error.unwrap_or_else(|| {
                        format!("still runs {}", r.version.as_deref().unwrap_or("nothing"))
                    });
                    pending.get_or_insert((
                        m.agent,
                        format!("no healthy report of {target} ({last})"),
                    ));
                }
                None => {
                    pending.get_or_insert((m.agent, format!("no report of {target}")));
                }
            }
        }
        let Some((agent, why)) = pending else {
            return Ok(());
        };
        if clock.now() >= deadline {
            return Err((
                agent.to_owned(),
                format!("{why} within {}s", timeout.as_secs_f64()),
            ));
        }
        clock.sleep(CHECK_EVERY).await;
    }
}

/// Waits (up to the wave timeout) until each member reports the runtime it was rolled back to
/// healthy; whether each did, by agent.
async fn rolled_back<'a, K: Clock>(
    members: &[Member<'a>],
    service: &Service,
    clock: &K,
) -> BTreeMap<&'a str, bool> {
    let started = clock.now();
    let deadline = started + service.config().wave_timeout;
    loop {
        let settled: BTreeMap<&str, bool> = members
            .iter()
            .map(|m| {
                let back = m.before.as_ref().is_none_or(|before| {
                    service.reported(m.agent).is_some_and(|r| {
                        r.at >= started
                            && r.report.healthy
                            && r.report.version.as_deref() == Some(before.version.as_str())
                    })
                });
                (m.agent, back)
            })
            .collect();
        if settled.values().all(|b| *b) || clock.now() >= deadline {
            return settled;
        }
        clock.sleep(CHECK_EVERY).await;
    }
}

/// Writes the halt on the failed member's server (`tether/runtime-halted` = its agent's target
/// runtime hash) before the wave is rolled back, so a daemon killed before its status commit
/// does not roll the same version out again. A failure is logged; the rollback goes on.
async fn mark_halted<C: Compute>(m: &Member<'_>, fleet: &Fleet, compute: &C) {
    if let Err(e) = label_runtime(m, fleet, compute, labels::RUNTIME_HALTED).await {
        tracing::warn!(agent = m.agent, server = m.server_id.0, error = %e, "writing the halt on the server failed; the status commit still records it");
    }
}

/// Moves the server's `tether/runtime` label to the runtime its agent now runs.
async fn relabel<C: Compute>(m: &Member<'_>, fleet: &Fleet, compute: &C) -> Result<(), String> {
    label_runtime(m, fleet, compute, labels::RUNTIME)
        .await
        .map_err(|e| format!("the runtime is updated but labelling failed: {e}"))
}

/// Sets label `key` on the member's server to its agent's target runtime hash, after checking
/// on the live server that it still carries this fleet's labels for the agent.
async fn label_runtime<C: Compute>(
    m: &Member<'_>,
    fleet: &Fleet,
    compute: &C,
    key: &str,
) -> Result<(), String> {
    let server = compute
        .get_server(m.server_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("server {} no longer exists", m.server_id))?;
    if !safety::owns_server(&server, fleet.settings.name.as_str(), m.agent) {
        return Err(format!(
            "server {} no longer carries this fleet's labels for {}; not labelled",
            m.server_id, m.agent
        ));
    }
    let spec = fleet
        .agents
        .get(m.agent)
        .ok_or_else(|| format!("agent `{}` is not in the fleet being applied", m.agent))?;
    let mut labels = server.labels.clone();
    labels.insert(key.to_owned(), labels::runtime_hash(spec));
    compute
        .update_server(m.server_id, None, &labels)
        .await
        .map(|_| ())
        .map_err(|e| format!("labelling server {}: {e}", m.server_id))
}

fn failed(action: &Action, server_id: ServerId, error: RolloutError) -> Update<'_> {
    let mut r = Update::new(action, Ended::Failed(error));
    r.server_id = Some(server_id);
    r
}
