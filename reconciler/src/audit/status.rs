//! Status documents: one `status/<agent>.yaml` per agent of the spec or the live fleet,
//! `status/fleet.yaml`, the device record `status/devices.yaml` and the recent deletions
//! `status/deletions.yaml`, derived from the fleet, the inventory observed after the pass, the
//! apply report and the [`Ledger`]; plus the status commit messages.

use super::invariants;
use super::ledger::{self, Baseline, Deletion, Ledger};
use crate::apply::{ActionReport, ApplyReport, Kind, Outcome};
use crate::cloud::tailscale::{Device, DeviceId};
use crate::cloud::{Server, ServerStatus};
use crate::plan::{Observed, Plan};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use tether_schema::{Agent, Fleet, Power};

/// Where an agent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Phase {
    /// In the spec; no server yet.
    Pending,
    /// Server being created or started; no device online yet.
    Provisioning,
    /// Server as specified and its device online (or powered off as specified).
    Ready,
    /// Server runs but no device is online, or an update failed.
    Degraded,
    /// Server being deleted.
    Deleting,
    /// The last action on it failed.
    Failed,
    /// Its server runs but its spec is gone (kept: protected, `prune` off, or a refused plan).
    Orphaned,
    /// Its spec is gone and its server waits in quarantine, powered off, until `deleteAfter`.
    Quarantined,
}

/// `status/<agent>.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// Agent name.
    pub agent: String,
    /// Phase.
    pub phase: Phase,
    /// Fleet commit this status reflects.
    pub spec_revision: Option<String>,
    /// The server, when one exists.
    pub server: Option<ServerStatusDoc>,
    /// The online (or newest) device, when one exists.
    pub device: Option<DeviceStatusDoc>,
    /// Set while the agent's server is quarantined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<QuarantineDoc>,
    /// When this run observed the agent.
    pub last_transition_time: String,
    /// The last action's error, if it failed.
    pub last_error: Option<String>,
    /// Whether that error is `transient` (the next pass tries again) or `terminal` (it needs a
    /// person or a spec change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_kind: Option<Kind>,
}

/// The server part of an agent's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStatusDoc {
    /// Hetzner id.
    pub id: u64,
    /// Hetzner status.
    pub status: ServerStatus,
    /// Server type.
    pub server_type: String,
    /// Location.
    pub location: String,
    /// Public IPs.
    pub public_ips: Vec<String>,
}

/// The quarantine part of an agent's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuarantineDoc {
    /// When it entered quarantine, RFC 3339.
    pub since: String,
    /// The fleet commit that removed the spec (short), when labelled.
    pub commit: Option<String>,
    /// When the grace period ends and the server may be deleted, RFC 3339.
    pub delete_after: String,
}

/// The device part of an agent's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceStatusDoc {
    /// Tailscale id.
    pub id: String,
    /// Tailnet addresses.
    pub tailnet_ips: Vec<String>,
    /// Connected to the control plane.
    pub online: bool,
}

/// `status/fleet.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetStatus {
    /// Fleet name.
    pub fleet: String,
    /// Fleet commit of the last accepted pass.
    pub revision: Option<String>,
    /// Agents in the spec at the last accepted pass: the base of the shrink circuit breaker.
    /// Absent when no pass was ever accepted (then deletions need `--allow-shrink`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agents: Option<usize>,
    /// Agents per phase.
    pub phases: BTreeMap<String, usize>,
    /// When the status last changed.
    pub last_reconcile: String,
    /// The plan of the last accepted pass.
    pub plan_hash: String,
    /// The run id.
    pub run: String,
    /// Why the last pass failed or was refused; absent after a clean pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Set while `spec.suspend` pauses every change.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suspended: bool,
    /// The invariants the pass found broken at its end ([`invariants::check`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub broken_invariants: Vec<String>,
}

