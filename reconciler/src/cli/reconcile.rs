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
    /// The daemon's HTTP address: a URL, or its `listen` setting as written (`127.0.0.1:9180`,
    /// read as `http://127.0.0.1:9180`).
    #[arg(
        long,
        value_name = "URL",
        env = "TETHER_URL",
        default_value = "http://127.0.0.1:9180"
    )]
    url: String,
}

/// The daemon's base URL from `--url`: a URL as given, or a `listen` address (`host:port`)
/// with `http://` in front. No trailing `/`.
///
/// # Errors
/// A usage error when the text is neither.
pub(super) fn base_url(text: &str) -> Result<String, CliError> {
    let text = text.trim();
    let url = if text.contains("://") {
        text.to_owned()
    } else {
        format!("http://{text}")
    };
    match reqwest::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(CliError::usage(
            format!("--url `{text}` is neither an http(s) URL nor a host:port"),
            "give the daemon's `listen` address, e.g. `127.0.0.1:9180` or `http://127.0.0.1:9180`",
        )),
    }
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
    let url = format!("{}/reconcile", base_url(&args.url)?);
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

#[cfg(test)]
mod tests {
    use super::base_url;

    #[test]
    fn the_listen_form_and_a_url_both_name_the_daemon() {
        assert_eq!(
            base_url("127.0.0.1:9180").expect("listen form"),
            "http://127.0.0.1:9180"
        );
        assert_eq!(
            base_url("http://127.0.0.1:9180/").expect("url"),
            "http://127.0.0.1:9180"
        );
        assert_eq!(
            base_url("https://tether.internal").expect("https"),
            "https://tether.internal"
        );
        assert_eq!(base_url("[::1]:9180").expect("ipv6"), "http://[::1]:9180");
        for bad in ["ftp://host", "http://", "a b:1"] {
            let err = base_url(bad).expect_err(bad);
            assert_eq!(err.kind.code(), 64, "{bad}");
        }
    }
}
