//! `tether status`'s view of the fleet: [`FleetOverview::from_files`] reads the documents of the
//! status branch (plus, when given, the spec for customer and subscription), [`Filter`] narrows
//! the agents, and [`FleetOverview::render`] draws the table. Pure: no git, no clock, no colour
//! decision (the caller passes a painter).

use super::ledger::{DELETIONS_FILE, FLEET_FILE};
use super::status::Phase;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tether_core::escape::terminal;
use tether_schema::Fleet;
use yaml_rust2::{Yaml, YamlLoader};

/// Every phase an agent document can hold, in the order the counts are shown.
pub const PHASES: [Phase; 8] = [
    Phase::Pending,
    Phase::Provisioning,
    Phase::Ready,
    Phase::Degraded,
    Phase::Deleting,
    Phase::Failed,
    Phase::Orphaned,
    Phase::Quarantined,
];

/// The phase called `name` (any case), as `--phase` takes it.
pub fn phase_named(name: &str) -> Option<Phase> {
    PHASES
        .into_iter()
        .find(|p| format!("{p:?}").eq_ignore_ascii_case(name))
}

/// The whole fleet as the status branch records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetOverview {
    /// Fleet name.
    pub fleet: Option<String>,
    /// Fleet commit of the last accepted pass.
    pub revision: Option<String>,
    /// Plan hash of the last accepted pass.
    pub plan_hash: Option<String>,
    /// When the last pass wrote, RFC 3339.
    pub last_pass: Option<String>,
    /// The run that wrote it.
    pub run: Option<String>,
    /// Whether `spec.suspend` paused the last pass.
    pub suspended: bool,
    /// Why the last pass failed or was refused.
    pub last_error: Option<String>,
    /// Deletion budget use, when the spec is known.
    pub deletion_budget: Option<Budget>,
    /// Agents per phase, of the agents shown.
    pub phases: BTreeMap<String, usize>,
    /// One row per agent shown, by name.
    pub agents: Vec<AgentRow>,
}

/// Server deletions recorded in the hour before the last pass, against `maxDeletionsPerHour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// Deletions recorded.
    pub used: usize,
    /// The spec's `maxDeletionsPerHour`.
    pub limit: u32,
}

/// One agent's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRow {
    /// Agent name.
    pub agent: String,
    /// The spec's `customer` label.
    pub customer: Option<String>,
    /// The spec's subscription.
    pub subscription: Option<String>,
    /// Phase, as the document names it.
    pub phase: String,
    /// Hetzner server id.
    pub server_id: Option<u64>,
    /// Hetzner server type.
    pub server_type: Option<String>,
    /// Location.
    pub location: Option<String>,
    /// First public IPv4.
    pub ipv4: Option<String>,
    /// Whether its Tailscale device is online; `None` without a device.
    pub device_online: Option<bool>,
    /// The runtime version its on-VM agent last reported running and its heartbeat
    /// (`1.5.0 healthy`), from `status/runtime.yaml`; `None` without a report.
    pub runtime: Option<String>,
    /// When the pass that wrote this document observed the agent, RFC 3339.
    pub observed: Option<String>,
    /// The last action's error.
    pub last_error: Option<String>,
    /// When a quarantined server may be deleted, RFC 3339.
    pub delete_after: Option<String>,
    /// The last action status commits record for it (kind and outcome, e.g. `create done`).
    pub last_action: Option<String>,
    /// When that status commit was written, RFC 3339.
    pub last_action_at: Option<String>,
    /// Time since the last recorded `create … done`, e.g. `3d4h`.
    pub age: Option<String>,
}

/// What the status commits record for one agent, newest first read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// The newest action line's kind and outcome, with its commit time (UNIX seconds).
    pub last_action: Option<(String, i64)>,
    /// Commit time of the newest successful create.
    pub created: Option<i64>,
}

/// Folds status-commit action lines (`<kind> <agent> <outcome> …`), newest commit first, into
/// each agent's [`Activity`].
pub fn activity<'a>(
    commits: impl IntoIterator<Item = (i64, Vec<&'a str>)>,
) -> BTreeMap<String, Activity> {
    let mut out: BTreeMap<String, Activity> = BTreeMap::new();
    for (time, lines) in commits {
        for line in lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            let [kind, agent, outcome, ..] = words[..] else {
                continue;
            };
            let outcome = outcome.trim_end_matches(':').to_lowercase();
            let a = out.entry(agent.to_owned()).or_default();
            a.last_action
                .get_or_insert_with(|| (format!("{kind} {outcome}"), time));
            if kind == "create" && outcome == "done" && a.created.is_none() {
                a.created = Some(time);
            }
        }
    }
    out
}

fn rfc3339(t: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// `seconds` as the two largest units: `3d4h`, `5h12m`, `42s`.
fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

/// Which agents to show; `None` shows all.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this agent.
    pub agent: Option<String>,
    /// Only agents whose spec has this `customer` label.
    pub customer: Option<String>,
    /// Only agents in this phase.
    pub phase: Option<Phase>,
}