/// How a pass ended, for the status documents.
#[derive(Debug, Clone, Copy)]
pub enum Verdict<'a> {
    /// The plan was accepted and applied (some actions may have failed).
    Applied(&'a Plan),
    /// The plan was refused: nothing changed, the baseline stays.
    Refused(&'a Plan),
    /// The fleet is suspended: nothing was applied, the baseline stays.
    Suspended(&'a Plan),
}

/// Everything the status documents are derived from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The fleet as loaded.
    pub fleet: &'a Fleet,
    /// The inventory after the pass.
    pub observed: &'a Observed,
    /// The account of the pass (empty when refused).
    pub report: &'a ApplyReport,
    /// What the status branch said before the pass.
    pub ledger: &'a Ledger,
    /// How the pass ended.
    pub verdict: Verdict<'a>,
    /// RFC 3339 time of the pass.
    pub now: &'a str,
    /// The run id.
    pub run: &'a str,
    /// Why the pass stopped after it applied (the inventory could not be re-read), recorded in
    /// `lastError` beside any failed action.
    pub stopped: Option<&'a str>,
    /// What the end-of-pass invariants are checked with besides the above; `None` when the
    /// pass did not get that far (nothing is judged then).
    pub checks: Option<Checks<'a>>,
}

/// The end-of-pass invariants' inputs that are not in [`Inputs`] ([`invariants::Facts`]).
#[derive(Debug, Clone, Copy)]
pub struct Checks<'a> {
    /// The tailnet's auth keys after the pass, when they could be read.
    pub keys: Option<&'a [crate::cloud::tailscale::AuthKey]>,
    /// The operations not finished.
    pub pending: &'a [invariants::Pending],
    /// The pass's time.
    pub now: time::OffsetDateTime,
}

/// Derives every agent's status: the agents of the spec (unless the plan was refused) and
/// every agent with a live server of this fleet. Devices are the ones the fleet can prove it
/// owns ([`crate::plan::device_ownership`]).
pub fn agent_statuses(input: &Inputs<'_>, owned: &BTreeMap<DeviceId, String>) -> Vec<AgentStatus> {
    let fleet = input.fleet;
    let servers = crate::plan::managed_servers(fleet, input.observed);
    let quarantined = crate::plan::quarantined_servers(fleet, input.observed);
    let refused = matches!(input.verdict, Verdict::Refused(_));
    let mut names: BTreeSet<&str> = servers.keys().copied().collect();
    names.extend(quarantined.keys().copied());
    if !refused {
        names.extend(fleet.agents.keys().map(|n| n.as_str()));
    }
    let devices = devices_by_agent(&input.observed.devices, owned);
    let failures = failures_by_agent(input.report);
    names
        .into_iter()
        .map(|name| {
            let spec = fleet.agents.get(name);
            let held = quarantined
                .get(name)
                .copied()
                .filter(|_| !servers.contains_key(name));
            let server = servers.get(name).copied().or(held);
            let device = devices.get(name).and_then(|d| d.shown());
            let failure = failures.get(name).cloned();
            let phase = match held {
                Some(_) if failure.is_none() => Phase::Quarantined,
                _ => phase(server, device, spec, failure.is_some(), refused),
            };
            AgentStatus {
                agent: name.to_owned(),
                phase,
                spec_revision: if refused {
                    input
                        .ledger
                        .baseline
                        .as_ref()
                        .and_then(|b| b.revision.clone())
                } else {
                    spec.and(input.report.revision.clone())
                },
                server: server.map(|s| ServerStatusDoc {
                    id: s.id.0,
                    status: s.status,
                    server_type: s.server_type.clone(),
                    location: s.location.clone(),
                    public_ips: s.ipv4.iter().chain(s.ipv6.iter()).cloned().collect(),
                }),
                device: device.map(|d| DeviceStatusDoc {
                    id: d.id.0.clone(),
                    tailnet_ips: d.addresses.iter().map(ToString::to_string).collect(),
                    online: d.online,
                }),
                quarantine: held.map(|s| quarantine_doc(s, fleet)),
                last_transition_time: input.now.to_owned(),
                last_error_kind: failure.as_ref().map(|f| f.1),
                last_error: failure.map(|f| f.0),
            }
        })
        .collect()
}

