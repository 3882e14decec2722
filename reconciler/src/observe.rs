//! Reading the live inventory the planner needs: every server (ownership is checked by the
//! planner, not by a filter), every device, and Hetzner's catalog (server types with their
//! prices, locations, system images). The five reads run concurrently, once per pass;
//! [`refresh`] re-reads only servers and devices, and [`refresh_touched`] — what a pass runs
//! after an apply — only the servers the apply touched, when that is cheaper than a listing.

use crate::apply::ApplyReport;
use crate::cloud::tailscale::{self, DeviceQuery, Tailnet};
use crate::cloud::{Compute, Image, ServerId, ServerType, hetzner};
use crate::plan::Observed;
use crate::plan::offer::{Offer, OfferedType};
use futures_util::{StreamExt, TryStreamExt};
use std::collections::BTreeSet;

/// Why the inventory could not be read. Planning stops: a partial inventory could make
/// servers look missing (and be created twice) or devices look stale.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// Hetzner could not be read.
    #[error("reading the Hetzner inventory failed: {0}")]
    Hetzner(#[from] hetzner::Error),
    /// Tailscale could not be read.
    #[error("reading the Tailscale devices failed: {0}")]
    Tailscale(#[from] tailscale::Error),
}

impl ObserveError {
    /// Whether reading again later may succeed: the providers' own classifiers say the
    /// failure was retryable (5xx, 429, timeouts, an unreachable endpoint), as opposed to a
    /// refusal such as 401, 403, 404 or 422.
    pub fn is_transient(&self) -> bool {
        let decision = match self {
            ObserveError::Hetzner(e) => e.retry(),
            ObserveError::Tailscale(e) => e.retry(),
        };
        decision != crate::cloud::retry::Retry::Terminal
    }
}

/// Reads servers, devices and the catalog.
///
/// # Errors
/// Any read that fails after the clients' retries.
pub async fn observe<C: Compute, T: Tailnet>(
    compute: &C,
    tailnet: &T,
) -> Result<Observed, ObserveError> {
    let all = DeviceQuery::default();
    let (servers, devices, types, locations, images) = tokio::join!(
        compute.list_servers(None),
        tailnet.list_devices(&all),
        compute.server_types(),
        compute.locations(),
        compute.images()
    );
    let types = types?;
    let prices = types
        .iter()
        .flat_map(|t| {
            t.monthly_price
                .iter()
                .map(|(location, price)| ((t.name.clone(), location.clone()), *price))
        })
        .collect();
    Ok(Observed {
        servers: servers?,
        devices: devices?,
        prices,
        offer: offer(types, locations?.into_iter().map(|l| l.name), images?),
    })
}

/// `before` with its servers and devices read again (after an apply changed them); the
/// catalog and prices are kept, so a pass lists each catalog once.
///
/// # Errors
/// Any read that fails after the clients' retries.
pub async fn refresh<C: Compute, T: Tailnet>(
    compute: &C,
    tailnet: &T,
    before: Observed,
) -> Result<Observed, ObserveError> {
    let all = DeviceQuery::default();
    let (servers, devices) = tokio::join!(compute.list_servers(None), tailnet.list_devices(&all));
    Ok(Observed {
        servers: servers?,
        devices: devices?,
        ..before
    })
}

/// Servers read one by one at most at once.
const READS_IN_FLIGHT: usize = 6;

/// `before` brought up to date after `report`'s apply, reading only what it touched: one device
/// listing, and `GET /servers/{id}` for every server an action created, deleted or acted on,
/// plus the servers already carrying an acting agent's label (a replacement's retired server).
/// When those reads would outnumber the pages of a full server listing, it lists instead
/// ([`refresh`]). Changes made outside this pass show up in the next pass's observation.
///
/// # Errors
/// Any read that fails after the clients' retries.
pub async fn refresh_touched<C: Compute, T: Tailnet>(
    compute: &C,
    tailnet: &T,
    before: Observed,
    report: &ApplyReport,
) -> Result<Observed, ObserveError> {
    let touched = touched(&before, report);
    let pages = (before.servers.len() + touched.len()).div_ceil(hetzner::PER_PAGE as usize);
    if touched.len() > pages {
        return refresh(compute, tailnet, before).await;
    }
    let all = DeviceQuery::default();
    let reads = futures_util::stream::iter(touched.iter().copied())
        .map(|id| compute.get_server(id))
        .buffered(READS_IN_FLIGHT)
        .try_collect::<Vec<_>>();
    let (read, devices) = tokio::join!(reads, tailnet.list_devices(&all));
    let mut servers: Vec<_> = before
        .servers
        .into_iter()
        .filter(|s| !touched.contains(&s.id))
        .chain(read?.into_iter().flatten())
        .collect();
    servers.sort_by_key(|s| s.id);
    Ok(Observed {
        servers,
        devices: devices?,
        ..before
    })
}

/// The servers `report`'s actions touched, and those of `before` labelled with an acting agent.
fn touched(before: &Observed, report: &ApplyReport) -> BTreeSet<ServerId> {
    let agents: BTreeSet<&str> = report.actions.iter().map(|a| a.agent.as_str()).collect();
    report
        .actions
        .iter()
        .flat_map(|a| a.server_id.into_iter().chain(a.deleted_server))
        .chain(
            before
                .servers
                .iter()
                .filter(|s| {
                    s.labels
                        .get(tether_schema::labels::AGENT)
                        .is_some_and(|a| agents.contains(a.as_str()))
                })
                .map(|s| s.id),
        )
        .collect()
}

fn offer(
    types: Vec<ServerType>,
    locations: impl Iterator<Item = String>,
    images: Vec<Image>,
) -> Offer {
    Offer {
        server_types: types
            .into_iter()
            .map(|t| {
                let offered = OfferedType {
                    locations: t.locations.into_iter().collect(),
                    deprecated_after: t.deprecated_after,
                    disk_gb: Some(t.disk_gb),
                    storage_type: t.storage_type,
                    architecture: t.architecture,
                };
                (t.name, offered)
            })
            .collect(),
        locations: locations.collect(),
        images: images
            .into_iter()
            .flat_map(|i| i.name.into_iter().chain([i.id.to_string()]))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{ActionReport, Outcome};
    use crate::cloud::NewServer;
    use crate::sandbox::stack::{Stack, StackOptions};
    use std::time::Duration;

    fn new_server(name: &str) -> NewServer {
        NewServer {
            name: name.to_owned(),
            server_type: "cpx21".into(),
            image: "ubuntu-24.04".into(),
            location: "fsn1".into(),
            ssh_keys: vec![],
            user_data: None,
            labels: [(tether_schema::labels::AGENT.to_owned(), name.to_owned())].into(),
            start_after_create: false,
            project: None,
            public_net: Default::default(),
        }
    }

    fn created(agent: &str, id: ServerId) -> ApplyReport {
        ApplyReport {
            plan_hash: "h".into(),
            revision: None,
            actions: vec![ActionReport {
                kind: "create",
                agent: agent.to_owned(),
                outcome: Outcome::Done,
                server_id: Some(id),
                ipv4: None,
                action_ids: vec![],
                device_ids: vec![],
                deleted_server: None,
                key_id: None,
                warning: None,
                reason: None,
                order: 0,
            }],
        }
    }

    #[tokio::test]
    async fn after_an_apply_that_touched_one_server_of_sixty_only_that_server_is_read() {
        let stack = Stack::start(StackOptions::default()).await.expect("stack");
        let compute = stack
            .hetzner_client(Duration::from_millis(20))
            .expect("hetzner client");
        let tailnet = stack.tailscale_client().expect("tailscale client");
        for i in 0..60 {
            compute
                .create_server(&new_server(&format!("old-{i:02}")))
                .await
                .expect("create");
        }
        let before = observe(&compute, &tailnet).await.expect("observe");
        let new = compute
            .create_server(&new_server("new"))
            .await
            .expect("create");
        let requests = |route: &str| {
            stack
                .hetzner
                .requests()
                .snapshot()
                .into_iter()
                .filter(|(k, _)| k.method == "GET" && k.route == route)
                .map(|(_, n)| n)
                .sum::<u64>()
        };
        let (lists, gets) = (requests("/v1/servers"), requests("/v1/servers/{id}"));

        let after = refresh_touched(&compute, &tailnet, before, &created("new", new.server.id))
            .await
            .expect("refresh");

        assert_eq!(requests("/v1/servers") - lists, 0, "no listing");
        assert_eq!(requests("/v1/servers/{id}") - gets, 1, "one read");
        assert_eq!(after.servers.len(), 61);
        assert!(after.servers.iter().any(|s| s.name == "new"));
        stack.shutdown().await;
    }
}
