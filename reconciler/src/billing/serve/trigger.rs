//! After each commit, ask the daemon for a pass (`POST /reconcile` with its bearer token), so a
//! payment reaches a VM without waiting for the daemon's interval. Start at [`Trigger::nudge`].
//!
//! # Guarantees
//! - Never fatal and never delays an answer to Stripe: the request runs in its own task, and a
//!   failure is logged as a warning (the daemon's own timer or watch still picks the commit up).
//! - The token is sent only in the `Authorization` header and appears in no log line.

use crate::secret::Secret;
use std::time::Duration;

/// The daemon to nudge.
#[derive(Debug, Clone)]
pub struct Trigger {
    url: String,
    token: Secret<String>,
    client: reqwest::Client,
}

impl Trigger {
    /// Nudges the daemon at `base` (`http://127.0.0.1:9180`) with `token`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(base: &str, token: Secret<String>) -> Result<Trigger, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Trigger {
            url: format!("{}/reconcile", base.trim_end_matches('/')),
            token,
            client,
        })
    }

    /// Asks for a pass after `commit` landed, in the background.
    pub fn nudge(&self, commit: git2::Oid) {
        let trigger = self.clone();
        tokio::spawn(async move {
            let sent = trigger
                .client
                .post(&trigger.url)
                .bearer_auth(trigger.token.expose())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(%commit, "asked the daemon for a pass");
                }
                Ok(r) => {
                    tracing::warn!(%commit, url = %trigger.url, status = r.status().as_u16(), "the daemon refused the request for a pass; its own timer picks the commit up")
                }
                Err(e) => {
                    tracing::warn!(%commit, url = %trigger.url, error = %e.without_url(), "the daemon could not be asked for a pass; its own timer picks the commit up")
                }
            }
        });
    }
}
