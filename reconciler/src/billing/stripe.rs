//! Stripe's API as billing reads it: the client ([`StripeApi`], its key from the environment,
//! sent only to the API and never logged), one subscription ([`StripeApi::retrieve`]) and one
//! page of the subscription list ([`StripeApi::list_page`]), each answer classified
//! ([`ReadError`]: throttled, unavailable, unknown, refused). The confirmed-delete policy
//! (`confirm`), the webhook receiver and `tether billing sync` all read through it.

use crate::secret::Secret;
use serde_json::Value;
use std::time::Duration;

/// The API base URL unless `STRIPE_API_URL` says otherwise.
pub const DEFAULT_API_URL: &str = "https://api.stripe.com";
/// The variable naming another API base URL (the sandbox's emulator).
pub const API_URL_ENV: &str = "STRIPE_API_URL";
/// The variable holding the secret (or restricted, read-only) API key.
pub const API_KEY_ENV: &str = "STRIPE_API_KEY";
/// The variable naming a file holding the key.
pub const API_KEY_FILE_ENV: &str = "STRIPE_API_KEY_FILE";
/// Subscriptions per list page (Stripe's maximum).
pub const PAGE_SIZE: usize = 100;

/// Why Stripe could not be read. No variant holds the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// 429 `rate_limit_error`: too many reads; wait and try again.
    #[error("Stripe throttled the read of {what} (429 rate_limit_error)")]
    Throttled {
        /// What was read (`subscription sub_…`, `the subscription list`).
        what: String,
    },
    /// A 5xx answer, a timeout or no connection: try again later.
    #[error("Stripe could not be read ({what}): {reason}")]
    Unavailable {
        /// What was read.
        what: String,
        /// The status or the transport error.
        reason: String,
    },
    /// 404: the key's account and mode do not know the subscription.
    #[error(
        "Stripe does not know subscription {subscription}: check that the API key is of the account and mode that sends the webhooks"
    )]
    Unknown {
        /// The subscription id.
        subscription: String,
    },
    /// Any other answer (401 for a wrong key, 400, an unreadable body).
    #[error("Stripe refused the read of {what}: {reason}")]
    Refused {
        /// What was read.
        what: String,
        /// The status and Stripe's message.
        reason: String,
    },
}

impl ReadError {
    /// Whether trying again soon may succeed (throttled or unavailable).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ReadError::Throttled { .. } | ReadError::Unavailable { .. }
        )
    }
}

/// Stripe's subscription reads.
#[derive(Debug, Clone)]
pub struct StripeApi {
    base: String,
    key: Secret<String>,
    client: reqwest::Client,
}

impl StripeApi {
    /// From the environment read through `env`; the reason when no key is given.
    ///
    /// # Errors
    /// No key, or the key file cannot be read.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<StripeApi, String> {
        let key = match (env(API_KEY_ENV), env(API_KEY_FILE_ENV)) {
            (Some(key), _) if !key.trim().is_empty() => key.trim().to_owned(),
            (_, Some(path)) => std::fs::read_to_string(&path)
                .map(|k| k.trim().to_owned())
                .map_err(|e| {
                    format!("{API_KEY_FILE_ENV} names `{path}`, which cannot be read: {e}")
                })?,
            _ => {
                return Err(format!(
                    "{API_KEY_ENV} is not set, so Stripe cannot be asked; set it (a restricted key with read access to subscriptions is enough)"
                ));
            }
        };
        let base = env(API_URL_ENV).unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(StripeApi {
            base: base.trim_end_matches('/').to_owned(),
            key: Secret::new(key),
            client,
        })
    }

    /// `GET /v1/subscriptions/{id}`: the subscription object as Stripe has it now.
    ///
    /// # Errors
    /// See [`ReadError`]; 404 is [`ReadError::Unknown`].
    pub async fn retrieve(&self, subscription: &str) -> Result<Value, ReadError> {
        let what = format!("subscription {subscription}");
        let url = format!("{}/v1/subscriptions/{subscription}", self.base);
        match self.get(&url, &[], &what).await {
            Err(ReadError::Refused { reason, .. }) if reason.starts_with("HTTP 404") => {
                Err(ReadError::Unknown {
                    subscription: subscription.to_owned(),
                })
            }
            other => other,
        }
    }

    /// `GET /v1/subscriptions?status=all&limit=100[&starting_after=…]`: one page of every
    /// subscription, whatever its status, newest first; the page's `data` and `has_more`.
    ///
    /// # Errors
    /// See [`ReadError`].
    pub async fn list_page(
        &self,
        starting_after: Option<&str>,
    ) -> Result<(Vec<Value>, bool), ReadError> {
        let url = format!("{}/v1/subscriptions", self.base);
        let limit = PAGE_SIZE.to_string();
        let mut query = vec![("status", "all"), ("limit", limit.as_str())];
        if let Some(after) = starting_after {
            query.push(("starting_after", after));
        }
        let what = "the subscription list".to_owned();
        let mut page = self.get(&url, &query, &what).await?;
        let has_more = page["has_more"].as_bool().unwrap_or(false);
        match page["data"].take() {
            Value::Array(data) => Ok((data, has_more)),
            _ => Err(ReadError::Refused {
                what,
                reason: "the answer is not a list".to_owned(),
            }),
        }
    }

    async fn get(&self, url: &str, query: &[(&str, &str)], what: &str) -> Result<Value, ReadError> {
        let unavailable = |reason: String| ReadError::Unavailable {
            what: what.to_owned(),
            reason,
        };
        let response = self
            .client
            .get(url)
            .query(query)
            .bearer_auth(self.key.expose())
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if status == http::StatusCode::TOO_MANY_REQUESTS {
            return Err(ReadError::Throttled {
                what: what.to_owned(),
            });
        }
        if status.is_server_error() {
            return Err(unavailable(format!("HTTP {}", status.as_u16())));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|e| unavailable(format!("unreadable answer: {}", e.without_url())))?;
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or("no message");
            return Err(ReadError::Refused {
                what: what.to_owned(),
                reason: format!("HTTP {}: {message}", status.as_u16()),
            });
        }
        Ok(body)
    }
}
