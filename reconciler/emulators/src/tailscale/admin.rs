//! Out-of-band inspection and control over HTTP, under `/_emulator/…`, without
//! authentication: the emulator listens on 127.0.0.1 only, so only local processes reach it.
//!
//! - `GET /_emulator/requests`: request counters `[{method, route, outcome, count}]`;
//! - `GET /_emulator/devices`: every device with all fields and its `serverId`;
//! - `GET /_emulator/keys`: every key, without secrets;
//! - `GET /_emulator/enrollment-failures`: failed enrolments with their reasons;
//! - `GET /_emulator/faults`, `POST /_emulator/faults` (a JSON list of fault rules);
//! - `GET /_emulator/machines`: the machine knobs; `POST /_emulator/machines/cloud-init`
//!   `{"server": name, "until": {"times": n} | "forever"}` makes that server's cloud-init fail;
//!   `POST /_emulator/machines/offline` `{"serverId": id, "until": "power-cycle" | "forever"}`
//!   takes its nodes offline ([`super::machines`]);
//! - `POST /_emulator/join` `{"serverId": id, "hostname": h, "authKey": key}`: what
//!   `tailscale up --auth-key=…` does on a VM in a box (the `vmbox` module): enrols a node of
//!   that server with the key, as the control plane would; the key is never echoed.

use super::machines::Until;
use super::{ApiError, Shared};
use crate::emulator::FaultRule;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::SystemTime;

type Ctx = State<Arc<Shared>>;

/// The inspection routes.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/requests", get(requests))
        .route("/_emulator/devices", get(devices))
        .route("/_emulator/keys", get(keys))
        .route("/_emulator/enrollment-failures", get(failures))
        .route("/_emulator/faults", get(faults).post(set_faults))
        .route("/_emulator/machines", get(machines))
        .route("/_emulator/machines/cloud-init", post(fail_cloud_init))
        .route("/_emulator/machines/offline", post(hold_offline))
        .route("/_emulator/join", post(join))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JoinBody {
    server_id: u64,
    hostname: String,
    auth_key: String,
}

async fn join(State(shared): Ctx, bytes: Bytes) -> Result<Response, ApiError> {
    let b: JoinBody = body(&bytes)?;
    let mut state = shared.lock();
    state.booted.insert(b.server_id);
    let key = crate::Token::new(b.auth_key);
    match state.enroll(&key, &b.hostname, b.server_id, SystemTime::now()) {
        Ok(device) => {
            tracing::info!(provider = "tailscale-emulator", server_id = b.server_id, hostname = %b.hostname, %device, "node joined from its box");
            Ok(Json(json!({ "nodeId": device })).into_response())
        }
        Err(e) => {
            tracing::warn!(provider = "tailscale-emulator", server_id = b.server_id, reason = %e, "join from a box refused");
            Err(ApiError::bad_request(format!("join refused: {e}")))
        }
    }
}

async fn machines(State(shared): Ctx) -> Json<Value> {
    Json(shared.lock().machines.describe())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CloudInitBody {
    server: String,
    until: Until,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OfflineBody {
    server_id: u64,
    until: Until,
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

async fn fail_cloud_init(State(shared): Ctx, bytes: Bytes) -> Result<Response, ApiError> {
    let b: CloudInitBody = body(&bytes)?;
    shared.lock().machines.fail_cloud_init(&b.server, b.until);
    Ok(http::StatusCode::NO_CONTENT.into_response())
}

async fn hold_offline(State(shared): Ctx, bytes: Bytes) -> Result<Response, ApiError> {
    let b: OfflineBody = body(&bytes)?;
    if b.until != Until::PowerCycle && b.until != Until::Forever {
        return Err(ApiError::bad_request(
            "`until` must be \"power-cycle\" or \"forever\"".to_owned(),
        ));
    }
    let devices = shared
        .lock()
        .hold_offline(b.server_id, b.until, SystemTime::now());
    Ok(Json(json!({ "devices": devices })).into_response())
}

async fn requests(State(shared): Ctx) -> Json<Value> {
    let counts: Vec<Value> = shared
        .log
        .snapshot()
        .into_iter()
        .map(|(k, count)| {
            json!({"method": k.method, "route": k.route, "outcome": k.outcome, "count": count})
        })
        .collect();
    Json(Value::Array(counts))
}

async fn devices(State(shared): Ctx) -> Json<Value> {
    let state = shared.lock();
    let devices: Vec<Value> = state
        .devices
        .all()
        .map(|d| {
            let mut json = serde_json::to_value(d.to_wire(true)).unwrap_or_default();
            json["serverId"] = json!(d.server_id);
            json
        })
        .collect();
    Json(json!({ "devices": devices }))
}

async fn keys(State(shared): Ctx) -> Json<Value> {
    let now = SystemTime::now();
    let state = shared.lock();
    let keys: Vec<_> = state.keys.all().map(|k| k.to_wire(now, false)).collect();
    Json(json!({ "keys": keys }))
}

async fn failures(State(shared): Ctx) -> Json<Value> {
    let state = shared.lock();
    let failures: Vec<Value> = state
        .failures
        .iter()
        .map(|f| json!({"serverId": f.server_id, "serverName": f.server_name, "reason": f.reason.to_string()}))
        .collect();
    Json(json!({ "failures": failures }))
}

async fn faults(State(shared): Ctx) -> Json<Vec<FaultRule>> {
    Json(shared.faults.rules())
}

async fn set_faults(State(shared): Ctx, body: Bytes) -> Result<Response, ApiError> {
    let rules: Vec<FaultRule> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid fault rules: {e}")))?;
    shared.faults.set(rules);
    Ok(Json(shared.faults.rules()).into_response())
}
