//! Credentials for the Tailscale API and where they come from: an API access token (sent as
//! HTTP Basic `token:`, like the official Go client), or an OAuth client whose one-hour bearer
//! tokens are fetched from `POST /api/v2/oauth/token`, cached, and renewed five minutes before
//! they expire. Time comes from a [`Clock`], so tests of renewal take no real time.
//!
//! # Guarantees
//! - Tokens and client secrets live in [`Secret`]s: no `Debug`, `Display`, log line or error of
//!   this module contains one.
//! - Concurrent callers share one token fetch: the cache is behind an async mutex.

use super::Error;
use super::wire;
use crate::cloud::retry::Clock;
use crate::secret::Secret;
use std::time::{Duration, SystemTime};
use tether_schema::names::Tailnet;

/// The public API.
pub const DEFAULT_API_URL: &str = "https://api.tailscale.com";
/// How long before expiry an OAuth access token is renewed.
pub const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// The path of the OAuth token endpoint.
pub const TOKEN_PATH: &str = "/api/v2/oauth/token";

/// How tether proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An API access token (`tskey-api-…`), sent as HTTP Basic `token:`.
    ApiKey(Secret<String>),
    /// An OAuth client: exchanged for one-hour bearer tokens.
    OAuth {
        /// Client id, e.g. `k123456CNTRL` (not secret).
        client_id: String,
        /// Client secret (`tskey-client-…`).
        client_secret: Secret<String>,
    },
}

/// Everything the client needs to reach a tailnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// API base without `/api/v2`, e.g. `https://api.tailscale.com`.
    pub api_url: String,
    /// The tailnet path segment; `-` is the credential's own tailnet.
    pub tailnet: Tailnet,
    /// The credentials.
    pub credentials: Credentials,
    /// Timeout of one HTTP request (the Go client's is one minute).
    pub timeout: Duration,
}

/// Why the environment does not describe usable credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Neither `TS_API_KEY` nor the OAuth pair is set.
    #[error(
        "no Tailscale credentials: set TS_API_KEY, or TS_OAUTH_CLIENT_ID and TS_OAUTH_CLIENT_SECRET"
    )]
    Missing,
    /// Only one half of the OAuth pair is set.
    #[error("TS_OAUTH_CLIENT_ID and TS_OAUTH_CLIENT_SECRET must be set together")]
    IncompleteOAuth,
    /// Both kinds are set: which one is meant is ambiguous.
    #[error("set either TS_API_KEY or the TS_OAUTH_CLIENT_* pair, not both")]
    Ambiguous,
    /// `TS_API_URL` is not an http(s) URL.
    #[error("TS_API_URL `{0}` is not an http:// or https:// URL")]
    BadUrl(String),
}

impl Config {
    /// A config for `credentials` against the public API, tailnet `-`.
    pub fn new(credentials: Credentials) -> Config {
        Config {
            api_url: DEFAULT_API_URL.to_owned(),
            tailnet: default_tailnet(),
            credentials,
            timeout: Duration::from_secs(60),
        }
    }

    /// Reads `TS_API_KEY` or `TS_OAUTH_CLIENT_ID` + `TS_OAUTH_CLIENT_SECRET`, and `TS_API_URL`
    /// (default [`DEFAULT_API_URL`]) from the process environment.
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], reading variables through `lookup`. Empty values count as
    /// unset.
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let api_key = var("TS_API_KEY");
        let client_id = var("TS_OAUTH_CLIENT_ID");
        let client_secret = var("TS_OAUTH_CLIENT_SECRET");
        let credentials = match (api_key, client_id, client_secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => return Err(ConfigError::Ambiguous),
            (Some(key), None, None) => Credentials::ApiKey(Secret::new(key)),
            (None, Some(client_id), Some(secret)) => Credentials::OAuth {
                client_id,
                client_secret: Secret::new(secret),
            },
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(ConfigError::IncompleteOAuth);
            }
            (None, None, None) => return Err(ConfigError::Missing),
        };
        let mut config = Config::new(credentials);
        if let Some(url) = var("TS_API_URL") {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::BadUrl(url));
            }
            config.api_url = url.trim_end_matches('/').to_owned();
        }
        Ok(config)
    }
}

fn default_tailnet() -> Tailnet {
    Tailnet::parse("-").unwrap_or_else(|_| unreachable!("`-` is a valid tailnet"))
}

/// What goes into the `Authorization` header of one request.
#[derive(Debug, Clone)]
pub(super) enum Authorization {
    /// HTTP Basic with the token as user name and an empty password.
    Basic(Secret<String>),
    /// `Bearer <token>`.
    Bearer(Secret<String>),
}

impl Authorization {
    /// Adds the header to `request`, marked sensitive.
    pub(super) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Authorization::Basic(token) => request.basic_auth(token.expose(), Some("")),
            Authorization::Bearer(token) => request.bearer_auth(token.expose()),
        }
    }
}

