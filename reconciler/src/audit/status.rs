//! Status documents: one `status/<agent>.yaml` per agent and `status/fleet.yaml`, derived from
//! the fleet, the inventory observed after applying, and the apply report; plus the status
//! commit message.

use crate::apply::{ActionReport, ApplyReport, Outcome};
use crate::cloud::tailscale::Device;
use crate::cloud::{Server, ServerStatus};
use crate::plan::Observed;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tether_schema::{Fleet, Power};

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
    /// When this run observed the agent.
    pub last_transition_time: String,
    /// The last action's error, if it failed.
    pub last_error: Option<String>,
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
    /// Fleet commit applied.
    pub revision: Option<String>,
    /// Agents in the spec: the base of the shrink circuit breaker on the next run.
    pub agents: usize,
    /// Agents per phase.
    pub phases: BTreeMap<String, usize>,
    /// When the run finished.
    pub last_reconcile: String,
    /// The plan applied.
    pub plan_hash: String,
    /// The run id.
    pub run: String,
}

/// Derives every agent's status.
pub fn agent_statuses(
    fleet: &Fleet,
    observed: &Observed,
    report: &ApplyReport,
    now: &str,
) -> Vec<AgentStatus> {
    let servers: BTreeMap<&str, &Server> = observed
        .servers
        .iter()
        .filter(|s| {
            s.labels
                .get(tether_schema::labels::FLEET)
                .is_some_and(|f| f == fleet.settings.name.as_str())
        })
        .map(|s| (s.name.as_str(), s))
        .collect();
    fleet
        .agents
        .iter()
        .map(|(name, agent)| {
            let name = name.as_str();
            let server = servers.get(name).copied();
            let devices: Vec<&Device> = observed
                .devices
                .iter()
                .filter(|d| d.hostname == name)
                .collect();
            let device = devices
                .iter()
                .find(|d| d.online)
                .or(devices.last())
                .copied();
            let failure = report
                .actions
                .iter()
                .filter(|a| a.agent == name)
                .find_map(failed);
            let phase = phase(server, device, agent.power, failure.is_some());
            AgentStatus {
                agent: name.to_owned(),
                phase,
                spec_revision: report.revision.clone(),
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
                last_transition_time: now.to_owned(),
                last_error: failure,
            }
        })
        .collect()
}

fn failed(a: &ActionReport) -> Option<String> {
    match &a.outcome {
        Outcome::Failed { reason } => Some(reason.clone()),
        _ => None,
    }
}

fn phase(server: Option<&Server>, device: Option<&Device>, power: Power, failed: bool) -> Phase {
    let online = device.is_some_and(|d| d.online);
    match server {
        _ if failed => Phase::Failed,
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
        Some(s) if s.status == ServerStatus::Off && power == Power::Off => Phase::Ready,
        Some(s) if s.status == ServerStatus::Running && online => Phase::Ready,
        Some(_) => Phase::Degraded,
    }
}

/// The fleet-wide status document.
pub fn fleet_status(
    fleet: &Fleet,
    agents: &[AgentStatus],
    report: &ApplyReport,
    now: &str,
    run: &str,
) -> FleetStatus {
    let mut phases = BTreeMap::new();
    for a in agents {
        *phases.entry(format!("{:?}", a.phase)).or_insert(0) += 1;
    }
    FleetStatus {
        fleet: fleet.settings.name.as_str().to_owned(),
        revision: report.revision.clone(),
        agents: fleet.agents.len(),
        phases,
        last_reconcile: now.to_owned(),
        plan_hash: report.plan_hash.clone(),
        run: run.to_owned(),
    }
}

