//! Middleware: a correlation id on every response; in front of the API, the rate limit and
//! the bearer token check, with the `RateLimit-*` headers on every API response (401 and 429
//! included). Tokens are compared, never logged; a 429 names only their first four characters.

use super::super::errors::{ApiError, CORRELATION_ID, correlation_id};
use super::super::shared::Shared;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};
use std::sync::Arc;

/// Adds `X-Correlation-Id` to every response.
pub async fn correlate(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    response
        .headers_mut()
        .insert(CORRELATION_ID, correlation_id());
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Rate limit (per valid token; unauthenticated requests share one bucket), then
/// authentication, then the route.
pub async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let token = bearer(req.headers());
    let valid = token.and_then(|t| shared.tokens.iter().position(|s| s.expose() == t));
    let shown: String = token.unwrap_or("").chars().take(4).collect();
    let key = valid.map_or_else(|| "unauthenticated".to_owned(), |i| format!("token-{i}"));
    let decision = shared.limiter.take_now(&key);
    let mut response = if !decision.allowed {
        ApiError::rate_limited(decision.limit, &shown).into_response()
    } else if valid.is_none() {
        ApiError::unauthorized().into_response()
    } else {
        next.run(req).await
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", u64::from(decision.limit)),
        ("ratelimit-remaining", u64::from(decision.remaining)),
        ("ratelimit-reset", decision.reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
    response
}