/// A cached OAuth access token.
#[derive(Debug, Clone)]
struct Token {
    value: Secret<String>,
    expires_at: SystemTime,
}

/// Credentials plus the OAuth token cache.
#[derive(Debug)]
pub(super) struct Auth {
    credentials: Credentials,
    token: tokio::sync::Mutex<Option<Token>>,
}

impl Auth {
    pub(super) fn new(credentials: Credentials) -> Auth {
        Auth {
            credentials,
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// The header for the next request: the API key, or a cached OAuth token that is not
    /// within [`RENEW_BEFORE`] of expiring, or a freshly fetched one.
    ///
    /// # Errors
    /// The token endpoint failed (an [`Error`] naming `POST /api/v2/oauth/token`).
    pub(super) async fn authorization(
        &self,
        http: &reqwest::Client,
        api_url: &str,
        clock: &impl Clock,
    ) -> Result<Authorization, Error> {
        let (client_id, client_secret) = match &self.credentials {
            Credentials::ApiKey(key) => return Ok(Authorization::Basic(key.clone())),
            Credentials::OAuth {
                client_id,
                client_secret,
            } => (client_id, client_secret),
        };
        let mut cached = self.token.lock().await;
        let now = clock.now();
        if let Some(token) = cached
            .as_ref()
            .filter(|t| now + RENEW_BEFORE < t.expires_at)
        {
            return Ok(Authorization::Bearer(token.value.clone()));
        }
        let token = fetch_token(http, api_url, client_id, client_secret, now).await?;
        tracing::debug!(provider = "tailscale", client_id = %client_id, "fetched an OAuth access token");
        let value = token.value.clone();
        *cached = Some(token);
        Ok(Authorization::Bearer(value))
    }

    /// Forgets the cached OAuth token (after the API refused it with 401).
    pub(super) async fn forget_token(&self) {
        *self.token.lock().await = None;
    }
}

async fn fetch_token(
    http: &reqwest::Client,
    api_url: &str,
    client_id: &str,
    client_secret: &Secret<String>,
    now: SystemTime,
) -> Result<Token, Error> {
    let operation = format!("POST {TOKEN_PATH}");
    let form = [
        ("client_id", client_id),
        ("client_secret", client_secret.expose().as_str()),
        ("grant_type", "client_credentials"),
    ];
    let response = http
        .post(format!("{api_url}{TOKEN_PATH}"))
        .form(&form)
        .send()
        .await
        .map_err(|source| Error::Transport {
            operation: operation.clone(),
            source,
        })?;
    let status = response.status();
    let retry_at = super::error::retry_at(&response, now);
    let body = response.bytes().await.map_err(|source| Error::Transport {
        operation: operation.clone(),
        source,
    })?;
    if !status.is_success() {
        return Err(super::error::api_error(operation, status, &body, retry_at));
    }
    let token: wire::Token = serde_json::from_slice(&body).map_err(|e| Error::Decode {
        operation: operation.clone(),
        message: format!("token response: {}", super::error::json_problem(&e)),
    })?;
    if !token.token_type.eq_ignore_ascii_case("bearer") || token.access_token.expose().is_empty() {
        return Err(Error::Decode {
            operation,
            message: format!("token type `{}`, expected a Bearer token", token.token_type),
        });
    }
    Ok(Token {
        value: token.access_token,
        expires_at: now + Duration::from_secs(token.expires_in),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn config_comes_from_an_api_key_or_an_oauth_pair() {
        let c = Config::from_lookup(env(&[("TS_API_KEY", "tskey-api-1")])).expect("api key");
        assert_eq!(c.credentials, Credentials::ApiKey("tskey-api-1".into()));
        assert_eq!(
            (c.api_url.as_str(), c.tailnet.as_str()),
            (DEFAULT_API_URL, "-")
        );

        let c = Config::from_lookup(env(&[
            ("TS_OAUTH_CLIENT_ID", "k1CNTRL"),
            ("TS_OAUTH_CLIENT_SECRET", "tskey-client-s3cret"),
            ("TS_API_URL", "http://127.0.0.1:9/"),
        ]))
        .expect("oauth");
        assert_eq!(c.api_url, "http://127.0.0.1:9");
        assert!(matches!(c.credentials, Credentials::OAuth { .. }));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn config_refuses_missing_half_or_ambiguous_credentials() {
        let e = |pairs: &[(&str, &str)]| Config::from_lookup(env(pairs)).err();
        assert_eq!(e(&[]), Some(ConfigError::Missing));
        assert_eq!(
            e(&[("TS_OAUTH_CLIENT_ID", "k")]),
            Some(ConfigError::IncompleteOAuth)
        );
        assert_eq!(
            e(&[("TS_API_KEY", "a"), ("TS_OAUTH_CLIENT_SECRET", "s")]),
            Some(ConfigError::Ambiguous)
        );
        assert_eq!(
            e(&[("TS_API_KEY", "a"), ("TS_API_URL", "ftp://x")]),
            Some(ConfigError::BadUrl("ftp://x".into()))
        );
    }
}
