//! What `tether status` adds beside the status documents: the single-writer lease's holder,
//! and, from the live inventory (`--live`), the cost per month, each device's last contact,
//! and the places where the status branch and Hetzner or Tailscale disagree. Pure: the caller
//! reads the lease and the inventory; [`Extras::lines`] and [`Extras::section`] draw them.

use super::overview::AgentRow;
use crate::cloud::Euros;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use tether_core::escape::terminal;
use yaml_rust2::YamlLoader;

/// The lease on the fleet as the repository records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseView {
    /// Who holds (or last held) it.
    pub holder: String,
    /// When it ends unless renewed, RFC 3339.
    pub expires_at: String,
    /// Whether it still excludes every other writer.
    pub live: bool,
    /// Whether its holder gave it up.
    pub released: bool,
}

/// One live server of the fleet (carrying its fleet and agent labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveServer {
    /// Its `tether/agent` label.
    pub agent: String,
    /// Hetzner id.
    pub id: u64,
    /// Hetzner status, as the status documents spell it (`running`, `off`, …).
    pub status: String,
    /// Server type.
    pub server_type: String,
    /// Location.
    pub location: String,
}

/// One live device the status branch's device record gives to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveDevice {
    /// The agent.
    pub agent: String,
    /// Connected to the control plane now.
    pub online: bool,
    /// When it was last connected, RFC 3339 (`None` while online).
    pub last_seen: Option<String>,
}

/// The live inventory, as `--live` reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    /// The fleet's servers.
    pub servers: Vec<LiveServer>,
    /// The fleet's devices.
    pub devices: Vec<LiveDevice>,
    /// Monthly price per (server type, location), from Hetzner's catalog.
    pub prices: BTreeMap<(String, String), Euros>,
}

/// What the live servers cost per month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// The sum, in euros with two decimals (`41.70`).
    pub euros_per_month: String,
    /// Servers counted.
    pub servers: usize,
    /// `type@location` pairs the catalog has no price for (not in the sum).
    pub unpriced: Vec<String>,
}

/// One place where the status branch and the live inventory differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disagreement {
    /// The agent.
    pub agent: String,
    /// `serverMissing`, `serverExtra`, `serverReplaced`, `statusDiffers` or `deviceOffline`.
    pub kind: &'static str,
    /// What the status branch says.
    pub recorded: String,
    /// What the live inventory says.
    pub live: String,
}

/// Everything `tether status` shows beyond the overview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Extras {
    /// The lease, when the repository has one for the fleet.
    pub lease: Option<LeaseView>,
    /// The cost per month (with `--live`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// Every device of the fleet, online or when last seen (with `--live`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<LiveDevice>>,
    /// Where the status branch and the live inventory differ (with `--live`; empty when they
    /// agree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disagreements: Option<Vec<Disagreement>>,
}

impl Extras {
    /// The extras from the lease and, when read, the live inventory compared with `rows` (all
    /// the agents the status branch records, unfiltered).
    pub fn new(
        lease: Option<LeaseView>,
        live: Option<&Live>,
        rows: &[AgentRow],
        files: &BTreeMap<String, String>,
    ) -> Extras {
        let Some(live) = live else {
            return Extras {
                lease,
                ..Extras::default()
            };
        };
        let mut devices = live.devices.clone();
        devices.sort_by(|a, b| a.agent.cmp(&b.agent));
        Extras {
            lease,
            cost: Some(cost(live)),
            devices: Some(devices),
            disagreements: Some(disagreements(rows, &recorded_statuses(files), live)),
        }
    }

    /// Keeps only what concerns the agents `keep` (the filtered table's).
    pub fn narrowed(mut self, keep: &BTreeSet<&str>) -> Extras {
        if let Some(d) = &mut self.devices {
            d.retain(|x| keep.contains(x.agent.as_str()));
        }
        if let Some(d) = &mut self.disagreements {
            d.retain(|x| keep.contains(x.agent.as_str()));
        }
        self
    }

