//! The read-only dashboard on the daemon's HTTP port: `/` (the fleet: the `tether status`
//! table with phase colours, the last plan, recent status commits, the daemon's health),
//! `/agents/<name>` (one agent: provider ids, its timeline from git, the plan lines naming
//! it) and `/api/status` (the JSON of `tether status --format json`, which the page's script
//! polls to refresh the table). Everything is read from git on each request ([`data`]) and
//! rendered on the server ([`page`]); the script and stylesheet are embedded, nothing is
//! fetched from elsewhere, and a Content-Security-Policy says so to the browser.
//!
//! With a read token configured, every page and `/api/status` need `Authorization: Bearer
//! <token>` or `?token=<token>` (compared in constant time; never logged or rendered). A page
//! opened with `?token=` sets it as an HttpOnly, SameSite=Strict cookie, which the links and
//! the script's polls then carry, so the token is never written into a page. The script and
//! stylesheet carry no data and are served without it. Start at [`Dashboard`].

pub mod data;
pub mod page;

use super::Readiness;
use crate::audit::STATUS_BRANCH;
use crate::daemon::config::{DASHBOARD_TOKEN_ENV, DaemonConfig};
use crate::daemon::lock::{self, LockStore};
use crate::daemon::pass::Source;
use crate::secret::Secret;
use crate::source::remote::RepoCache;
use axum::extract::{Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use data::{DataError, Sources};
use http::{HeaderValue, StatusCode, header};
use page::{Health, Links};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// The Content-Security-Policy of every dashboard response: only this origin's script,
/// stylesheet and fetches; no inline code, frames, forms or plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// How long a lease read is reused (a remote lease is fetched; polls must not fetch each time).
const LEASE_TTL: Duration = Duration::from_secs(15);
/// The cookie a `?token=` sets.
const COOKIE: &str = "tether_dashboard";

const SCRIPT: &str = include_str!("dashboard/dashboard.js");
const STYLE: &str = include_str!("dashboard/dashboard.css");

/// Where the lease is read: the store and the fleet's name.
#[derive(Debug, Clone)]
pub struct LeaseSource {
    /// The store holding the lease ref.
    pub store: LockStore,
    /// The fleet name the lease is taken for.
    pub fleet: String,
}

/// The dashboard: where it reads, the daemon's readiness, and its access settings.
#[derive(Debug)]
pub struct Dashboard {
    sources: Sources,
    readiness: Readiness,
    lease: Option<LeaseSource>,
    read_token: Option<Secret<String>>,
    commit_url: Option<String>,
    lease_seen: Mutex<Option<(Instant, String)>>,
    events: crate::daemon::events::SharedState,
}

impl Dashboard {
    /// A dashboard over `sources`, showing `readiness`; without a lease source, a read token or
    /// commit links.
    pub fn new(sources: Sources, readiness: Readiness) -> Dashboard {
        Dashboard {
            sources,
            readiness,
            lease: None,
            read_token: None,
            commit_url: None,
            lease_seen: Mutex::new(None),
            events: crate::daemon::events::SharedState::default(),
        }
    }

    /// Shows who holds `lease`.
    pub fn with_lease(mut self, lease: LeaseSource) -> Dashboard {
        self.lease = Some(lease);
        self
    }

    /// Requires `token` on every page and on `/api/status`.
    pub fn with_read_token(mut self, token: Option<Secret<String>>) -> Dashboard {
        self.read_token = token;
        self
    }

    /// Shows where lifecycle event delivery stands.
    pub fn with_events(mut self, events: crate::daemon::events::SharedState) -> Dashboard {
        self.events = events;
        self
    }

    /// Links commit ids to `url` followed by the id.
    pub fn with_commit_url(mut self, url: Option<String>) -> Dashboard {
        self.commit_url = url;
        self
    }

    /// The dashboard's routes.
    pub fn router(self: Arc<Self>) -> Router {
        let guarded = Router::new()
            .route("/", get(fleet))
            .route("/agents/{name}", get(agent))
            .route("/api/status", get(status))
            .route_layer(middleware::from_fn_with_state(self.clone(), authorize));
        Router::new()
            .route("/dashboard.js", get(script))
            .route("/dashboard.css", get(style))
            .merge(guarded)
            .layer(middleware::from_fn(secure_headers))
            .with_state(self)
    }

    fn health(&self) -> Health {
        let (status, reason) = match self.readiness.check() {
            Ok(()) => ("ready".to_owned(), None),
            Err((status, reason)) => (status.to_owned(), Some(reason)),
        };
        let events = self
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(crate::daemon::events::EndpointState::summary)
            .collect();
        Health {
            status,
            reason,
            lease: self.lease_line(),
            events,
        }
    }

    /// The lease holder and expiry, read at most every [`LEASE_TTL`].
    fn lease_line(&self) -> String {
        let Some(source) = &self.lease else {
            return "not shown".to_owned();
        };
        let mut seen = self
            .lease_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((at, line)) = seen.as_ref()
            && at.elapsed() < LEASE_TTL
        {
            return line.clone();
        }
        let line = match lock::current(&source.store, &source.fleet) {
            Ok(Some(record)) if record.is_live(SystemTime::now()) => format!(
                "held by {} until {}",
                record.holder,
                lock::rfc3339(record.expires_at)
            ),
            Ok(Some(record)) => format!(
                "free (last held by {}, {} {})",
                record.holder,
                if record.released {
                    "released"
                } else {
                    "expired"
                },
                lock::rfc3339(record.expires_at)
            ),
            Ok(None) => "free (never taken)".to_owned(),
            Err(e) => format!("unknown: {e}"),
        };
        *seen = Some((Instant::now(), line.clone()));
        line
    }

    fn links(&self) -> Links<'_> {
        Links {
            commit_url: self.commit_url.as_deref(),
        }
    }

    /// Whether `request` may read; `Some(token)` when it came as `?token=` and should be set
    /// as the cookie.
    fn authorized(&self, request: &Request) -> (bool, Option<String>) {
        let Some(token) = &self.read_token else {
            return (true, None);
        };
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let query = request
            .uri()
            .query()
            .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "token"))
            .map(|(_, v)| v);
        let cookie = request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='));
        let expected = token.expose().as_bytes();
        let matches = |given: &str| super::constant_time_eq(given.as_bytes(), expected);
        if query.as_deref().is_some_and(matches) {
            return (true, query);
        }
        (
            bearer.is_some_and(matches) || cookie.is_some_and(matches),
            None,
        )
    }
}

