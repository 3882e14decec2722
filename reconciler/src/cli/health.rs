//! `tether health`: ask a running daemon whether it is alive (`GET /healthz`) or ready
//! (`GET /readyz`), for a container's health check in an image that holds no curl.

use super::{CliError, Outcome};
use std::time::Duration;

/// Most characters of the daemon's answer shown.
const MAX_SHOWN: usize = 300;

/// Check a running `tether run` daemon: alive (`/healthz`), or with --ready, ready (`/readyz`).
///
/// Exit status: 0 when it answered 200, 1 when it answered otherwise (not ready: standing by
/// on the lease, degraded, shutting down), 4 when it cannot be reached.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The daemon's HTTP address: a URL, or its `listen` setting as written (`127.0.0.1:9180`).
    #[arg(
        long,
        value_name = "URL",
        env = "TETHER_URL",
        default_value = "127.0.0.1:9180"
    )]
    url: String,
    /// Ask `/readyz` (a pass succeeded and this daemon holds the lease) instead of `/healthz`.
    #[arg(long)]
    ready: bool,
}

/// Runs `tether health`.
///
/// # Errors
/// The URL is not one (usage), the daemon cannot be reached, or it is not healthy (ready).
pub fn cmd_health(args: &HealthArgs) -> Result<Outcome, CliError> {
    let path = if args.ready { "readyz" } else { "healthz" };
    let url = format!("{}/{path}", super::reconcile::base_url(&args.url)?);
    let rt = super::common::runtime()?;
    let (status, body) = rt
        .block_on(async {
            let response = reqwest::Client::new()
                .get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.text().await.unwrap_or_default()))
        })
        .map_err(|e| {
            CliError::transient(
                format!(
                    "cannot reach the daemon at {url}: {}",
                    crate::cloud::transport::describe(&e)
                ),
                "check that `tether run` is running and --url (or TETHER_URL) names its `listen` address",
            )
        })?;
    let shown: String = body
        .trim()
        .chars()
        .take(MAX_SHOWN)
        .filter(|c| !c.is_control())
        .collect();
    if status == 200 {
        println!("{shown}");
        Ok(Outcome::Success)
    } else {
        Err(CliError::failed(
            format!("the daemon at {url} answered HTTP {status}: {shown}"),
            "the answer says why; see the daemon's log",
        ))
    }
}
