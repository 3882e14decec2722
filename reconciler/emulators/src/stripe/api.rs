//! The emulator's API routes: `GET /v1/subscriptions/{id}` and `GET /v1/subscriptions` (listed
//! newest first, paged with `limit`, `starting_after` and `has_more`, filtered by `status`, every
//! status with `status=all`), `expand[]` on both, the secret key as the only credential, and a
//! read rate limit answered like Stripe's: 429 with a `rate_limit_error`.
//!
//! Stricter than Stripe where that catches bugs: a `limit` outside 1..=100, an unknown `status`,
//! an unknown `starting_after` and a path that cannot be expanded are refused with 400.

use super::state::Subscription;
use super::{Shared, wire};
use axum::extract::{Path, RawQuery, State as Axum};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// Stripe's subscription statuses, for the `status` filter.
const STATUSES: [&str; 8] = [
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "paused",
];

/// What a subscription's `expand[]` may name (a list's entries take a `data.` prefix).
const EXPANDABLE: [&str; 2] = ["customer", "items.data.price.product"];

/// The query parameters the routes read, from the raw query (Stripe's libraries send
/// `expand[]=…` or `expand[0]=…`, which no derive reads).
#[derive(Debug, Default)]
struct Query {
    expand: Vec<String>,
    limit: Option<String>,
    starting_after: Option<String>,
    status: Option<String>,
}

impl Query {
    fn parse(raw: Option<&str>) -> Query {
        let mut query = Query::default();
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw.unwrap_or_default()).unwrap_or_default();
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => query.limit = Some(value),
                "starting_after" => query.starting_after = Some(value),
                "status" => query.status = Some(value),
                k if k == "expand" || (k.starts_with("expand[") && k.ends_with(']')) => {
                    query.expand.push(value);
                }
                _ => {}
            }
        }
        query
    }
}

/// A 400 in Stripe's shape, naming the parameter.
fn invalid(message: &str, param: &str) -> Response {
    wire::error(StatusCode::BAD_REQUEST, None, message, Some(param))
}

/// The refusal of a request without the key, or beyond the read budget.
fn refusal(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    if !authorized(headers, shared) {
        return Some(wire::error(
            StatusCode::UNAUTHORIZED,
            None,
            "Invalid API Key provided.",
            None,
        ));
    }
    if !shared.reads.take(Instant::now()) {
        return Some(wire::rate_limited());
    }
    None
}

fn authorized(headers: &HeaderMap, shared: &Shared) -> bool {
    use base64::Engine as _;
    let key = shared.key.expose();
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if let Some(bearer) = value.strip_prefix("Bearer ") {
        return bearer == key;
    }
    value
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|user| String::from_utf8(user).ok())
        .is_some_and(|user| user.strip_suffix(':').unwrap_or(&user) == key)
}

/// The subscription's JSON with the paths `expand` names expanded; Stripe's message for a path
/// that cannot be.
fn expanded(sub: &Subscription, expand: &[String], prefix: &str) -> Result<Value, String> {
    let mut object = sub.to_json();
    for path in expand {
        let Some(inner) = path.strip_prefix(prefix) else {
            return Err(format!("This property cannot be expanded ({path})."));
        };
        match inner {
            "customer" => {
                object["customer"] = json!({"id": sub.customer, "object": "customer"});
            }
            "items.data.price.product" => {
                object["items"]["data"][0]["price"]["product"] = json!({
                    "id": format!("prod_{}", sub.lookup_key),
                    "object": "product",
                    "name": sub.lookup_key,
                });
            }
            _ => {
                let known: Vec<String> =
                    EXPANDABLE.iter().map(|e| format!("{prefix}{e}")).collect();
                return Err(format!(
                    "This property cannot be expanded ({path}). You may want to try expanding one of: {}.",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(object)
}

/// `GET /v1/subscriptions/{id}`.
pub(super) async fn retrieve(
    Axum(shared): Axum<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers) {
        return refused;
    }
    let query = Query::parse(raw.as_deref());
    let state = shared.state();
    let Some(sub) = state.subscription(&id) else {
        return wire::error(
            StatusCode::NOT_FOUND,
            Some("resource_missing"),
            &format!("No such subscription: '{id}'"),
            Some("id"),
        );
    };
    match expanded(sub, &query.expand, "") {
        Ok(object) => (StatusCode::OK, axum::Json(object)).into_response(),
        Err(message) => invalid(&message, "expand"),
    }
}

/// `GET /v1/subscriptions`.
pub(super) async fn list(
    Axum(shared): Axum<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers) {
        return refused;
    }
    let query = Query::parse(raw.as_deref());
    let limit = match query.limit.as_deref().map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return invalid("Invalid integer: limit must be between 1 and 100.", "limit");
        }
    };
    let status = query.status.as_deref();
    if let Some(s) = status
        && s != "all"
        && !STATUSES.contains(&s)
    {
        return invalid(
            &format!(
                "Invalid status: must be one of {}, all.",
                STATUSES.join(", ")
            ),
            "status",
        );
    }
    let state = shared.state();
    let mut listed: Vec<&Subscription> = state
        .subscriptions()
        .filter(|s| match status {
            Some("all") => true,
            Some(wanted) => s.status == wanted,
            None => s.status != "canceled",
        })
        .collect();
    listed.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
    let start = match &query.starting_after {
        None => 0,
        Some(after) => match listed.iter().position(|s| s.id == *after) {
            Some(i) => i + 1,
            None => {
                return invalid(
                    &format!("No such subscription: '{after}'"),
                    "starting_after",
                );
            }
        },
    };
    let page = listed.iter().skip(start).take(limit);
    let mut data = Vec::new();
    for sub in page {
        match expanded(sub, &query.expand, "data.") {
            Ok(object) => data.push(object),
            Err(message) => return invalid(&message, "expand"),
        }
    }
    let has_more = listed.len() > start + data.len();
    (
        StatusCode::OK,
        axum::Json(json!({
            "object": "list",
            "url": "/v1/subscriptions",
            "has_more": has_more,
            "data": data,
        })),
    )
        .into_response()
}