/// The dashboard of a daemon with `config`, reading `source`, showing `readiness` and the
/// lease in `store`. Warns when it is reachable beyond this machine without a read token.
pub(in crate::daemon) fn for_daemon(
    config: &DaemonConfig,
    source: &Source,
    store: &LockStore,
    readiness: Readiness,
    events: crate::daemon::events::SharedState,
) -> Dashboard {
    let status_ref = format!("refs/heads/{STATUS_BRANCH}");
    let sources = match source {
        Source::Remote { cache, branch, .. } => Sources {
            repo: cache.path().to_owned(),
            status_ref,
            fleet_ref: RepoCache::tracking_ref(branch),
        },
        Source::Directory { path, branch, .. } => Sources {
            repo: path.clone(),
            status_ref,
            fleet_ref: format!("refs/heads/{branch}"),
        },
    };
    if !config.listen.ip().is_loopback() && config.dashboard.read_token.is_none() {
        tracing::warn!(listen = %config.listen, "the dashboard is served beyond this machine without a read token: set {DASHBOARD_TOKEN_ENV} (or dashboard.readTokenFile)");
    }
    Dashboard::new(sources, readiness)
        .with_lease(LeaseSource {
            store: store.clone(),
            fleet: config.fleet.clone(),
        })
        .with_read_token(config.dashboard.read_token.clone())
        .with_commit_url(config.dashboard.commit_url.clone())
        .with_events(events)
}

async fn authorize(State(d): State<Arc<Dashboard>>, request: Request, next: Next) -> Response {
    let (allowed, from_query) = d.authorized(&request);
    if allowed {
        let mut response = next.run(request).await;
        let cookie = from_query.and_then(|token| {
            HeaderValue::from_str(&format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            ))
            .ok()
        });
        if let Some(cookie) = cookie {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        return response;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Html(page::message_page(
            "unauthorized",
            "this dashboard needs its read token: send `Authorization: Bearer <token>` or open the URL with `?token=<token>` (the daemon's TETHER_DASHBOARD_TOKEN or dashboard.readTokenFile)",
        )),
    )
        .into_response()
}

async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Runs a git read off the async threads; a panicked read is a 500 page.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, DataError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e @ DataError::NoStatus { .. })) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            Html(page::message_page("no status yet", &e.to_string())),
        )
            .into_response()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the dashboard cannot read git");
            Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(page::message_page("cannot read git", &e.to_string())),
            )
                .into_response())
        }
        Err(e) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(page::message_page("internal error", &e.to_string())),
        )
            .into_response()),
    }
}

async fn fleet(State(d): State<Arc<Dashboard>>) -> Response {
    let sources = d.sources.clone();
    let data = match blocking(move || sources.fleet(now())).await {
        Ok(data) => data,
        Err(page) => return page,
    };
    let health = {
        let d = d.clone();
        tokio::task::spawn_blocking(move || d.health()).await
    };
    let health = health.unwrap_or_else(|e| Health {
        status: "unknown".to_owned(),
        reason: Some(e.to_string()),
        lease: "unknown".to_owned(),
        events: Vec::new(),
    });
    Html(page::fleet_page(&data, &health, d.links())).into_response()
}

async fn agent(State(d): State<Arc<Dashboard>>, Path(name): Path<String>) -> Response {
    let (sources, wanted) = (d.sources.clone(), name.clone());
    match blocking(move || sources.agent(&wanted, now())).await {
        Ok(Some(data)) => Html(page::agent_page(&data, d.links())).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Html(page::message_page(
                "no such agent",
                &format!("the status branch records no agent `{name}`"),
            )),
        )
            .into_response(),
        Err(page) => page,
    }
}

async fn status(State(d): State<Arc<Dashboard>>) -> Response {
    let sources = d.sources.clone();
    match blocking(move || sources.overview(&Default::default(), now())).await {
        Ok((overview, _)) => {
            let mut json = serde_json::to_value(&overview).unwrap_or_default();
            redact_strings(&mut json);
            Json(json).into_response()
        }
        Err(page) => page,
    }
}

/// Applies [`page::redact`] to every string in `value`.
fn redact_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => *s = page::redact(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_strings),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_strings),
        _ => {}
    }
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

#[cfg(test)]
mod tests;