fn quarantine_doc(server: &Server, fleet: &Fleet) -> QuarantineDoc {
    use crate::plan::quarantine::{delete_after, quarantined_at};
    let rfc3339 = |t: Option<time::OffsetDateTime>| {
        t.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "unknown".to_owned())
    };
    QuarantineDoc {
        since: rfc3339(quarantined_at(server)),
        commit: server
            .labels
            .get(tether_schema::labels::QUARANTINE_COMMIT)
            .cloned(),
        delete_after: rfc3339(delete_after(server, fleet)),
    }
}

/// An agent's owned devices, in the order the inventory lists them: the first online one,
/// else the last one listed, is the one its status shows.
#[derive(Default)]
struct AgentDevices<'a> {
    first_online: Option<&'a Device>,
    last: Option<&'a Device>,
}

impl<'a> AgentDevices<'a> {
    fn shown(&self) -> Option<&'a Device> {
        self.first_online.or(self.last)
    }
}

/// Every observed device the fleet owns, grouped by agent in one walk over the devices.
fn devices_by_agent<'a>(
    devices: &'a [Device],
    owned: &'a BTreeMap<DeviceId, String>,
) -> BTreeMap<&'a str, AgentDevices<'a>> {
    let mut by_agent: BTreeMap<&str, AgentDevices<'_>> = BTreeMap::new();
    for d in devices {
        let Some(agent) = owned.get(&d.id) else {
            continue;
        };
        let entry = by_agent.entry(agent.as_str()).or_default();
        if d.online && entry.first_online.is_none() {
            entry.first_online = Some(d);
        }
        entry.last = Some(d);
    }
    by_agent
}

/// Each agent's first failed action's reason, in report order, in one walk over the report.
fn failures_by_agent(report: &ApplyReport) -> BTreeMap<&str, (String, Kind)> {
    let mut by_agent = BTreeMap::new();
    for a in &report.actions {
        if let Some(reason) = failed(a) {
            by_agent.entry(a.agent.as_str()).or_insert(reason);
        }
    }
    by_agent
}

fn failed(a: &ActionReport) -> Option<(String, Kind)> {
    match &a.outcome {
        Outcome::Failed { reason, kind } => Some((reason.clone(), *kind)),
        _ => None,
    }
}

/// The agent's phase. `spec` is `None` for a live agent without a spec; after a refusal that
/// says nothing (the refused spec is not the fleet's), so the server's own power state counts.
/// Ready only when the server runs as its spec says (power and type), its device is authorized
/// and online, and no operation is recorded on it as under way ([`crate::operation`]).
fn phase(
    server: Option<&Server>,
    device: Option<&Device>,
    spec: Option<&Agent>,
    failed: bool,
    refused: bool,
) -> Phase {
    let online = device.is_some_and(|d| d.online && d.authorized);
    let settled = server.is_some_and(|s| {
        crate::operation::pending(s).is_none()
            && spec.is_none_or(|a| a.server.server_type.as_str() == s.server_type)
    });
    let power = match (spec, server) {
        (Some(a), _) => a.power,
        (None, Some(s)) if refused && s.status == ServerStatus::Off => Power::Off,
        (None, _) => Power::On,
    };
    match server {
        _ if failed => Phase::Failed,
        Some(_) if spec.is_none() && !refused => Phase::Orphaned,
        None => Phase::Pending,
        Some(s) if s.status == ServerStatus::Deleting => Phase::Deleting,
        Some(s)
            if matches!(
                s.status,
                ServerStatus::Initializing | ServerStatus::Starting
            ) =>
        {
            Phase::Provisioning
        }
        Some(s) if s.status == ServerStatus::Off && power == Power::Off && settled => Phase::Ready,
        Some(s) if s.status == ServerStatus::Running && online && settled => Phase::Ready,
        Some(_) => Phase::Degraded,
    }
}