    /// Fleet-level lines, aligned with the overview's (`lease:`, `cost:`, `devices:`).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let lease = match &self.lease {
            None => "none recorded".to_owned(),
            Some(l) if l.released => format!("free (released by {})", l.holder),
            Some(l) if l.live => format!("held by {} until {}", l.holder, l.expires_at),
            Some(l) => format!(
                "free (held by {} until {}, expired)",
                l.holder, l.expires_at
            ),
        };
        out.push(format!("lease:        {lease}"));
        if let Some(c) = &self.cost {
            let unpriced = if c.unpriced.is_empty() {
                String::new()
            } else {
                format!("; no price for {}", c.unpriced.join(", "))
            };
            out.push(format!(
                "cost:         €{} per month for {} server(s){unpriced}",
                c.euros_per_month, c.servers
            ));
        }
        if let Some(devices) = &self.devices {
            let online = devices.iter().filter(|d| d.online).count();
            let offline: Vec<String> = devices
                .iter()
                .filter(|d| !d.online)
                .map(|d| {
                    format!(
                        "{} last seen {}",
                        d.agent,
                        d.last_seen.as_deref().unwrap_or("never")
                    )
                })
                .collect();
            let detail = if offline.is_empty() {
                String::new()
            } else {
                format!(" ({})", offline.join(", "))
            };
            out.push(format!(
                "devices:      {online} online, {} offline{detail}",
                offline.len()
            ));
        }
        out
    }

    /// The disagreements section after the table, escaped for the terminal (names and states
    /// come from the status branch and the providers); empty without `--live`.
    pub fn section(&self) -> String {
        let Some(found) = &self.disagreements else {
            return String::new();
        };
        if found.is_empty() {
            return "\nlive: the status branch agrees with Hetzner and Tailscale\n".to_owned();
        }
        let mut out = format!("\ndisagreements with the live inventory: {}\n", found.len());
        let width = found.iter().map(|d| d.agent.len()).max().unwrap_or(0);
        for d in found {
            let _ = writeln!(
                out,
                "  {:<width$}  {}: status branch says {}; live: {}",
                terminal(&d.agent),
                phrase(d.kind),
                terminal(&d.recorded),
                terminal(&d.live)
            );
        }
        out
    }
}

fn phrase(kind: &str) -> &'static str {
    match kind {
        "serverMissing" => "server missing",
        "serverExtra" => "server not recorded",
        "serverReplaced" => "another server",
        "statusDiffers" => "server status differs",
        _ => "device offline",
    }
}

fn cost(live: &Live) -> Cost {
    let mut total = 0i64;
    let mut unpriced = BTreeSet::new();
    for s in &live.servers {
        match live
            .prices
            .get(&(s.server_type.clone(), s.location.clone()))
        {
            Some(p) => total += p.0,
            None => {
                unpriced.insert(format!("{}@{}", s.server_type, s.location));
            }
        }
    }
    let cents = (total + 50) / 100;
    Cost {
        euros_per_month: format!("{}.{:02}", cents / 100, cents % 100),
        servers: live.servers.len(),
        unpriced: unpriced.into_iter().collect(),
    }
}

/// Each agent's server status as its status document records it (`running`, `off`, …).
fn recorded_statuses(files: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    files
        .values()
        .filter_map(|t| YamlLoader::load_from_str(t).ok()?.into_iter().next())
        .filter_map(|doc| {
            let agent = doc["agent"].as_str()?.to_owned();
            let status = doc["server"]["status"].as_str()?.to_owned();
            Some((agent, status))
        })
        .collect()
}

/// Where `rows` (the status branch, with each agent's recorded server status in `statuses`)
/// and `live` differ, by agent.
pub fn disagreements(
    rows: &[AgentRow],
    statuses: &BTreeMap<String, String>,
    live: &Live,
) -> Vec<Disagreement> {
    let mut out = Vec::new();
    let by_agent: BTreeMap<&str, &LiveServer> =
        live.servers.iter().map(|s| (s.agent.as_str(), s)).collect();
    let mut add = |agent: &str, kind, recorded: String, live: String| {
        out.push(Disagreement {
            agent: agent.to_owned(),
            kind,
            recorded,
            live,
        });
    };
    for row in rows {
        let recorded = row.server_id;
        match (recorded, by_agent.get(row.agent.as_str())) {
            (Some(id), None) => add(
                &row.agent,
                "serverMissing",
                format!("server {id}"),
                "no server".to_owned(),
            ),
            (Some(id), Some(s)) if s.id != id => add(
                &row.agent,
                "serverReplaced",
                format!("server {id}"),
                format!("server {} ({})", s.id, s.status),
            ),
            (Some(_), Some(s)) => {
                let recorded_status = statuses.get(&row.agent).map_or("unknown", String::as_str);
                if recorded_status != s.status {
                    add(
                        &row.agent,
                        "statusDiffers",
                        format!("server {} {recorded_status}", s.id),
                        s.status.clone(),
                    );
                }
            }
            (None, Some(s)) => add(
                &row.agent,
                "serverExtra",
                "no server".to_owned(),
                format!("server {} ({})", s.id, s.status),
            ),
            (None, None) => {}
        }
        let device = live.devices.iter().find(|d| d.agent == row.agent);
        if row.device_online == Some(true)
            && let Some(d) = device.filter(|d| !d.online)
        {
            add(
                &row.agent,
                "deviceOffline",
                "device online".to_owned(),
                format!(
                    "offline, last seen {}",
                    d.last_seen.as_deref().unwrap_or("never")
                ),
            );
        }
    }
    let recorded: BTreeSet<&str> = rows.iter().map(|r| r.agent.as_str()).collect();
    for s in &live.servers {
        if !recorded.contains(s.agent.as_str()) {
            add(
                &s.agent,
                "serverExtra",
                "no agent".to_owned(),
                format!("server {} ({})", s.id, s.status),
            );
        }
    }
    out.sort_by(|a, b| a.agent.cmp(&b.agent).then(a.kind.cmp(b.kind)));
    out
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
