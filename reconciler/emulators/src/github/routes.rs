//! The emulator's router: every API route behind the [`gate`], `GET /user`, the
//! `/_emulator/` observation routes (no credentials, for subprocess tests), and the helpers
//! the resource files share (JSON answers, pagination, GitHub's 400/404 answers).

use super::gate::{self, Limits};
use super::page::{self, Paged};
use super::state::{Rejection, State};
use super::{Account, Config, comments, pulls, statuses, wire};
use crate::emulator::RequestLog;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State as Axum};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What every route shares.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    /// Accepted tokens.
    pub accounts: Vec<Account>,
    /// Requests per hour per account.
    pub rate_limit: u32,
    /// Status over the limit.
    pub rate_limit_status: u16,
    /// Rate-limit windows.
    pub limits: Limits,
    /// Request counters (served at `/_emulator/requests`).
    pub log: Arc<RequestLog>,
}

impl Shared {
    /// From the emulator's configuration.
    pub fn new(config: &Config, log: Arc<RequestLog>) -> Self {
        Shared {
            state: Mutex::new(State::default()),
            accounts: config.accounts.clone(),
            rate_limit: config.rate_limit,
            rate_limit_status: config.rate_limit_status,
            limits: Limits::default(),
            log,
        }
    }

    /// The data, locked, with linked git repositories read afresh.
    pub fn state(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.sync_linked();
        state
    }
}

/// The routes' shared state.
pub type App = Arc<Shared>;
/// A route's answer: a response, or GitHub's error envelope.
pub type Reply = Result<Response, Rejection>;

/// The whole API.
pub fn router(app: App) -> Router {
    let repo = "/repos/{owner}/{repo}";
    Router::new()
        .route("/user", get(current_user))
        .route(
            &format!("{repo}/issues/{{number}}/comments"),
            get(comments::list).post(comments::create),
        )
        .route(
            &format!("{repo}/issues/comments/{{id}}"),
            get(comments::get)
                .patch(comments::update)
                .post(comments::update)
                .delete(comments::delete),
        )
        .route(&format!("{repo}/statuses/{{sha}}"), post(statuses::create))
        .route(&format!("{repo}/commits/{{*rest}}"), get(statuses::read))
        .route(
            &format!("{repo}/pulls"),
            get(pulls::list).post(pulls::create),
        )
        .route(&format!("{repo}/pulls/{{number}}"), get(pulls::get))
        .route(&format!("{repo}/pulls/{{number}}/files"), get(pulls::files))
        .route("/_emulator/comments", get(observe_comments))
        .route("/_emulator/statuses", get(observe_statuses))
        .route("/_emulator/pulls", get(observe_pulls))
        .route("/_emulator/requests", get(observe_requests))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            gate::gate,
        ))
        .with_state(app)
}

/// An injected fault in GitHub's envelope.
pub fn fault_body(status: StatusCode) -> Response {
    let message = status.canonical_reason().unwrap_or("Server Error");
    respond(Err(Rejection::new(status.as_u16(), message)))
}

/// Renders a reply: the response, or the rejection as GitHub's JSON error.
pub fn respond(reply: Reply) -> Response {
    reply.unwrap_or_else(|rejection| {
        let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
        json(status, &wire::error(&rejection))
    })
}

impl axum::response::IntoResponse for Rejection {
    fn into_response(self) -> Response {
        respond(Err(self))
    }
}

/// A JSON answer.
pub fn json(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// A list answer: one page of `items` and its `Link` header; `path` is the list's path.
pub fn paged(
    headers: &HeaderMap,
    path: &str,
    query: &BTreeMap<String, String>,
    items: Vec<Value>,
) -> Response {
    let Paged { items, link } =
        page::paginate(items, query, &format!("{}{path}", base_url(headers)));
    let mut response = json(StatusCode::OK, &Value::Array(items));
    if let Some(value) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

/// `http://<Host>`: the emulator as the client reached it, for URLs in answers.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// A request body as JSON, or GitHub's 400.
pub fn body_json(body: &Bytes) -> Result<Value, Rejection> {
    serde_json::from_slice(body).map_err(|_| Rejection::new(400, "Problems parsing JSON"))
}

/// The string field `name` of a request body: `None` when absent or null, 422 when another
/// type.
pub fn string_field(body: &Value, name: &str) -> Result<Option<String>, Rejection> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Rejection::invalid_request(&format!(
            "For 'properties/{name}', {other} is not a string."
        ))),
    }
}

/// The required string field `name`.
pub fn required_field(body: &Value, name: &str) -> Result<String, Rejection> {
    string_field(body, name)?
        .ok_or_else(|| Rejection::invalid_request(&format!("\"{name}\" wasn't supplied.")))
}

/// A numeric path segment; anything else is a route GitHub does not have (404).
pub fn number(segment: &str) -> Result<u64, Rejection> {
    segment.parse().map_err(|_| Rejection::not_found())
}

async fn not_found() -> Rejection {
    Rejection::not_found()
}

async fn current_user(
    Axum(app): Axum<App>,
    Extension(caller): Extension<gate::Caller>,
    headers: HeaderMap,
) -> Reply {
    if caller.integration {
        return Err(Rejection::new(
            403,
            "Resource not accessible by integration",
        ));
    }
    let user = app.state().user(&caller.login);
    Ok(json(
        StatusCode::OK,
        &wire::user(&base_url(&headers), &user),
    ))
}

async fn observe_comments(Axum(app): Axum<App>) -> Response {
    json(StatusCode::OK, &serde_json::json!(app.state().comments()))
}

async fn observe_statuses(Axum(app): Axum<App>) -> Response {
    json(StatusCode::OK, &serde_json::json!(app.state().statuses()))
}

async fn observe_pulls(Axum(app): Axum<App>) -> Response {
    json(StatusCode::OK, &serde_json::json!(app.state().pulls()))
}

async fn observe_requests(Axum(app): Axum<App>) -> Response {
    let counts: Vec<Value> = app
        .log
        .snapshot()
        .into_iter()
        .map(|(key, count)| serde_json::json!({"method": key.method, "route": key.route, "outcome": key.outcome, "count": count}))
        .collect();
    json(StatusCode::OK, &Value::Array(counts))
}
