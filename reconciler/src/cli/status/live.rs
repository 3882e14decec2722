//! What `tether status` reads besides the status branch: the fleet's lease in the repository,
//! and with `--live` the inventory (servers carrying the fleet's labels, the devices its device
//! record names, and the catalog's prices), through `tether plan`'s clients.

use crate::audit::ledger::Ledger;
use crate::audit::live::{LeaseView, Live, LiveDevice, LiveServer};
use crate::cli::{CliError, common};
use crate::daemon::lock::{self, LockStore};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;
use tether_schema::labels;

/// The lease on `fleet` in `repo` (the lock ref the daemon and `tether apply --git` take);
/// `None` when there is none or it cannot be read (a warning says which).
pub(super) fn lease(repo: &Path, fleet: &str) -> Option<LeaseView> {
    if fleet.is_empty() {
        return None;
    }
    match lock::current(&LockStore::Local(repo.to_owned()), fleet) {
        Ok(record) => record.map(|r| LeaseView {
            live: r.is_live(SystemTime::now()),
            holder: r.holder,
            expires_at: lock::rfc3339(r.expires_at),
            released: r.released,
        }),
        Err(e) => {
            eprintln!("warning: the lease of `{fleet}` cannot be read: {e}");
            None
        }
    }
}

/// The live inventory of `fleet`: its servers by their labels in every project it declares
/// (`projects`, from the applied revision's fleet.yaml; none: `HCLOUD_TOKEN`'s project), the
/// devices the status branch's device record (`files`) gives to its agents, and the catalog's
/// prices.
///
/// # Errors
/// Credentials are missing, or Hetzner or Tailscale cannot be read.
pub(super) fn read(
    fleet: &str,
    projects: &[String],
    files: &BTreeMap<String, String>,
) -> Result<Live, CliError> {
    if fleet.is_empty() {
        return Err(CliError::failed(
            "--live needs the fleet's name, and `status/fleet.yaml` on the status branch has none"
                .to_owned(),
            "run `tether apply` (or the daemon) once so the status branch records the fleet",
        ));
    }
    let (compute, tailnet) = common::clients_for_projects(projects)?;
    let rt = common::runtime()?;
    let observed = rt
        .block_on(crate::observe::observe(&compute, &tailnet))
        .map_err(|e| {
            CliError::failed(
                format!("--live: {e}"),
                "check the credentials and the network; without --live, tether status reads only git",
            )
        })?;
    let servers = observed
        .servers
        .iter()
        .filter(|s| s.labels.get(labels::FLEET).map(String::as_str) == Some(fleet))
        .filter_map(|s| {
            Some(LiveServer {
                agent: s.labels.get(labels::AGENT)?.clone(),
                id: s.id.0,
                status: serde_json::to_value(s.status).ok()?.as_str()?.to_owned(),
                server_type: s.server_type.clone(),
                location: s.location.clone(),
            })
        })
        .collect();
    let record = Ledger::from_files(files.clone()).devices;
    let mut devices: BTreeMap<String, LiveDevice> = BTreeMap::new();
    for d in &observed.devices {
        let Some(agent) = record.get(&d.id) else {
            continue;
        };
        let seen = LiveDevice {
            agent: agent.clone(),
            online: d.online,
            last_seen: d.last_seen.clone(),
        };
        // An agent's online device speaks for it; else the one seen last.
        let better =
            |kept: &LiveDevice| (seen.online, &seen.last_seen) > (kept.online, &kept.last_seen);
        if devices.get(agent).is_none_or(better) {
            devices.insert(agent.clone(), seen);
        }
    }
    let devices = devices.into_values().collect();
    Ok(Live {
        servers,
        devices,
        prices: observed.prices,
    })
}