/// The one-line account of an apply: `apply 3f2a1c9: +2 created, -1 deleted, 1 failed`. The
/// status commit's subject, and the description of the `tether/<fleet>` commit status.
pub fn summary_line(report: &ApplyReport) -> String {
    let short = report
        .revision
        .as_deref()
        .map_or("working-tree", |r| &r[..r.len().min(7)]);
    let created = report.done("create") + report.done("replace");
    let deleted = report.done("delete");
    let (_, failed, skipped) = report.counts();
    let mut summary = vec![format!("+{created} created"), format!("-{deleted} deleted")];
    let updated = ["resize", "relabel", "power-on", "power-off"]
        .iter()
        .map(|k| report.done(k))
        .sum::<usize>();
    if updated > 0 {
        summary.push(format!("~{updated} updated"));
    }
    if failed > 0 {
        summary.push(format!("{failed} failed"));
    }
    if skipped > 0 {
        summary.push(format!("{skipped} skipped"));
    }
    format!("apply {short}: {}", summary.join(", "))
}

/// The status commit message: summary line, one body line per action with provider ids and
/// outcome, then the trailers.
pub fn commit_message(report: &ApplyReport, run: &str) -> String {
    let mut msg = format!("{}\n\n", summary_line(report));
    let _ = write!(msg, "{report}");
    let _ = write!(
        msg,
        "\n\n{}: {}\n{}: {}\n{}: {run}\n",
        super::TRAILER_SOURCE,
        report.revision.as_deref().unwrap_or("none"),
        super::TRAILER_PLAN,
        report.plan_hash,
        super::TRAILER_RUN
    );
    msg
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

/// Every file of the status folder for this run: `<agent>.yaml` per agent and `fleet.yaml`.
pub fn files(
    fleet: &Fleet,
    observed: &Observed,
    report: &ApplyReport,
    now: &str,
    run: &str,
) -> BTreeMap<String, String> {
    let agents = agent_statuses(fleet, observed, report, now);
    let mut files: BTreeMap<String, String> = agents
        .iter()
        .map(|a| (format!("{}.yaml", a.agent), to_yaml(a)))
        .collect();
    files.insert(
        "fleet.yaml".to_owned(),
        to_yaml(&fleet_status(fleet, &agents, report, now, run)),
    );
    files
}

/// What the status branch says about the last recorded run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    /// Agents in the spec at that run: the base of the shrink circuit breaker.
    pub agents: usize,
    /// The plan recorded.
    pub plan_hash: String,
}

/// Reads `status/fleet.yaml` from the tip of the status branch, if there is one.
pub fn previous(repo: &std::path::Path, branch: &str) -> Option<Previous> {
    let r = git2::Repository::open(repo).ok()?;
    let tree = r
        .revparse_single(branch)
        .ok()?
        .peel_to_commit()
        .ok()?
        .tree()
        .ok()?;
    let entry = tree
        .get_path(std::path::Path::new("status/fleet.yaml"))
        .ok()?;
    let blob = r.find_blob(entry.id()).ok()?;
    let node = tether_schema::yaml::node::parse(std::str::from_utf8(blob.content()).ok()?).ok()?;
    let text = |key: &str| match &node.get(key)?.kind {
        tether_schema::yaml::node::NodeKind::Scalar { text, .. } => Some(text.clone()),
        _ => None,
    };
    Some(Previous {
        agents: text("agents")?.parse().ok()?,
        plan_hash: text("planHash")?,
    })
}

/// The status commit message of a refused plan.
pub fn refusal_message(plan: &crate::plan::Plan, run: &str) -> String {
    let short = plan
        .revision
        .as_deref()
        .map_or("working-tree", |r| &r[..r.len().min(7)]);
    let reasons = plan
        .refusal
        .as_ref()
        .map(|r| r.reasons.join("\n"))
        .unwrap_or_default();
    format!(
        "apply {short}: refused, nothing changed\n\n{reasons}\n\n{}: {}\n{}: {}\n{}: {run}\n",
        super::TRAILER_SOURCE,
        plan.revision.as_deref().unwrap_or("none"),
        super::TRAILER_PLAN,
        plan.plan_hash,
        super::TRAILER_RUN
    )
}