/// The fleet-wide status document. After a refusal the baseline (agents, revision, plan hash)
/// stays what the last accepted pass recorded.
pub fn fleet_status(
    input: &Inputs<'_>,
    agents: &[AgentStatus],
    breaches: &[invariants::Breach],
) -> FleetStatus {
    let mut phases = BTreeMap::new();
    for a in agents {
        *phases.entry(format!("{:?}", a.phase)).or_insert(0) += 1;
    }
    let baseline = input.ledger.baseline.as_ref();
    let (revision, count, plan_hash, last_error) = match input.verdict {
        Verdict::Applied(plan) => {
            let failures: Vec<String> = input
                .report
                .actions
                .iter()
                .filter_map(|a| failed(a).map(|(r, _)| format!("{} {}: {r}", a.kind, a.agent)))
                .collect();
            // A plan with nothing to do changes nothing: the last plan that did stays recorded.
            let plan_hash = match baseline {
                Some(b) if plan.is_empty() => b.plan_hash.clone(),
                _ => plan.plan_hash.clone(),
            };
            let failed = (!failures.is_empty()).then(|| {
                format!(
                    "{} action(s) failed: {}",
                    failures.len(),
                    failures.join("; ")
                )
            });
            let last_error = match (failed, input.stopped) {
                (Some(failed), Some(stopped)) => Some(format!("{failed}; {stopped}")),
                (failed, stopped) => failed.or_else(|| stopped.map(str::to_owned)),
            };
            (
                plan.revision.clone(),
                Some(input.fleet.agents.len()),
                plan_hash,
                last_error,
            )
        }
        Verdict::Suspended(_) => {
            let (revision, agents, plan_hash) = Baseline::kept(baseline);
            (revision, agents, plan_hash, None)
        }
        Verdict::Refused(plan) => {
            let (revision, agents, plan_hash) = Baseline::kept(baseline);
            let reason = format!(
                "plan {} of revision {} refused, nothing changed: {}",
                short(&plan.plan_hash),
                plan.revision.as_deref().map_or("working-tree", short),
                plan.refusal
                    .as_ref()
                    .map(|r| r.reasons.join("; "))
                    .unwrap_or_default()
            );
            (revision, agents, plan_hash, Some(reason))
        }
    };
    FleetStatus {
        fleet: input.fleet.settings.name.as_str().to_owned(),
        revision,
        agents: count,
        phases,
        last_reconcile: input.now.to_owned(),
        plan_hash,
        run: input.run.to_owned(),
        last_error,
        suspended: matches!(input.verdict, Verdict::Suspended(_)),
        broken_invariants: breaches.iter().map(ToString::to_string).collect(),
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(7)]
}

/// Renders a status document as YAML.
pub fn to_yaml(doc: &impl Serialize) -> String {
    let value = serde_json::to_value(doc).unwrap_or(serde_json::Value::Null);
    let mut out = String::new();
    let mut emitter = yaml_rust2::YamlEmitter::new(&mut out);
    if emitter.dump(&yaml(value)).is_err() {
        return String::new();
    }
    out.push('\n');
    out
}

fn yaml(value: serde_json::Value) -> yaml_rust2::Yaml {
    use yaml_rust2::Yaml;
    match value {
        serde_json::Value::Null => Yaml::Null,
        serde_json::Value::Bool(b) => Yaml::Boolean(b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Yaml::Real(n.to_string()), Yaml::Integer),
        serde_json::Value::String(s) => Yaml::String(s),
        serde_json::Value::Array(items) => Yaml::Array(items.into_iter().map(yaml).collect()),
        serde_json::Value::Object(map) => Yaml::Hash(
            map.into_iter()
                .map(|(k, v)| (Yaml::String(k), yaml(v)))
                .collect(),
        ),
    }
}

