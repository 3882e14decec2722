//! One request to the API: paced by the rate-limit bucket, sent with the token, its
//! `RateLimit-*` headers fed back to the bucket, its answer decoded or typed as an [`Error`];
//! [`Client::call`] retries it by the shared policy.

use super::{ApiError, Client, Error, TransportKind, ratelimit, wire};
use crate::cloud::retry::{self, Clock};
use crate::cloud::{Action, ServerId};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::PoisonError;

impl<C: Clock + Clone + 'static> Client<C> {
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
    pub(super) async fn send<T: DeserializeOwned>(
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
    pub(super) async fn call<T: DeserializeOwned>(
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

    pub(super) async fn server_action(
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
