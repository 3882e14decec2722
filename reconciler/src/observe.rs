//! Reading the live inventory the planner needs: every server (ownership is checked by the
//! planner, not by a filter), every device, and Hetzner's catalog (server types with their
//! prices, locations, system images). The five reads run concurrently, once per pass;
//! [`refresh`] re-reads only servers and devices after an apply.

use crate::cloud::tailscale::{self, DeviceQuery, Tailnet};
use crate::cloud::{Compute, Image, ServerType, hetzner};
use crate::plan::Observed;
use crate::plan::offer::{Offer, OfferedType};

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
