//! Hetzner Cloud API v1 client: [`Client`] implements [`crate::cloud::Compute`].
//!
//! - [`wire`]: the JSON; [`error`]: typed errors and the retry classifier;
//! - [`ratelimit`]: the client-side token bucket fed by `RateLimit-*` headers (its arithmetic
//!   is pure and lives in `tether_core::ratelimit`);
//! - [`waiter`]: batched action polling shared by all concurrent callers;
//! - `pages`: list endpoints, the pages after the first fetched concurrently.
//!
//! Every request is retried by the shared policy in [`crate::cloud::retry`], except server
//! creation, which follows its own rule (see [`Client::create_server`]).

pub mod error;
mod pages;
pub mod waiter;
pub mod wire;

pub use error::{ApiError, Error, TransportKind};
pub use tether_core::ratelimit;

use crate::cloud::retry::{self, Backoff, Clock, TokioClock};
use crate::cloud::{self, Action, ActionId, Compute, Created, NewServer, ServerId};
use crate::secret::Secret;
use ratelimit::Bucket;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use waiter::Waiters;

/// The public API endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://api.hetzner.cloud/v1";
/// Largest page the API serves.
pub const PER_PAGE: u32 = 50;
/// The default pause before the first action poll.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How to reach Hetzner.
#[derive(Debug, Clone)]
pub struct Config {
    /// API base URL including `/v1`.
    pub endpoint: String,
    /// Project API token.
    pub token: Secret<String>,
    /// Retry policy for requests.
    pub backoff: Backoff,
    /// Pause before the first batched action poll; later pauses double up to 20 times this
    /// ([`waiter::Cadence`]).
    pub poll_interval: Duration,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// How long an action may stay `running` before waiting for it fails
    /// ([`Error::ActionTimedOut`]).
    pub action_timeout: Duration,
}

/// The default action deadline: well above Hetzner's real create times (tens of seconds).
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(600);

impl Config {
    /// A configuration for `endpoint` and `token` with default policies.
    pub fn new(endpoint: impl Into<String>, token: Secret<String>) -> Self {
        Config {
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
            token,
            backoff: Backoff::default(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            request_timeout: Duration::from_secs(30),
            action_timeout: DEFAULT_ACTION_TIMEOUT,
        }
    }

    /// Reads `HCLOUD_TOKEN` (required), `HCLOUD_ENDPOINT` (default: the public API) and
    /// `HCLOUD_POLL_INTERVAL_MS` (default 500: the first pause between action polls; later ones
    /// back off, see [`waiter::Cadence`]).
    ///
    /// # Errors
    /// `HCLOUD_TOKEN` is unset or empty, `HCLOUD_ENDPOINT` is not an http(s) URL, or the poll
    /// interval is not a number.
    pub fn from_env() -> Result<Self, Error> {
        let token = std::env::var("HCLOUD_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Config("HCLOUD_TOKEN is not set: export a Hetzner Cloud API token (read/write) for the fleet's project".into()))?;
        let endpoint = match std::env::var("HCLOUD_ENDPOINT") {
            Ok(url) if !url.is_empty() => checked_endpoint(&url)?,
            _ => DEFAULT_ENDPOINT.to_owned(),
        };
        let mut config = Config::new(endpoint, Secret::new(token));
        if let Ok(ms) = std::env::var("HCLOUD_POLL_INTERVAL_MS") {
            let ms: u64 = ms.parse().map_err(|_| {
                Error::Config(format!(
                    "HCLOUD_POLL_INTERVAL_MS is `{ms}`, not a number of milliseconds"
                ))
            })?;
            config.poll_interval = Duration::from_millis(ms.max(10));
        }
        Ok(config)
    }
}

/// `url` when it is an http:// or https:// URL with a host, else an error naming
/// `HCLOUD_ENDPOINT`, so a typo fails before any request instead of as a retried "builder
/// error".
fn checked_endpoint(url: &str) -> Result<String, Error> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(url.to_owned()),
        Ok(_) => Err(Error::Config(format!(
            "HCLOUD_ENDPOINT `{url}` is not an http:// or https:// URL (e.g. {DEFAULT_ENDPOINT})"
        ))),
        Err(e) => Err(Error::Config(format!(
            "HCLOUD_ENDPOINT `{url}` is not a URL ({e}); e.g. {DEFAULT_ENDPOINT}"
        ))),
    }
}

