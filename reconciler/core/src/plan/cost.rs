//! What a plan costs: the change of the monthly bill from the server types' prices, and an
//! estimate of the API requests applying it takes.

use super::Action;
use crate::compute::{Euros, Server};
use std::collections::{BTreeMap, BTreeSet};

/// The monthly cost delta of `actions`, and the (type, location) pairs without a price.
pub fn monthly_delta(
    actions: &[Action],
    servers: &[Server],
    prices: &BTreeMap<(String, String), Euros>,
) -> (Euros, BTreeSet<(String, String)>) {
    let mut unknown = BTreeSet::new();
    let mut price = |server_type: &str, location: &str| -> i64 {
        let key = (server_type.to_owned(), location.to_owned());
        match prices.get(&key) {
            Some(p) => p.0,
            None => {
                unknown.insert(key);
                0
            }
        }
    };
    let by_id: std::collections::HashMap<_, _> = servers.iter().map(|s| (s.id, s)).collect();
    let current = |id| by_id.get(&id).copied();
    let mut delta = 0i64;
    for a in actions {
        match a {
            Action::Create {
                server_type,
                location,
                ..
            } => delta += price(server_type, location),
            Action::Delete {
                server_type,
                location,
                ..
            } => delta -= price(server_type, location),
            Action::Replace {
                server_id,
                server_type,
                location,
                ..
            } => {
                delta += price(server_type, location);
                if let Some(old) = current(*server_id) {
                    delta -= price(&old.server_type, &old.location);
                }
            }
            Action::Resize {
                server_id,
                from,
                to,
                ..
            } => {
                if let Some(old) = current(*server_id) {
                    delta += price(to, &old.location) - price(from, &old.location);
                }
            }
            Action::Relabel { .. }
            | Action::PowerOn { .. }
            | Action::PowerOff { .. }
            | Action::Quarantine { .. }
            | Action::Restore { .. }
            | Action::DeleteDevice { .. }
            | Action::Heal { .. }
            | Action::UpdateRuntime { .. } => {}
        }
    }
    (Euros(delta), unknown)
}

/// The servers in quarantine once `actions` are applied (those already quarantined and not
/// deleted or restored, plus those being quarantined), and what they cost per month: a
/// powered-off Hetzner server is still billed. Also the (type, location) pairs without a price.
pub fn quarantined(
    actions: &[Action],
    already: &[&Server],
    prices: &BTreeMap<(String, String), Euros>,
) -> (usize, Euros, BTreeSet<(String, String)>) {
    let leaving: BTreeSet<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { server_id, .. } | Action::Restore { server_id, .. } => {
                Some(*server_id)
            }
            _ => None,
        })
        .collect();
    let staying = already
        .iter()
        .filter(|s| !leaving.contains(&s.id))
        .map(|s| (s.server_type.clone(), s.location.clone()));
    let entering = actions.iter().filter_map(|a| match a {
        Action::Quarantine {
            server_type,
            location,
            ..
        } => Some((server_type.clone(), location.clone())),
        _ => None,
    });
    let mut unknown = BTreeSet::new();
    let mut count = 0;
    let mut total = 0i64;
    for key in staying.chain(entering) {
        count += 1;
        match prices.get(&key) {
            Some(p) => total += p.0,
            None => {
                unknown.insert(key);
            }
        }
    }
    (count, Euros(total), unknown)
}

/// Estimated API requests (Hetzner and Tailscale) to apply `actions`: the calls each action
/// makes plus its share of batched action polling and device checks.
pub fn api_calls(actions: &[Action]) -> u32 {
    let create = 5; // mint key, create server, poll, list devices, revoke-or-confirm key
    let delete = 3; // re-check labels, delete, poll
    actions
        .iter()
        .map(|a| match a {
            Action::Create { .. } => create,
            Action::Replace { old_devices, .. } => create + delete + old_devices.len() as u32,
            // record, power off, change type, power on, three polls, clear the record
            Action::Resize { .. } => 8,
            Action::Relabel { .. } | Action::DeleteDevice { .. } => 1,
            Action::PowerOn { .. } | Action::PowerOff { .. } => 2,
            // two records, shutdown, poll, relabel, one call per device
            Action::Quarantine { devices, .. } => 5 + devices.len() as u32,
            // record, relabel, power on, poll, device check, clear the record, one call per device
            Action::Restore { devices, .. } => 6 + devices.len() as u32,
            Action::Delete { devices, .. } => delete + devices.len() as u32,
            // re-check labels, then a rebuild (mint, rebuild, poll, device check, revoke), a
            // reset (reset, poll, device check) or a replacement
            Action::Heal {
                remedy,
                old_devices,
                ..
            } => match remedy {
                super::heal::Remedy::Rekey => 6,
                super::heal::Remedy::PowerCycle => 4,
                super::heal::Remedy::Replace => create + delete + old_devices.len() as u32,
            },
            // re-check labels, relabel once the wave is healthy (the agent pulls the rest)
            Action::UpdateRuntime { .. } => 2,
        })
        .sum()
}