/// `status/devices.yaml`: the devices this fleet owns, id → agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRecord {
    /// Device id → agent.
    pub devices: BTreeMap<String, String>,
}

/// `status/deletions.yaml`: servers deleted within the last hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletionRecord {
    /// Oldest first.
    pub deletions: Vec<Deletion>,
}

/// Every file of the status folder after this pass: `<agent>.yaml` per agent, `fleet.yaml`,
/// `devices.yaml` and `deletions.yaml`; and the invariants broken at the end of the pass
/// (`fleet.yaml` lists them too).
pub fn files(input: &Inputs<'_>) -> (BTreeMap<String, String>, Vec<invariants::Breach>) {
    let ctx = crate::plan::Context {
        owned_devices: input.ledger.devices.clone(),
        ..crate::plan::Context::default()
    };
    let owned = crate::plan::device_ownership(input.fleet, input.observed, &ctx);
    let mut agents = agent_statuses(input, &owned);
    let heal = super::heal::next(input, &mut agents);
    let breaches = input.checks.map_or_else(Vec::new, |c| {
        invariants::check(&invariants::Facts {
            fleet: input.fleet,
            observed: input.observed,
            agents: &agents,
            owned: &owned,
            keys: c.keys,
            pending: c.pending,
            now: c.now,
        })
    });
    let mut files: BTreeMap<String, String> = agents
        .iter()
        .map(|a| {
            let doc = super::heal::to_yaml(a, heal.get(&a.agent));
            (format!("{}.yaml", a.agent), doc)
        })
        .collect();
    files.insert(
        ledger::FLEET_FILE.to_owned(),
        to_yaml(&fleet_status(input, &agents, &breaches)),
    );
    files.insert(
        ledger::DEVICES_FILE.to_owned(),
        to_yaml(&DeviceRecord {
            // An empty listing never erases the record: it is how the next pass tells a
            // partial listing from a tailnet without devices (`plan::heal::hold`).
            devices: if input.observed.devices.is_empty() {
                input
                    .ledger
                    .devices
                    .iter()
                    .map(|(id, a)| (id.0.clone(), a.clone()))
                    .collect()
            } else {
                owned.into_iter().map(|(id, agent)| (id.0, agent)).collect()
            },
        }),
    );
    let now =
        time::OffsetDateTime::parse(input.now, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let mut deletions = input.ledger.recent_deletions(now);
    for a in &input.report.actions {
        if let Some(id) = a.deleted_server {
            deletions.push(Deletion {
                at: input.now.to_owned(),
                agent: a.agent.clone(),
                server_id: id,
            });
        }
    }
    deletions.sort();
    files.insert(
        ledger::DELETIONS_FILE.to_owned(),
        to_yaml(&DeletionRecord { deletions }),
    );
    (files, breaches)
}

/// The ledger's files with `status/fleet.yaml` saying why the pass failed before it could plan
/// (an invalid fleet, an unreadable inventory); every other document stays as it was.
pub fn failure_files(
    ledger: &Ledger,
    error: &str,
    now: &str,
    run: &str,
) -> BTreeMap<String, String> {
    let mut files = ledger.files.clone();
    let (revision, agents, plan_hash) = Baseline::kept(ledger.baseline.as_ref());
    let doc = FleetStatus {
        fleet: ledger.fleet.clone().unwrap_or_default(),
        revision,
        agents,
        phases: ledger.phases.clone(),
        last_reconcile: now.to_owned(),
        plan_hash,
        run: run.to_owned(),
        last_error: Some(error.to_owned()),
        suspended: false,
        broken_invariants: Vec::new(),
    };
    files.insert(ledger::FLEET_FILE.to_owned(), to_yaml(&doc));
    files
}
