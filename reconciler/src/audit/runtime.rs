//! `status/runtime.yaml` on the status branch: the current rollout ([`crate::runtime::rollout::Record`])
//! and, per agent, the version it is served, the version it reports running and whether its
//! heartbeat is fresh and healthy — the third health signal besides the server running
//! (`status/<agent>.yaml`'s server) and the device online (its device). Read back by
//! [`halted`] so a halted rollout is not restarted by the next pass.
//!
//! What a VM reports is untrusted: its error is one bounded line by the time it is kept
//! ([`crate::runtime::wire::Report::checked`]), each distinct error is stored once for the
//! fleet under `errors` and named by its id from the agents, and an agent's entry changes only
//! when its state does, at most once per flap window ([`crate::runtime::settle`]).

use super::ledger::Ledger;
use super::status::to_yaml;
use crate::plan::runtime::Halted;
use crate::runtime::Service;
use crate::runtime::rollout::Record;
use crate::runtime::settle::Shown;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use tether_schema::Fleet;

/// The file's name in `status/`.
pub const FILE: &str = super::ledger::RUNTIME_FILE;

/// `status/runtime.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeStatus {
    /// The last rollout, when there was one since the daemon started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Record>,
    /// Each distinct error the agents reported, once for the fleet, by id ([`error_id`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, String>,
    /// Each agent of the fleet.
    pub agents: BTreeMap<String, AgentRuntime>,
}

/// One agent's runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRuntime {
    /// The version tether serves it.
    pub desired: Option<String>,
    /// The version it last reported running.
    pub running: Option<String>,
    /// `healthy` (fresh heartbeat, desired version, up), `unhealthy`, `stale` (no heartbeat
    /// within three poll intervals) or `unknown` (no report since the daemon started).
    pub heartbeat: &'static str,
    /// The id of its error in [`RuntimeStatus::errors`], when it entered this state with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The document for `fleet` as `service` knows it at `now`.
pub fn document(service: &Service, fleet: &Fleet, now: SystemTime) -> RuntimeStatus {
    let fresh = service.config().poll.max(Duration::from_secs(1)) * 3;
    let mut errors = BTreeMap::new();
    let agents = fleet
        .agents
        .keys()
        .map(|name| {
            let desired = service.desired(name.as_str()).map(|d| d.version);
            let reported = service.reported(name.as_str());
            let heartbeat = match &reported {
                None => "unknown",
                Some(r) if now.duration_since(r.at).unwrap_or_default() > fresh => "stale",
                Some(r) if r.report.healthy && r.report.version == desired => "healthy",
                Some(_) => "unhealthy",
            };
            let (running, error) = reported
                .map(|r| (r.report.version, r.report.error))
                .unwrap_or_default();
            let proposed = Shown {
                desired,
                running,
                heartbeat,
                error,
                since: None,
            };
            let shown = service.shown(name.as_str(), proposed, now);
            let error = shown.error.map(|text| {
                let id = error_id(&text);
                errors.insert(id.clone(), text);
                id
            });
            (
                name.as_str().to_owned(),
                AgentRuntime {
                    desired: shown.desired,
                    running: shown.running,
                    heartbeat: shown.heartbeat,
                    error,
                },
            )
        })
        .collect();
    RuntimeStatus {
        rollout: service.rollout(),
        errors,
        agents,
    }
}

/// The id an error is stored under: `e` and the first 10 hex digits of its SHA-256.
pub fn error_id(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("e{hex}")
}

/// Adds `status/runtime.yaml` to a pass's status files: derived from `service` when the pass
/// has one, else kept as the branch has it.
pub fn add(
    files: &mut BTreeMap<String, String>,
    service: Option<&Service>,
    fleet: &Fleet,
    ledger: &Ledger,
) {
    let text = match service {
        Some(service) => Some(to_yaml(&document(service, fleet, SystemTime::now()))),
        None => ledger.files.get(FILE).cloned(),
    };
    if let Some(text) = text {
        files.insert(FILE.to_owned(), text);
    }
}

/// The halted rollout the status branch records, if any.
pub fn halted(ledger: &Ledger) -> Option<Halted> {
    let text = ledger.files.get(FILE)?;
    // The document lists every agent: parse it only when it can say a rollout halted.
    if !text.contains("halted") {
        return None;
    }
    let docs = yaml_rust2::YamlLoader::load_from_str(text).ok()?;
    let rollout = &docs.first()?["rollout"];
    if rollout["halted"].as_bool() != Some(true) {
        return None;
    }
    Some(Halted {
        runtime: rollout["runtime"].as_str()?.to_owned(),
        version: rollout["target"].as_str()?.to_owned(),
        reason: rollout["reason"].as_str().unwrap_or_default().to_owned(),
    })
}

/// After a daemon restart, takes the halted rollout the status branch records back into
/// `service`, so `status/runtime.yaml` keeps saying why until the spec changes the runtime.
pub fn seed(service: &Service, ledger: &Ledger) {
    if service.rollout().is_some() {
        return;
    }
    if let Some(h) = halted(ledger) {
        service.set_rollout(Record {
            target: h.version,
            runtime: h.runtime,
            last_good: None,
            waves: Vec::new(),
            agents_done: 0,
            halted: true,
            reason: Some(h.reason),
        });
    }
}

#[cfg(test)]
mod tests;