/// A Hetzner Cloud client; cheap to clone, safe to share between tasks.
#[derive(Debug, Clone)]
pub struct Client<C: Clock = TokioClock> {
    inner: Arc<Inner<C>>,
}

#[derive(Debug)]
struct Inner<C> {
    http: reqwest::Client,
    config: Config,
    clock: C,
    bucket: Mutex<Bucket>,
    waiters: Waiters,
    counts: Mutex<BTreeMap<Option<u16>, u64>>,
}

impl Client<TokioClock> {
    /// A client with the real clock.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(config: Config) -> Result<Self, Error> {
        Client::with_clock(config, TokioClock)
    }
}

impl<C: Clock + Clone + 'static> Client<C> {
    /// A client with the given clock (a `ManualClock` in tests).
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn with_clock(config: Config, clock: C) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        let bucket = Mutex::new(Bucket::new(clock.now()));
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                config,
                clock,
                bucket,
                waiters: Waiters::default(),
                counts: Mutex::default(),
            }),
        })
    }

    /// The last known `RateLimit-Remaining`.
    pub fn rate_limit_remaining(&self) -> u32 {
        self.inner
            .bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remaining()
    }

    /// The rate-limit bucket as the last `RateLimit-*` headers left it, less requests since.
    pub fn rate_limit(&self) -> ratelimit::Observed {
        self.inner
            .bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .state()
    }

    /// Requests sent so far by HTTP status (`None`: no answer), for metrics.
    pub fn request_counts(&self) -> BTreeMap<Option<u16>, u64> {
        self.inner
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn count(&self, status: Option<u16>) {
        *self
            .inner
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(status)
            .or_default() += 1;
    }

    /// One request, one attempt: waits for the rate limiter, sends, decodes or types the error.
    async fn send<T: DeserializeOwned>(
        &self,
        operation: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, Error> {
        let inner = &self.inner;
        let wait = inner
            .bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(inner.clock.now());
        if !wait.is_zero() {
            tracing::debug!(
                provider = "hetzner",
                wait_ms = wait.as_millis() as u64,
                "pacing for the rate limit"
            );
            inner.clock.sleep(wait).await;
        }
        let url = format!("{}{path}", inner.config.endpoint);
        let mut request = inner
            .http
            .request(method, &url)
            .bearer_auth(inner.config.token.expose())
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let sent = request.send().await;
        self.count(sent.as_ref().ok().map(|r| r.status().as_u16()));
        let response = sent.map_err(|e| transport(operation, &e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if let Some(observed) = rate_limit_headers(&headers) {
            inner
                .bucket
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .observe(observed, inner.clock.now());
        }
        let correlation_id = headers
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport(operation, &e))?;
        tracing::debug!(provider = "hetzner", operation, status, "request");
        if (200..300).contains(&status) {
            let text: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return serde_json::from_slice(text).map_err(|e| Error::Decode {
                operation: operation.to_owned(),
                message: e.to_string(),
            });
        }
        let (code, message, details) = match serde_json::from_slice::<wire::ErrorEnvelope>(&bytes) {
            Ok(env) => (env.error.code, env.error.message, env.error.details),
            Err(_) => (
                format!("http_{status}"),
                "response without an error envelope".to_owned(),
                Value::Null,
            ),
        };
        let retry_at = (status == 429).then(|| {
            inner
                .bucket
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .next_allowed(inner.clock.now())
        });
        Err(Error::Api(Box::new(ApiError {
            operation: operation.to_owned(),
            status,
            code,
            message,
            details,
            correlation_id,
            retry_at,
        })))
    }

    /// A request retried by the shared policy.
    async fn call<T: DeserializeOwned>(
        &self,
        operation: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, Error> {
        retry::retry(
            &self.inner.config.backoff,
            &self.inner.clock,
            "hetzner",
            operation,
            Error::retry,
            || self.send(operation, method.clone(), path, query, body),
        )
        .await
    }

    async fn server_action(
        &self,
        id: ServerId,
        action: &str,
        body: Option<&Value>,
    ) -> Result<Action, Error> {
        let operation = format!("{action} server {id}");
        let r: wire::ActionResponse = self
            .call(
                &operation,
                Method::POST,
                &format!("/servers/{id}/actions/{action}"),
                &[],
                body,
            )
            .await?;
        Ok(r.action.into())
    }

    /// After an unclear create, finds the server by name: ours (same labels) is adopted with
    /// its actions, anyone else's is [`Error::NameTaken`], none is `Ok(None)`.
    async fn adopt(&self, new: &NewServer) -> Result<Option<Created>, Error> {
        let Some(server) = self.find_server(&new.name).await? else {
            return Ok(None);
        };
        if server.labels != new.labels {
            return Err(Error::NameTaken {
                name: new.name.clone(),
                id: server.id.0,
            });
        }
        let operation = format!("list actions of server {}", server.id);
        let mut actions: Vec<Action> = self
            .list_all(
                &operation,
                &format!("/servers/{}/actions", server.id),
                &[("sort", "id:asc".to_owned())],
                |r: wire::ActionsResponse| {
                    (
                        r.actions.into_iter().map(Action::from).collect(),
                        r.meta.pagination,
                    )
                },
            )
            .await?;
        let position = actions.iter().position(|a| a.command == "create_server");
        let action = match position {
            Some(i) => actions.remove(i),
            None => {
                return Err(Error::Decode {
                    operation,
                    message: "adopted server has no create_server action".into(),
                });
            }
        };
        tracing::info!(provider = "hetzner", server = %server.id, name = %new.name, "adopted a server created by an earlier attempt");
        Ok(Some(Created {
            server,
            action,
            next_actions: actions,
            adopted: true,
        }))
    }
}

fn transport(operation: &str, e: &reqwest::Error) -> Error {
    if e.is_builder() {
        return Error::Config(format!(
            "{operation}: {}",
            crate::cloud::transport::describe(e)
        ));
    }
    let kind = if e.is_connect() {
        TransportKind::Connect
    } else if e.is_timeout() {
        TransportKind::Timeout
    } else {
        TransportKind::Interrupted
    };
    // reqwest errors carry the URL but never headers or bodies, so the token cannot leak here.
    Error::Transport {
        operation: operation.to_owned(),
        kind,
        message: crate::cloud::transport::describe(e),
    }
}

/// Reads `RateLimit-Limit` and `RateLimit-Remaining` (any case) from `headers`.
fn rate_limit_headers(headers: &reqwest::header::HeaderMap) -> Option<ratelimit::Observed> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u32>().ok();
    Some(ratelimit::Observed {
        limit: number("ratelimit-limit")?,
        remaining: number("ratelimit-remaining")?,
    })
}

fn create_body(new: &NewServer) -> Value {
    let mut body = json!({
        "name": new.name,
        "server_type": new.server_type,
        "image": new.image,
        "location": new.location,
        "ssh_keys": new.ssh_keys,
        "labels": new.labels,
        "start_after_create": new.start_after_create,
    });
    if let Some(user_data) = &new.user_data {
        body["user_data"] = Value::String(user_data.expose().clone());
    }
    body
}

impl<C: Clock + Clone + 'static> Compute for Client<C> {
    async fn list_servers(
        &self,
        label_selector: Option<&str>,
    ) -> Result<Vec<cloud::Server>, Error> {
        let query: Vec<(&str, String)> = label_selector
            .map(|s| ("label_selector", s.to_owned()))
            .into_iter()
            .collect();
        self.list_all(
            "list servers",
            "/servers",
            &query,
            |r: wire::ServersResponse| {
                (
                    r.servers.into_iter().map(cloud::Server::from).collect(),
                    r.meta.pagination,
                )
            },
        )
        .await
    }

    async fn find_server(&self, name: &str) -> Result<Option<cloud::Server>, Error> {
        let operation = format!("find server {name}");
        let r: wire::ServersResponse = self
            .call(
                &operation,
                Method::GET,
                "/servers",
                &[("name", name.to_owned())],
                None,
            )
            .await?;
        Ok(r.servers
            .into_iter()
            .map(cloud::Server::from)
            .find(|s| s.name == name))
    }

    async fn get_server(&self, id: ServerId) -> Result<Option<cloud::Server>, Error> {
        match self
            .call::<wire::ServerResponse>(
                &format!("get server {id}"),
                Method::GET,
                &format!("/servers/{id}"),
                &[],
                None,
            )
            .await
        {
            Ok(r) => Ok(Some(r.server.into())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a server, never blindly twice.
    ///
    /// # Guarantees
    /// - At most one server named `new.name` exists because of this call: a request whose
    ///   outcome is unclear (timeout, broken connection, 5xx) is followed by a lookup by name
    ///   before anything else. A server with that name and exactly `new.labels` is adopted
    ///   (`Created::adopted`), with its real `create_server` action.
    /// - A retry only follows a lookup that found nothing; if that retry meets
    ///   `uniqueness_error` (the first attempt landed late), the server is looked up and
    ///   adopted the same way.
    /// - A server with the name but other labels is never adopted: [`Error::NameTaken`].
    ///
    /// # Assumptions
    /// Server names are unique per project (Hetzner enforces it with `uniqueness_error`).
    ///
    /// # Errors
    /// Terminal API errors (`invalid_input`, quota, …), [`Error::NameTaken`], or the last
    /// error once the retry budget is spent.
    async fn create_server(&self, new: &NewServer) -> Result<Created, Error> {
        let operation = format!("create server {}", new.name);
        let body = create_body(new);
        let backoff = self.inner.config.backoff;
        let mut unclear_before = false;
        let mut attempt = 0;
        loop {
            let err = match self
                .send::<wire::CreateServerResponse>(
                    &operation,
                    Method::POST,
                    "/servers",
                    &[],
                    Some(&body),
                )
                .await
            {
                Ok(r) => {
                    return Ok(Created {
                        server: r.server.into(),
                        action: r.action.into(),
                        next_actions: r.next_actions.into_iter().map(Action::from).collect(),
                        adopted: false,
                    });
                }
                Err(e) => e,
            };
            let landed_late = unclear_before && err.code() == Some("uniqueness_error");
            if err.outcome_unclear() || landed_late {
                tracing::warn!(provider = "hetzner", operation, error = %err, "create outcome unclear; looking the server up by name");
                if let Some(created) = self.adopt(new).await? {
                    return Ok(created);
                }
                unclear_before = true;
            }
            let Some((delay, reason)) =
                retry::next_delay(&backoff, err.retry(), attempt, self.inner.clock.now())
            else {
                return Err(err);
            };
            attempt += 1;
            tracing::warn!(provider = "hetzner", operation, attempt, delay_ms = delay.as_millis() as u64, %reason, "retrying create after lookup found nothing");
            self.inner.clock.sleep(delay).await;
        }
    }

    async fn delete_server(&self, id: ServerId) -> Result<Option<Action>, Error> {
        match self
            .call::<wire::ActionResponse>(
                &format!("delete server {id}"),
                Method::DELETE,
                &format!("/servers/{id}"),
                &[],
                None,
            )
            .await
        {
            Ok(r) => Ok(Some(r.action.into())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn update_server(
        &self,
        id: ServerId,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<cloud::Server, Error> {
        let mut body = json!({ "labels": labels });
        if let Some(name) = name {
            body["name"] = Value::String(name.to_owned());
        }
        let r: wire::ServerResponse = self
            .call(
                &format!("update server {id}"),
                Method::PUT,
                &format!("/servers/{id}"),
                &[],
                Some(&body),
            )
            .await?;
        Ok(r.server.into())
    }

    async fn power_on(&self, id: ServerId) -> Result<Action, Error> {
        self.server_action(id, "poweron", None).await
    }

    async fn power_off(&self, id: ServerId) -> Result<Action, Error> {
        self.server_action(id, "poweroff", None).await
    }

    async fn shutdown(&self, id: ServerId) -> Result<Action, Error> {
        self.server_action(id, "shutdown", None).await
    }

    async fn rebuild(
        &self,
        id: ServerId,
        image: &str,
        user_data: &crate::secret::Secret<String>,
    ) -> Result<Action, Error> {
        let body = json!({ "image": image, "user_data": user_data.expose() });
        self.server_action(id, "rebuild", Some(&body)).await
    }

    async fn reset(&self, id: ServerId) -> Result<Action, Error> {
        self.server_action(id, "reset", None).await
    }

    async fn change_type(
        &self,
        id: ServerId,
        server_type: &str,
        upgrade_disk: bool,
    ) -> Result<Action, Error> {
        let body = json!({ "server_type": server_type, "upgrade_disk": upgrade_disk });
        self.server_action(id, "change_type", Some(&body)).await
    }

    async fn wait_for_actions(&self, ids: &[ActionId]) -> Result<Vec<Action>, Error> {
        let (receivers, start) = self.inner.waiters.register(ids, self.inner.clock.now());
        if start {
            tokio::spawn(self.clone().poll());
        }
        let mut actions = Vec::with_capacity(ids.len());
        for rx in receivers {
            match rx.await {
                Ok(Ok(action)) => actions.push(action),
                Ok(Err(failure)) => return Err(failure.into()),
                Err(_) => {
                    return Err(Error::Decode {
                        operation: "wait for actions".into(),
                        message: "the action poller stopped".into(),
                    });
                }
            }
        }
        Ok(actions)
    }

    async fn server_types(&self) -> Result<Vec<cloud::ServerType>, Error> {
        self.list_all(
            "list server types",
            "/server_types",
            &[],
            |r: wire::ServerTypesResponse| {
                (
                    r.server_types.into_iter().map(Into::into).collect(),
                    r.meta.pagination,
                )
            },
        )
        .await
    }

    async fn locations(&self) -> Result<Vec<cloud::Location>, Error> {
        self.list_all(
            "list locations",
            "/locations",
            &[],
            |r: wire::LocationsResponse| {
                (
                    r.locations.into_iter().map(Into::into).collect(),
                    r.meta.pagination,
                )
            },
        )
        .await
    }

    async fn images(&self) -> Result<Vec<cloud::Image>, Error> {
        self.list_all(
            "list images",
            "/images",
            &[("type", "system".to_owned())],
            |r: wire::ImagesResponse| {
                (
                    r.images.into_iter().map(Into::into).collect(),
                    r.meta.pagination,
                )
            },
        )
        .await
    }

    async fn ssh_keys(&self) -> Result<Vec<cloud::SshKey>, Error> {
        self.list_all(
            "list ssh keys",
            "/ssh_keys",
            &[],
            |r: wire::SshKeysResponse| {
                (
                    r.ssh_keys.into_iter().map(Into::into).collect(),
                    r.meta.pagination,
                )
            },
        )
        .await
    }
}

impl<C: Clock + Clone + 'static> Client<C> {
    /// The poller: each tick (at the backing-off [`waiter::Cadence`], or when the running
    /// actions' progress says they should have ended), `GET /actions?id=…` for
    /// the pending ids, 50 per request, oldest first, until a request in which nothing
    /// finished; it stops when nobody waits.
    async fn poll(self) {
        let mut cadence = waiter::Cadence::new(self.inner.config.poll_interval);
        let mut eta = None;
        loop {
            self.inner.clock.sleep(cadence.pause_for(eta)).await;
            let Some(batches) = self.inner.waiters.batches() else {
                return;
            };
            eta = None;
            for ids in batches {
                let mut query: Vec<(&str, String)> =
                    ids.iter().map(|id| ("id", id.to_string())).collect();
                query.push(("per_page", PER_PAGE.to_string()));
                let delivered = match self
                    .call::<wire::ActionsResponse>(
                        "poll actions",
                        Method::GET,
                        "/actions",
                        &query,
                        None,
                    )
                    .await
                {
                    Ok(r) => self.inner.waiters.deliver(
                        &ids,
                        r.actions.into_iter().map(Action::from).collect(),
                        self.inner.clock.now(),
                        self.inner.config.action_timeout,
                    ),
                    Err(e) => {
                        self.inner.waiters.fail(&ids, &e.to_string());
                        waiter::Delivered {
                            settled: ids.len(),
                            eta: None,
                        }
                    }
                };
                eta = waiter::latest(eta, delivered.eta);
                if delivered.settled == 0 {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod emulator_tests;
#[cfg(test)]
mod tests;
