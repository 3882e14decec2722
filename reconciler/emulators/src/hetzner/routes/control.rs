//! `/_emulator/…`: out-of-band control for tests driving a sandbox in another process. No
//! token needed; the emulator listens on loopback only.
//!
//! - `GET /_emulator/requests` counters, `DELETE` resets them;
//! - `GET|PUT /_emulator/faults` the fault rules (a JSON list of `FaultRule`);
//! - `GET /_emulator/servers` every server, `DELETE /_emulator/servers/{id}` deletes one "by
//!   hand" (gone at once, `stopped` hook fired);
//! - `PUT /_emulator/rate_limit` `{"limit": n, "refill_per_second": x}`;
//! - `GET /_emulator/actions` the action log: every action ever started, oldest first (the
//!   history an audit report is reconciled with).

use super::super::errors::ApiError;
use super::super::ratelimit::RateLimit;
use super::super::shared::Shared;
use super::{ApiResult, parse_id, respond};
use crate::emulator::FaultRule;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The control routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_emulator/requests", get(requests).delete(reset_requests))
        .route(
            "/_emulator/faults",
            get(faults).put(set_faults).post(set_faults),
        )
        .route("/_emulator/servers", get(servers))
        .route("/_emulator/servers/{id}", delete(delete_server))
        .route("/_emulator/rate_limit", put(rate_limit))
        .route("/_emulator/actions", get(actions))
        .with_state(shared)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::json_error(&e.to_string()))
}

async fn requests(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let counts: Vec<Value> = shared
        .requests
        .snapshot()
        .into_iter()
        .map(|(k, n)| json!({"method": k.method, "route": k.route, "outcome": k.outcome, "count": n}))
        .collect();
    Json(json!({"total": shared.requests.total(), "requests": counts}))
}

async fn reset_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.requests.reset();
    StatusCode::NO_CONTENT
}

async fn faults(State(shared): State<Arc<Shared>>) -> Json<Vec<FaultRule>> {
    Json(shared.faults.rules())
}

async fn set_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let rules: Vec<FaultRule> = parse(&body)?;
    shared.faults.set(rules);
    Ok(respond(StatusCode::OK, json!(shared.faults.rules())))
}

async fn servers(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let servers: Vec<Value> = shared
        .model()
        .servers
        .values()
        .map(|s| {
            json!({
                "id": s.id, "name": s.name, "status": s.status, "labels": s.labels,
                "server_type": s.server_type.name, "location": s.location.name,
            })
        })
        .collect();
    Json(json!({ "servers": servers }))
}

async fn actions(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let actions: Vec<Value> = shared
        .model()
        .actions
        .values()
        .map(|a| {
            json!({
                "id": a.id, "command": a.command.as_str(), "server": a.server,
                "started": a.started.unix_timestamp(),
            })
        })
        .collect();
    Json(json!({ "actions": actions }))
}

async fn delete_server(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "server")?;
    let (existed, event) = shared.model().remove_by_hand(id);
    if !existed {
        return Err(ApiError::not_found("server"));
    }
    shared.fire(event.into_iter().collect());
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitBody {
    limit: u32,
    refill_per_second: Option<f64>,
}

async fn rate_limit(State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let b: RateLimitBody = parse(&body)?;
    let settings = match b.refill_per_second {
        Some(refill_per_second) => RateLimit {
            limit: b.limit,
            refill_per_second,
        },
        None => RateLimit::per_hour(b.limit),
    };
    shared.limiter.set(settings);
    Ok(StatusCode::NO_CONTENT.into_response())
}
