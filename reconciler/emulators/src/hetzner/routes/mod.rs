//! The HTTP surface: every `/v1` route behind authentication and rate limiting, the
//! `/_emulator` control routes beside them, and helpers the handlers share (ids, lists).
//!
//! - [`servers`]: `/servers` CRUD; [`server_actions`]: power, change type, server actions;
//! - [`rebuild`]: rebuild (a wiped disk, new user_data) and change_protection;
//! - [`actions`]: `/actions`; [`catalog`]: types, locations, datacenters, images;
//! - [`ssh_keys`]: `/ssh_keys` CRUD; [`firewalls`]: `/firewalls` CRUD and their actions; [`control`]: `/_emulator` for tests; [`gate`]: middleware.

mod actions;
mod catalog;
mod control;
mod firewalls;
mod gate;
mod rebuild;
mod server_actions;
mod servers;
mod ssh_keys;

use super::errors::ApiError;
use super::pagination::{ListUrl, paginate};
use super::query::Params;
use super::shared::Shared;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value};
use std::sync::Arc;

/// What a handler returns.
type ApiResult = Result<Response, ApiError>;

/// The whole application: API routes (gated) and control routes (open, loopback only).
pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/v1/servers", get(servers::list).post(servers::create))
        .route(
            "/v1/servers/{id}",
            get(servers::get)
                .put(servers::update)
                .delete(servers::delete),
        )
        .route("/v1/servers/{id}/actions", get(server_actions::list))
        .route(
            "/v1/servers/{id}/actions/{action}",
            get(server_actions::get).post(server_actions::post),
        )
        .route("/v1/actions", get(actions::list))
        .route("/v1/actions/{id}", get(actions::get))
        .route("/v1/server_types", get(catalog::server_types))
        .route("/v1/server_types/{id}", get(catalog::server_type))
        .route("/v1/locations", get(catalog::locations))
        .route("/v1/locations/{id}", get(catalog::location))
        .route("/v1/datacenters", get(catalog::datacenters))
        .route("/v1/datacenters/{id}", get(catalog::datacenter))
        .route("/v1/images", get(catalog::images))
        .route("/v1/images/{id}", get(catalog::image))
        .route("/v1/ssh_keys", get(ssh_keys::list).post(ssh_keys::create))
        .route(
            "/v1/ssh_keys/{id}",
            get(ssh_keys::get)
                .put(ssh_keys::update)
                .delete(ssh_keys::delete),
        )
        .route(
            "/v1/firewalls",
            get(firewalls::list).post(firewalls::create),
        )
        .route(
            "/v1/firewalls/{id}",
            get(firewalls::get)
                .put(firewalls::update)
                .delete(firewalls::delete),
        )
        .route("/v1/firewalls/{id}/actions", get(firewalls::actions))
        .route(
            "/v1/firewalls/{id}/actions/{action}",
            axum::routing::post(firewalls::post),
        )
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(middleware::from_fn_with_state(shared.clone(), gate::gate))
        .with_state(shared.clone());
    control::router(shared)
        .merge(api)
        .layer(middleware::from_fn(gate::correlate))
}

/// Parses a numeric path id; anything else names no resource.
fn parse_id(raw: &str, what: &str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(what))
}

/// A JSON response.
fn respond(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// `{key: value}` with status 200.
fn one(key: &str, value: Value) -> ApiResult {
    let mut body = Map::new();
    body.insert(key.to_owned(), value);
    Ok(respond(StatusCode::OK, Value::Object(body)))
}

/// The query and location of a list request.
#[derive(Debug)]
struct Listing {
    params: Params,
    url: ListUrl,
}

impl<S: Send + Sync> FromRequestParts<S> for Listing {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_owned();
        Ok(Listing {
            params: Params::parse(parts.uri.query())?,
            url: ListUrl {
                host,
                path: parts.uri.path().to_owned(),
            },
        })
    }
}

/// Paginates `items` (filtered and sorted), renders the page's entries and answers
/// `{key: [...], meta, ..extra}` with the `Link` header.
fn list_of<T>(
    listing: &Listing,
    key: &str,
    items: Vec<T>,
    render: impl Fn(&T) -> Value,
    extra: Map<String, Value>,
) -> ApiResult {
    let page = paginate(items, &listing.params, &listing.url)?;
    let mut body = extra;
    body.insert(key.to_owned(), page.items.iter().map(render).collect());
    body.insert("meta".to_owned(), page.meta);
    let mut response = respond(StatusCode::OK, Value::Object(body));
    if let Some(link) = page.link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// Adds a seeded SSH key to `model`.
///
/// # Errors
/// The key is malformed or not unique.
pub fn seed_key(model: &mut super::state::Model, name: &str, key: &str) -> Result<(), String> {
    ssh_keys::add_key(model, name.to_owned(), key.to_owned(), Default::default())
        .map(|_| ())
        .map_err(|e| e.message)
}
