//! What every API request passes before its route: a `User-Agent` (403 without, as GitHub),
//! credentials (`Authorization: Bearer|token <tok>`; 401 otherwise) and the hourly rate limit
//! of the token's account, reported in `x-ratelimit-*` headers on every answer. The
//! `/_emulator/` observation routes skip all three.

use super::routes::{App, respond};
use super::state::Rejection;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, header};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Requests per hour without valid credentials (what 401 answers count against).
pub const ANONYMOUS_LIMIT: u32 = 60;
const WINDOW_SECS: u64 = 3600;

/// The authenticated account of a request, for the routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Login.
    pub login: String,
    /// Whether the token is an installation token (Actions `GITHUB_TOKEN`, GitHub App).
    pub integration: bool,
}

/// Hourly request windows per account (GitHub counts per user, not per token).
#[derive(Debug, Default)]
pub struct Limits {
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    reset: u64,
    used: u32,
}

/// The state of one account's window after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests per window.
    pub limit: u32,
    /// Requests used in this window, this one included.
    pub used: u32,
    /// When the window resets (UNIX seconds).
    pub reset: u64,
    /// Whether this request is within the limit.
    pub allowed: bool,
}

impl Quota {
    fn headers(&self, headers: &mut HeaderMap) {
        let remaining = self.limit.saturating_sub(self.used);
        for (name, value) in [
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
            ("x-ratelimit-used", self.used.to_string()),
            ("x-ratelimit-reset", self.reset.to_string()),
            ("x-ratelimit-resource", "core".to_owned()),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
}

impl Limits {
    /// Counts one request of `bucket` at `now` (UNIX seconds) against `limit`.
    pub fn take(&self, bucket: &str, limit: u32, now: u64) -> Quota {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let window = windows.entry(bucket.to_owned()).or_insert(Window {
            reset: now + WINDOW_SECS,
            used: 0,
        });
        if now >= window.reset {
            *window = Window {
                reset: now + WINDOW_SECS,
                used: 0,
            };
        }
        let allowed = window.used < limit;
        if allowed {
            window.used += 1;
        }
        Quota {
            limit,
            used: window.used,
            reset: window.reset,
            allowed,
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The token of an `Authorization: Bearer <tok>` or `token <tok>` header.
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim())
}

/// The middleware: User-Agent, credentials, rate limit; the [`Caller`] goes to the route.
pub async fn gate(State(app): State<App>, mut request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/_emulator/") {
        return next.run(request).await;
    }
    if !request.headers().contains_key(header::USER_AGENT) {
        return respond(Err(Rejection::new(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).",
        )));
    }
    let now = unix_now();
    let caller = match presented_token(request.headers()) {
        None => Err(Rejection::new(401, "Requires authentication")),
        Some(token) => app
            .accounts
            .iter()
            .find(|a| a.token.expose() == token)
            .map(|a| Caller {
                login: a.login.clone(),
                integration: a.integration,
            })
            .ok_or_else(|| Rejection::new(401, "Bad credentials")),
    };
    let (quota, mut response) = match caller {
        Err(rejection) => (
            app.limits.take("anonymous", ANONYMOUS_LIMIT, now),
            respond(Err(rejection)),
        ),
        Ok(caller) => {
            let quota = app.limits.take(&caller.login, app.rate_limit, now);
            if quota.allowed {
                request.extensions_mut().insert(caller);
                (quota, next.run(request).await)
            } else {
                let id = app.state().user(&caller.login).id;
                let message = format!("API rate limit exceeded for user ID {id}.");
                let rejection = Rejection::new(app.rate_limit_status, message);
                (quota, respond(Err(rejection)))
            }
        }
    };
    quota.headers(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_its_limit_then_refuses_until_it_resets() {
        let limits = Limits::default();
        let first = limits.take("bot", 2, 1_000);
        assert_eq!((first.used, first.reset, first.allowed), (1, 4_600, true));
        assert!(limits.take("bot", 2, 1_001).allowed);
        let refused = limits.take("bot", 2, 1_002);
        assert_eq!((refused.used, refused.allowed), (2, false));
        assert!(limits.take("other", 2, 1_002).allowed);
        let renewed = limits.take("bot", 2, 4_600);
        assert_eq!(
            (renewed.used, renewed.reset, renewed.allowed),
            (1, 8_200, true)
        );
    }

    #[test]
    fn bearer_and_token_schemes_are_accepted() {
        let mut headers = HeaderMap::new();
        for (value, want) in [
            ("Bearer abc", Some("abc")),
            ("token abc", Some("abc")),
            ("Basic abc", None),
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(presented_token(&headers), want, "{value}");
        }
    }
}
