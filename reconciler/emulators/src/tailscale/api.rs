//! The `/api/v2/…` routes: authenticate (401), check the scope (403), resolve the tailnet
//! (404), then act. Bodies are JSON with unknown fields refused; errors are
//! `{"message": …}`.

use super::access::{Actor, Scope};
use super::state::State as TailnetState;
use super::wire;
use super::{ApiError, Shared};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::SystemTime;

type Ctx = State<Arc<Shared>>;
type Answer = Result<Response, ApiError>;

/// The API routes.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v2/oauth/token", post(token))
        .route("/api/v2/tailnet/{tailnet}/devices", get(list_devices))
        .route("/api/v2/device/{id}", get(get_device).delete(delete_device))
        .route("/api/v2/device/{id}/tags", post(set_tags))
        .route("/api/v2/device/{id}/authorized", post(set_authorized))
        .route(
            "/api/v2/tailnet/{tailnet}/keys",
            get(list_keys).post(create_key),
        )
        .route(
            "/api/v2/tailnet/{tailnet}/keys/{key}",
            get(get_key).delete(delete_key),
        )
}

/// Any path the emulator does not serve.
pub(super) async fn no_route() -> ApiError {
    ApiError::not_found("no such endpoint in the tether emulator")
}

/// A served path with a method it does not take.
pub(super) async fn no_method() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: "method not allowed".to_owned(),
    }
}

/// The caller, if it may do what `scope` covers.
fn caller(state: &TailnetState, headers: &HeaderMap, scope: Scope) -> Result<Actor, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let actor = state
        .access
        .authenticate(authorization, SystemTime::now())?;
    actor.require(scope)?;
    Ok(actor)
}

/// Refuses any tailnet but `-` and this one's name.
fn tailnet(state: &TailnetState, name: &str) -> Result<(), ApiError> {
    if state.is_tailnet(name) {
        Ok(())
    } else {
        Err(ApiError::not_found("tailnet not found"))
    }
}

fn query(raw: Option<String>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
}

fn has_content_type(headers: &HeaderMap, wanted: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with(wanted))
}

fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    if !has_content_type(headers, "application/json") {
        return Err(ApiError::bad_request(
            "the request body must be JSON (Content-Type: application/json)".to_owned(),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

fn empty_object() -> Response {
    Json(serde_json::json!({})).into_response()
}

async fn token(State(shared): Ctx, headers: HeaderMap, body: Bytes) -> Answer {
    if !has_content_type(&headers, "application/x-www-form-urlencoded") {
        return Err(ApiError::bad_request(
            "the token request must be form-encoded".to_owned(),
        ));
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid form: {e}")))?;
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mut guard = shared.lock();
    let state = &mut *guard;
    let token =
        state
            .access
            .issue_token(&form, authorization, &mut state.rng, SystemTime::now())?;
    Ok(Json(token).into_response())
}

async fn list_devices(
    State(shared): Ctx,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let state = shared.lock();
    caller(&state, &headers, Scope::DevicesRead)?;
    tailnet(&state, &name)?;
    let devices = state.devices.list(&query(raw)?)?;
    Ok(Json(wire::DeviceList { devices }).into_response())
}

async fn get_device(
    State(shared): Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let state = shared.lock();
    caller(&state, &headers, Scope::DevicesRead)?;
    let mut all_fields = false;
    for (key, value) in query(raw)? {
        match (key.as_str(), value.as_str()) {
            ("fields", "all") => all_fields = true,
            ("fields", "default") => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unsupported query {key}={value}"
                )));
            }
        }
    }
    let device = state
        .devices
        .find(&id)
        .ok_or_else(|| ApiError::not_found("device not found"))?;
    Ok(Json(device.to_wire(all_fields)).into_response())
}

async fn delete_device(State(shared): Ctx, Path(id): Path<String>, headers: HeaderMap) -> Answer {
    let mut state = shared.lock();
    caller(&state, &headers, Scope::DevicesWrite)?;
    let removed = state
        .devices
        .remove(&id)
        .ok_or_else(|| ApiError::not_found("device not found"))?;
    tracing::info!(provider = "tailscale-emulator", device = %removed.node_id, "device deleted");
    Ok(StatusCode::OK.into_response())
}

async fn set_tags(
    State(shared): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let mut guard = shared.lock();
    let state = &mut *guard;
    let actor = caller(state, &headers, Scope::DevicesWrite)?;
    let request: wire::SetTags = json_body(&headers, &body)?;
    let device = state
        .devices
        .find_mut(&id)
        .ok_or_else(|| ApiError::not_found("device not found"))?;
    state.access.check_tags(&actor, &request.tags)?;
    if request.tags.is_empty() && !device.tags.is_empty() {
        return Err(ApiError::bad_request(
            "cannot remove every tag from a tagged device".to_owned(),
        ));
    }
    device.set_tags(request.tags);
    Ok(empty_object())
}

async fn set_authorized(
    State(shared): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let mut state = shared.lock();
    caller(&state, &headers, Scope::DevicesWrite)?;
    let request: wire::SetAuthorized = json_body(&headers, &body)?;
    let device = state
        .devices
        .find_mut(&id)
        .ok_or_else(|| ApiError::not_found("device not found"))?;
    device.authorized = request.authorized;
    Ok(empty_object())
}

async fn list_keys(
    State(shared): Ctx,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let state = shared.lock();
    let actor = caller(&state, &headers, Scope::KeysRead)?;
    tailnet(&state, &name)?;
    let mut all = false;
    for (key, value) in query(raw)? {
        match (key.as_str(), value.as_str()) {
            ("all", "true") => all = true,
            ("all", "false") => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unsupported query {key}={value}"
                )));
            }
        }
    }
    let now = SystemTime::now();
    let keys = state
        .keys
        .visible(&actor, all)
        .map(|k| k.to_wire(now, false))
        .collect();
    Ok(Json(wire::KeyList { keys }).into_response())
}

async fn create_key(
    State(shared): Ctx,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let mut guard = shared.lock();
    let state = &mut *guard;
    let actor = caller(state, &headers, Scope::KeysWrite)?;
    tailnet(state, &name)?;
    let request: wire::CreateKey = json_body(&headers, &body)?;
    let now = SystemTime::now();
    let key = state
        .keys
        .create(request, &actor, &state.access, &mut state.rng, now)?;
    tracing::info!(provider = "tailscale-emulator", key = %key.id, "auth key created");
    Ok(Json(key.to_wire(now, true)).into_response())
}

async fn get_key(
    State(shared): Ctx,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let state = shared.lock();
    caller(&state, &headers, Scope::KeysRead)?;
    tailnet(&state, &name)?;
    let key = state
        .keys
        .get(&id)
        .ok_or_else(|| ApiError::not_found("key not found"))?;
    Ok(Json(key.to_wire(SystemTime::now(), false)).into_response())
}

async fn delete_key(
    State(shared): Ctx,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let mut state = shared.lock();
    caller(&state, &headers, Scope::KeysWrite)?;
    tailnet(&state, &name)?;
    if !state.keys.revoke(&id, SystemTime::now()) {
        return Err(ApiError::not_found("key not found"));
    }
    tracing::info!(provider = "tailscale-emulator", key = %id, "auth key revoked");
    Ok(StatusCode::OK.into_response())
}
