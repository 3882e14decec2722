//! What the observed inventory is to this fleet: its servers (current, retired and
//! quarantined), the others, and the devices it can prove it owns ([`super::safety::device_owner`]).

use super::{Context, Note, Observed, safety};
use crate::compute::Server;
use crate::tailnet::{Device, DeviceId};
use std::collections::{BTreeMap, BTreeSet};
use tether_schema::{Fleet, labels};

/// Every observed device this fleet can prove it owns ([`safety::device_owner`]), with its
/// agent: what the status branch records as the fleet's device record.
pub fn device_ownership(
    fleet: &Fleet,
    observed: &Observed,
    ctx: &Context,
) -> BTreeMap<DeviceId, String> {
    let inventory = Inventory::classify(&observed.servers, fleet.settings.name.as_str());
    owned_devices(fleet, observed, &inventory, ctx, &mut Vec::new())
        .into_iter()
        .flat_map(|(agent, devs)| devs.into_iter().map(move |d| (d.id.clone(), agent.clone())))
        .collect()
}

/// The fleet's current servers (not retired ones), by agent name: the servers this fleet owns
/// ([`safety::owns_server`]) and that carry their agent's name.
pub fn managed_servers<'a>(fleet: &Fleet, observed: &'a Observed) -> BTreeMap<&'a str, &'a Server> {
    Inventory::classify(&observed.servers, fleet.settings.name.as_str()).managed
}

/// The observed servers, sorted by what they are to this fleet.
pub(super) struct Inventory<'a> {
    /// This fleet's current servers, by agent name.
    pub managed: BTreeMap<&'a str, &'a Server>,
    /// This fleet's retired servers (named [`labels::retired_name`]), left by replacements.
    pub retired: Vec<&'a Server>,
    /// Agents with a retired server: replacements still in progress.
    pub retired_agents: BTreeSet<&'a str>,
    /// This fleet's quarantined servers (named [`labels::quarantined_name`], labelled
    /// `tether/quarantined-at`): still owned, powered off, waiting for their grace period.
    pub quarantined: Vec<&'a Server>,
    /// Every server that is not this fleet's.
    pub unmanaged: Vec<&'a Server>,
    /// The servers that are not this fleet's, by name.
    pub foreign: BTreeMap<&'a str, &'a Server>,
}

impl<'a> Inventory<'a> {
    pub fn classify(servers: &'a [Server], fleet: &str) -> Inventory<'a> {
        let mut inv = Inventory {
            managed: BTreeMap::new(),
            retired: Vec::new(),
            retired_agents: BTreeSet::new(),
            quarantined: Vec::new(),
            unmanaged: Vec::new(),
            foreign: BTreeMap::new(),
        };
        for server in servers {
            let is_retired = server
                .labels
                .get(labels::RETIRED)
                .is_some_and(|v| v == "true");
            match server.labels.get(labels::AGENT) {
                Some(agent)
                    if safety::owns_server(server, fleet, agent)
                        && is_retired
                        && server.name == labels::retired_name(agent, server.id.0) =>
                {
                    inv.retired.push(server);
                    inv.retired_agents.insert(agent.as_str());
                }
                Some(agent)
                    if safety::owns_server(server, fleet, agent)
                        && server.labels.contains_key(labels::QUARANTINED_AT)
                        && server.name == labels::quarantined_name(agent, server.id.0) =>
                {
                    inv.quarantined.push(server);
                }
                Some(agent)
                    if safety::owns_server(server, fleet, agent)
                        && !is_retired
                        && (*agent == server.name
                            || server.name == labels::quarantined_name(agent, server.id.0)) =>
                {
                    // Under its quarantine name without the quarantine label: restored while
                    // a server this fleet does not own held the agent's name.
                    inv.managed.insert(agent.as_str(), server);
                }
                _ => {
                    inv.unmanaged.push(server);
                    inv.foreign.insert(server.name.as_str(), server);
                }
            }
        }
        inv
    }

    /// Every server this fleet owns: current, retired and quarantined.
    pub fn owned_count(&self) -> usize {
        self.managed.len() + self.retired.len() + self.quarantined.len()
    }

    /// The fleet's servers, current, retired and quarantined, by the agent they serve.
    fn owned_by_agent(&self) -> BTreeMap<&'a str, Vec<&'a Server>> {
        let mut by_agent: BTreeMap<&str, Vec<&Server>> = BTreeMap::new();
        for (agent, server) in &self.managed {
            by_agent.entry(agent).or_default().push(server);
        }
        for server in self.retired.iter().chain(&self.quarantined) {
            if let Some(agent) = server.labels.get(labels::AGENT) {
                by_agent.entry(agent.as_str()).or_default().push(server);
            }
        }
        by_agent
    }
}

/// The devices this fleet can prove it owns ([`safety::device_owner`]), by agent, oldest first.
/// Devices named like one of the fleet's agents but not provably its own get a note.
pub(super) fn owned_devices<'a>(
    fleet: &Fleet,
    observed: &'a Observed,
    inventory: &Inventory<'a>,
    ctx: &'a Context,
    notes: &mut Vec<Note>,
) -> BTreeMap<String, Vec<&'a Device>> {
    let fleet_tags: BTreeSet<&str> = fleet.settings.tags.iter().map(|t| t.as_str()).collect();
    let owned = inventory.owned_by_agent();
    let foreign: BTreeSet<&str> = inventory.foreign.keys().copied().collect();
    let mut by_agent: BTreeMap<String, Vec<&Device>> = BTreeMap::new();
    for d in &observed.devices {
        match safety::device_owner(d, ctx, &owned, &foreign, &fleet_tags) {
            Some((agent, _)) => by_agent.entry(agent.to_owned()).or_default().push(d),
            None => {
                let ours = fleet.agents.contains_key(d.hostname.as_str())
                    || owned.contains_key(d.hostname.as_str());
                if ours {
                    notes.push(Note::DeviceNotOwned {
                        agent: d.hostname.clone(),
                        device_id: d.id.clone(),
                    });
                }
            }
        }
    }
    for devs in by_agent.values_mut() {
        devs.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
    }
    by_agent
}

pub(super) fn device_ids(devices: Option<&Vec<&Device>>) -> Vec<DeviceId> {
    devices
        .map(|d| d.iter().map(|d| d.id.clone()).collect())
        .unwrap_or_default()
}
