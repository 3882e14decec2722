//! Hetzner Cloud API v1 client: [`Client`] implements [`crate::cloud::Compute`].
//!
//! - [`wire`]: the JSON; [`error`]: typed errors and the retry classifier;
//! - [`ratelimit`]: the client-side token bucket fed by `RateLimit-*` headers (its arithmetic
//!   is pure and lives in `tether_core::ratelimit`);
//! - [`waiter`]: batched action polling shared by all concurrent callers;
//! - `pages`: list endpoints, the pages after the first fetched concurrently;
//! - `request`: one request (paced, sent, decoded) and its retries;
//! - `create`: server creation, with the lookup and adoption after an unclear outcome;
//! - `compute`: the [`Compute`](crate::cloud::Compute) trait over those requests;
//! - `poller`: the one action poller behind `wait_for_actions`.
//!
//! Every request is retried by the shared policy in [`crate::cloud::retry`], except server
//! creation, which follows its own rule (see [`Client::create_server`]).

mod compute;
mod create;
pub mod error;
mod pages;
mod poller;
mod request;
pub mod waiter;
pub mod wire;

pub use error::{ApiError, Error, TransportKind};
pub use tether_core::ratelimit;

use crate::cloud::retry::{Backoff, Clock, TokioClock};
use crate::secret::Secret;
use ratelimit::Bucket;
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
}

#[cfg(test)]
mod emulator_tests;
#[cfg(test)]
mod tests;
