//! `tether reconcile`: ask a running daemon for a pass now (`POST /reconcile`).

use super::{CliError, Outcome};
use crate::daemon::config::RECONCILE_TOKEN_ENV;

/// Ask a running `tether run` daemon to reconcile now, instead of at its next interval.
///
/// Sends `POST /reconcile` with the bearer token from TETHER_RECONCILE_TOKEN (the daemon's
/// `reconcile.tokenFile` or TETHER_RECONCILE_TOKEN). Exit status: 0 when the daemon accepted,
/// 1 when it refused, 4 when it cannot be reached.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// The daemon's HTTP address (its `listen` setting).
    #[arg(
        long,
        value_name = "URL",
        env = "TETHER_URL",
        default_value = "http://127.0.0.1:9180"
    )]
    url: String,
}

/// Runs `tether reconcile`.
///
/// # Errors
/// The token is not set, the daemon cannot be reached, or it refused.
pub fn cmd_reconcile(args: &ReconcileArgs) -> Result<Outcome, CliError> {
    let token = std::env::var(RECONCILE_TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            CliError::usage(
                format!("{RECONCILE_TOKEN_ENV} is not set"),
                format!("export {RECONCILE_TOKEN_ENV} with the token the daemon was given"),
            )
        })?;
    let url = format!("{}/reconcile", args.url.trim_end_matches('/'));
    let rt = super::common::runtime()?;
    let response = rt
        .block_on(async {
            reqwest::Client::new()
                .post(&url)
                .bearer_auth(token.trim())
                .timeout(std::time::Duration::from_secs(30))
                .send()
                .await
        })
        .map_err(|e| {
            let message = format!(
                "cannot reach the daemon at {url}: {}",
                crate::cloud::transport::describe(&e)
            );
            let hint = "check that `tether run` is running and --url (or TETHER_URL) names its `listen` address";
            if e.is_builder() {
                CliError::usage(message, hint)
            } else {
                CliError::transient(message, hint)
            }
        })?;
    match response.status().as_u16() {
        202 => {
            println!(
                "reconcile requested: the daemon starts a pass as soon as the current one, if any, finishes"
            );
            Ok(Outcome::Success)
        }
        401 => Err(CliError::failed(
            format!("the daemon at {url} refused the token"),
            format!("set {RECONCILE_TOKEN_ENV} to the daemon's token"),
        )),
        404 => Err(CliError::failed(
            format!("the daemon at {url} does not serve POST /reconcile"),
            format!(
                "give the daemon a token ({RECONCILE_TOKEN_ENV} or `reconcile.tokenFile`) and restart it"
            ),
        )),
        status => Err(CliError::failed(
            format!("the daemon at {url} answered HTTP {status}"),
            "see the daemon's log",
        )),
    }
}
