//! Reading the live inventory the planner needs: every server (ownership is checked by the
//! planner, not by a filter), every device, and server prices. The three reads run
//! concurrently.

use crate::cloud::tailscale::{self, DeviceQuery, Tailnet};
use crate::cloud::{Compute, hetzner};
use crate::plan::Observed;

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

/// Reads servers, devices and prices.
///
/// # Errors
/// Any read that fails after the clients' retries.
pub async fn observe<C: Compute, T: Tailnet>(
    compute: &C,
    tailnet: &T,
) -> Result<Observed, ObserveError> {
    let all = DeviceQuery::default();
    let (servers, devices, types) = tokio::join!(
        compute.list_servers(None),
        tailnet.list_devices(&all),
        compute.server_types()
    );
    let prices = types?
        .into_iter()
        .flat_map(|t| {
            let name = t.name;
            t.monthly_price
                .into_iter()
                .map(move |(location, price)| ((name.clone(), location), price))
        })
        .collect();
    Ok(Observed {
        servers: servers?,
        devices: devices?,
        prices,
    })
}