impl Filter {
    fn keeps(&self, row: &AgentRow) -> bool {
        self.agent.as_ref().is_none_or(|a| *a == row.agent)
            && self
                .customer
                .as_ref()
                .is_none_or(|c| row.customer.as_ref() == Some(c))
            && self.phase.is_none_or(|p| format!("{p:?}") == row.phase)
    }
}

fn parse(text: &str) -> Option<Yaml> {
    YamlLoader::load_from_str(text).ok()?.into_iter().next()
}

fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

impl FleetOverview {
    /// The overview of the status folder's `files` (name → text, as [`super::ledger::Ledger`]
    /// holds them), with customer and subscription from `spec` when given, narrowed by `filter`.
    /// Phase counts are of the agents shown. A document that does not parse is skipped.
    pub fn from_files(
        files: &BTreeMap<String, String>,
        spec: Option<&Fleet>,
        filter: &Filter,
    ) -> FleetOverview {
        let fleet = files.get(FLEET_FILE).and_then(|t| parse(t));
        let runtime = files
            .get(super::ledger::RUNTIME_FILE)
            .and_then(|t| parse(t));
        let field = |key: &str| fleet.as_ref().and_then(|y| text(&y[key]));
        let agents: Vec<AgentRow> = files
            .iter()
            .filter(|(name, _)| {
                ![
                    FLEET_FILE,
                    DELETIONS_FILE,
                    super::ledger::DEVICES_FILE,
                    super::ledger::RUNTIME_FILE,
                ]
                .contains(&name.as_str())
            })
            .filter_map(|(_, t)| parse(t))
            .filter_map(|doc| row(&doc, spec))
            .map(|mut r| {
                r.runtime = runtime.as_ref().and_then(|y| running(y, &r.agent));
                r
            })
            .filter(|r| filter.keeps(r))
            .collect();
        let mut phases = BTreeMap::new();
        for a in &agents {
            *phases.entry(a.phase.clone()).or_insert(0) += 1;
        }
        let used = files
            .get(DELETIONS_FILE)
            .and_then(|t| parse(t))
            .and_then(|y| y["deletions"].as_vec().map(Vec::len))
            .unwrap_or(0);
        FleetOverview {
            fleet: field("fleet"),
            revision: field("revision"),
            plan_hash: field("planHash").filter(|h| !h.is_empty()),
            last_pass: field("lastReconcile"),
            run: field("run"),
            suspended: fleet
                .as_ref()
                .and_then(|y| y["suspended"].as_bool())
                .unwrap_or(false),
            last_error: field("lastError"),
            deletion_budget: spec.map(|f| Budget {
                used,
                limit: f.settings.policy.max_deletions_per_hour,
            }),
            phases,
            agents,
        }
    }

    /// Fills each row's last action, its time and age from `activity`, as of `now` (UNIX
    /// seconds).
    pub fn with_activity(mut self, activity: &BTreeMap<String, Activity>, now: i64) -> Self {
        for row in &mut self.agents {
            let Some(a) = activity.get(&row.agent) else {
                continue;
            };
            if let Some((action, at)) = &a.last_action {
                row.last_action = Some(action.clone());
                row.last_action_at = rfc3339(*at);
            }
            row.age = a.created.map(|c| age(now - c));
        }
        self
    }

    /// The fleet lines and the table. `paint(phase, text)` colours a phase cell (`text` is
    /// already padded); pass `|_, t| t.to_owned()` for plain text.
    pub fn render(&self, paint: &dyn Fn(&str, &str) -> String) -> String {
        self.render_with(&[], paint)
    }

    /// Like [`FleetOverview::render`], with `more` fleet lines after the overview's own. What
    /// the status branch holds (errors, a VM's reports, names, ids) is escaped for the
    /// terminal ([`tether_core::escape::terminal`]).
    pub fn render_with(&self, more: &[String], paint: &dyn Fn(&str, &str) -> String) -> String {
        let mut out = String::new();
        let or_dash = |v: &Option<String>| terminal(v.as_deref().unwrap_or("-"));
        let _ = writeln!(out, "fleet:        {}", or_dash(&self.fleet));
        let _ = writeln!(
            out,
            "spec commit:  {}{}",
            terminal(self.revision.as_deref().map_or("-", short)),
            self.plan_hash
                .as_deref()
                .map(|h| format!(" (plan {})", short(h)))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "last pass:    {}{}",
            or_dash(&self.last_pass),
            self.run
                .as_deref()
                .map(|r| format!(" (run {})", terminal(r)))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "suspended:    {}",
            if self.suspended { "yes" } else { "no" }
        );
        if let Some(b) = self.deletion_budget {
            let _ = writeln!(
                out,
                "deletions:    {} of {} per hour (the hour before the last pass)",
                b.used, b.limit
            );
        }
        let counts: Vec<String> = PHASES
            .iter()
            .map(|p| format!("{p:?}"))
            .filter_map(|p| self.phases.get(&p).map(|n| format!("{n} {p}")))
            .collect();
        let _ = writeln!(
            out,
            "agents:       {}{}",
            self.agents.len(),
            if counts.is_empty() {
                String::new()
            } else {
                format!(" ({})", counts.join(", "))
            }
        );
        if let Some(e) = &self.last_error {
            let _ = writeln!(out, "last error:   {}", terminal(e));
        }
        for line in more {
            let _ = writeln!(out, "{}", terminal(line));
        }
        out.push('\n');
        if self.agents.is_empty() {
            out.push_str("no agents to show\n");
            return out;
        }
        self.table(&mut out, paint);
        out
    }

