//! `tether-agent`, the on-VM agent: it pulls the runtime tether wants for this VM from the
//! daemon's agent API over the tailnet, applies it through an [`Applier`], and reports what runs
//! (every report is a heartbeat). The binary is `src/bin/tether-agent.rs`; the sandbox runs the
//! same [`run`] loop in-process for every emulated VM (`crate::sandbox::agents`).
//!
//! Start at [`run`]. [`Client`] speaks the API ([`crate::runtime::wire`]); [`systemd`] is the
//! real applier; [`config`] reads what cloud-init wrote.

pub mod config;
pub mod systemd;

use crate::runtime::wire::{Desired, ErrorBody, Report, Rotated};
use crate::secret::Secret;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// Applies a desired runtime on the VM.
pub trait Applier: Send + Sync {
    /// Installs or selects `desired.version`, writes its env, restarts it, and says whether it
    /// came up: `Err` with what went wrong (shown on the status branch; never the env).
    fn apply(&self, desired: &Desired) -> impl Future<Output = Result<(), String>> + Send;
}

/// Why a request to the agent API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API could not be reached or answered garbage.
    #[error("agent API {url}: {source}")]
    Transport {
        /// The URL asked.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// The API refused the request.
    #[error("agent API {url} answered {status}: {message}")]
    Refused {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The API's explanation.
        message: String,
    },
}

/// The agent API, as one agent.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    name: String,
    credential: Secret<String>,
}

impl Client {
    /// A client for agent `name` at `base` (`http://100.64.0.1:8790`).
    pub fn new(base: &str, name: &str, credential: Secret<String>) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            name: name.to_owned(),
            credential,
        }
    }

    fn url(&self, what: &str) -> String {
        format!("{}/v1/agents/{}/{what}", self.base, self.name)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: String,
    ) -> Result<Option<reqwest::Response>, ClientError> {
        let response = request
            .bearer_auth(self.credential.expose())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let message = response
                .json::<ErrorBody>()
                .await
                .map_or_else(|_| "no explanation".to_owned(), |b| b.error);
            return Err(ClientError::Refused {
                url,
                status: status.as_u16(),
                message,
            });
        }
        Ok(Some(response))
    }

    /// What tether wants this VM to run; `None` while it has nothing to serve yet.
    ///
    /// # Errors
    /// The API cannot be reached or refuses the credential.
    pub async fn desired(&self) -> Result<Option<Desired>, ClientError> {
        let url = self.url("runtime");
        let Some(response) = self.send(self.http.get(&url), url.clone()).await? else {
            return Ok(None);
        };
        response
            .json()
            .await
            .map(Some)
            .map_err(|source| ClientError::Transport { url, source })
    }

    /// Reports what runs.
    ///
    /// # Errors
    /// The API cannot be reached or refuses the credential.
    pub async fn report(&self, report: &Report) -> Result<(), ClientError> {
        let url = self.url("report");
        self.send(self.http.post(&url).json(report), url)
            .await
            .map(|_| ())
    }

    /// Asks for a new credential; the old one stops working at once.
    ///
    /// # Errors
    /// The API cannot be reached or refuses the credential.
    pub async fn rotate(&self) -> Result<Secret<String>, ClientError> {
        let url = self.url("rotate");
        let response = self.send(self.http.post(&url), url.clone()).await?;
        let Some(response) = response else {
            return Err(ClientError::Refused {
                url,
                status: 404,
                message: "rotation is not served".to_owned(),
            });
        };
        response
            .json::<Rotated>()
            .await
            .map(|r| Secret::new(r.credential))
            .map_err(|source| ClientError::Transport { url, source })
    }
}

/// Polls, applies and reports until `stop` turns `true`. A runtime is applied once per change
/// of what is served (a failed one is reported, not retried, until tether serves another);
/// `poll` overrides the interval the API asks for.
pub async fn run<A: Applier>(
    client: &Client,
    applier: &A,
    poll: Option<Duration>,
    mut stop: watch::Receiver<bool>,
) {
    let mut applied: Option<Desired> = None;
    let mut last = Report {
        version: None,
        healthy: false,
        error: Some("no runtime applied yet".to_owned()),
    };
    let mut interval = poll.unwrap_or(Duration::from_secs(10));
    while !*stop.borrow() {
        match client.desired().await {
            Ok(Some(desired)) => {
                interval = poll.unwrap_or(Duration::from_secs(desired.poll_seconds.max(1)));
                if applied.as_ref() != Some(&desired) {
                    tracing::info!(agent = %client.name, version = %desired.version, "applying runtime");
                    last = match applier.apply(&desired).await {
                        Ok(()) => Report {
                            version: Some(desired.version.clone()),
                            healthy: true,
                            error: None,
                        },
                        Err(error) => {
                            tracing::warn!(agent = %client.name, version = %desired.version, %error, "runtime failed");
                            Report {
                                version: Some(desired.version.clone()),
                                healthy: false,
                                // The API keeps one line of a few hundred characters.
                                error: Some(crate::runtime::wire::one_line(
                                    &error,
                                    crate::runtime::wire::KEPT_ERROR_CHARS,
                                )),
                            }
                        }
                    };
                    applied = Some(desired);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(agent = %client.name, error = %e, "polling the agent API failed")
            }
        }
        if let Err(e) = client.report(&last).await {
            tracing::warn!(agent = %client.name, error = %e, "reporting to the agent API failed");
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
    }
}