    fn table(&self, out: &mut String, paint: &dyn Fn(&str, &str) -> String) {
        const HEADER: [&str; 13] = COLUMNS;
        let rows: Vec<[String; 13]> = self
            .agents
            .iter()
            .map(|a| cells(a).map(|c| terminal(&c)))
            .collect();
        let mut widths = HEADER.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: [String; 13], phase: Option<&str>| {
            let mut l = String::new();
            for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                let padded = if i + 1 == cells.len() {
                    c.clone()
                } else {
                    format!("{c:<w$}  ")
                };
                match phase {
                    Some(p) if i == 3 => l.push_str(&paint(p, &padded)),
                    _ => l.push_str(&padded),
                }
            }
            l.trim_end().to_owned()
        };
        let _ = writeln!(out, "{}", line(HEADER.map(str::to_owned), None));
        for (r, a) in rows.into_iter().zip(&self.agents) {
            let _ = writeln!(out, "{}", line(r, Some(&a.phase)));
        }
    }
}

/// The table's columns, as `tether status` and the dashboard head them.
pub const COLUMNS: [&str; 13] = [
    "AGENT",
    "CUSTOMER",
    "SUBSCRIPTION",
    "PHASE",
    "SERVER",
    "TYPE",
    "LOCATION",
    "IPV4",
    "DEVICE",
    "AGE",
    "LAST ACTION",
    "LAST ERROR",
    "RUNTIME",
];

/// One row's cells under [`COLUMNS`], `-` where nothing is known.
pub fn cells(a: &AgentRow) -> [String; 13] {
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let error = a.last_error.clone().or_else(|| {
        a.delete_after
            .as_ref()
            .map(|d| format!("quarantined until {d}"))
    });
    [
        a.agent.clone(),
        dash(a.customer.clone()),
        dash(a.subscription.clone()),
        a.phase.clone(),
        dash(a.server_id.map(|i| i.to_string())),
        dash(a.server_type.clone()),
        dash(a.location.clone()),
        dash(a.ipv4.clone()),
        dash(
            a.device_online
                .map(|o| if o { "online" } else { "offline" }.to_owned()),
        ),
        dash(a.age.clone()),
        dash(
            a.last_action
                .as_ref()
                .map(|l| format!("{l} {}", a.last_action_at.as_deref().unwrap_or(""))),
        ),
        dash(error),
        dash(a.runtime.clone()),
    ]
}

/// The version an agent reports running and its heartbeat, from `status/runtime.yaml`.
fn running(doc: &Yaml, agent: &str) -> Option<String> {
    let entry = &doc["agents"][agent];
    let version = entry["running"].as_str()?;
    Some(match entry["heartbeat"].as_str() {
        Some(beat) => format!("{version} {beat}"),
        None => version.to_owned(),
    })
}

fn short(id: &str) -> &str {
    &id[..id.len().min(7)]
}

fn row(doc: &Yaml, spec: Option<&Fleet>) -> Option<AgentRow> {
    let agent = doc["agent"].as_str()?.to_owned();
    let phase = doc["phase"].as_str()?.to_owned();
    let server = &doc["server"];
    let spec_agent = spec.and_then(|f| f.agents.get(agent.as_str()));
    Some(AgentRow {
        customer: spec_agent.and_then(|a| {
            a.labels
                .iter()
                .find(|(k, _)| k.as_str() == "customer")
                .map(|(_, v)| v.as_str().to_owned())
        }),
        subscription: spec_agent.map(|a| a.subscription.as_str().to_owned()),
        phase,
        server_id: server["id"].as_i64().and_then(|i| u64::try_from(i).ok()),
        server_type: text(&server["serverType"]),
        location: text(&server["location"]),
        ipv4: server["publicIps"]
            .as_vec()
            .and_then(|ips| {
                ips.iter()
                    .filter_map(Yaml::as_str)
                    .find(|ip| !ip.contains(':'))
            })
            .map(str::to_owned),
        device_online: doc["device"]["online"].as_bool(),
        runtime: None,
        observed: text(&doc["lastTransitionTime"]),
        last_error: text(&doc["lastError"]),
        delete_after: text(&doc["quarantine"]["deleteAfter"]),
        last_action: None,
        last_action_at: None,
        age: None,
        agent,
    })
}

#[cfg(test)]
#[path = "overview_tests.rs"]
mod tests;
