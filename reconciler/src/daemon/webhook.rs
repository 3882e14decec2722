//! GitHub `push` webhooks ([`Webhook`]): a signed push to the watched branch becomes a
//! [`Trigger::Webhook`]. Start at [`Webhook::receive`], which decides the answer to a
//! delivery; [`Webhook::router`] mounts it at `POST /webhook`.
//!
//! Every delivery must carry `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`,
//! compared in constant time; nothing else is looked at before it verifies. Verified delivery
//! ids are remembered (the last [`REMEMBERED_DELIVERIES`]) so replays are ignored. The secret
//! and signatures are never logged.

use crate::daemon::trigger::{Trigger, TriggerSender};
use crate::secret::Secret;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// The signature header GitHub sends.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The event name header (`push`, `ping`, …).
pub const EVENT_HEADER: &str = "x-github-event";
/// The per-delivery GUID header.
pub const DELIVERY_HEADER: &str = "x-github-delivery";
/// GitHub's own cap on a payload; larger bodies are refused before verification.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;
/// How many verified delivery ids are remembered to ignore replays.
pub const REMEMBERED_DELIVERIES: usize = 10_000;
/// Longest delivery id accepted (GitHub sends 36-character GUIDs).
const MAX_DELIVERY_ID: usize = 128;

/// Whether `signature` (the header value, `sha256=<hex>`) is the HMAC-SHA256 of `body` keyed
/// with `secret`. The comparison takes constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(expected) = signature.strip_prefix("sha256=").and_then(decode_hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The last verified delivery ids, oldest first.
#[derive(Debug, Default)]
struct Deliveries {
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl Deliveries {
    /// Remembers `id`; false when it was already there.
    fn insert(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() == REMEMBERED_DELIVERIES
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(id.to_owned());
        self.seen.insert(id.to_owned());
        true
    }
}

/// The fields of a `push` payload tether reads.
#[derive(Debug, Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
}

/// A form-encoded delivery (`Content-Type: application/x-www-form-urlencoded`).
#[derive(Debug, Deserialize)]
struct Form {
    payload: String,
}

/// The webhook endpoint of one daemon: its secret, the watched branch and where triggers go.
#[derive(Debug)]
pub struct Webhook {
    secret: Secret<String>,
    branch: String,
    sender: TriggerSender,
    deliveries: Mutex<Deliveries>,
}

impl Webhook {
    /// An endpoint verifying with `secret` and triggering on pushes to `branch`.
    pub fn new(secret: Secret<String>, branch: &str, sender: TriggerSender) -> Webhook {
        Webhook {
            secret,
            branch: branch.to_owned(),
            sender,
            deliveries: Mutex::new(Deliveries::default()),
        }
    }

    /// `POST /webhook`, with a body limit of [`MAX_BODY_BYTES`].
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/webhook", post(handle))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self)
    }

    /// The answer to one delivery, sending a trigger when it is a push to the watched branch:
    /// - 401 when the signature is missing or wrong;
    /// - 400 when the event or delivery header is missing, or the payload is unreadable;
    /// - 200 `duplicate` for a delivery id seen before, 200 `pong` for `ping`;
    /// - 202 `ignored` for other events and other branches, 202 `accepted` with a trigger.
    pub fn receive(&self, headers: &HeaderMap, body: &[u8]) -> (StatusCode, Value) {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let Some(signature) = header(SIGNATURE_HEADER) else {
            tracing::warn!("webhook delivery without a signature refused");
            return problem(
                StatusCode::UNAUTHORIZED,
                "missing X-Hub-Signature-256 header",
                "configure the GitHub webhook with a secret: tether accepts only signed deliveries",
            );
        };
        if !verify_signature(self.secret.expose().as_bytes(), body, signature) {
            tracing::warn!(
                delivery = header(DELIVERY_HEADER),
                "webhook delivery with an invalid signature refused"
            );
            return problem(
                StatusCode::UNAUTHORIZED,
                "invalid signature",
                "the webhook secret in GitHub must equal the one tether reads (see docs/operations.md)",
            );
        }
        let (Some(event), Some(delivery)) = (header(EVENT_HEADER), header(DELIVERY_HEADER)) else {
            return problem(
                StatusCode::BAD_REQUEST,
                "missing X-GitHub-Event or X-GitHub-Delivery header",
                "send deliveries from a GitHub webhook",
            );
        };
        if delivery.is_empty() || delivery.len() > MAX_DELIVERY_ID {
            return problem(
                StatusCode::BAD_REQUEST,
                "X-GitHub-Delivery must be 1 to 128 characters",
                "send deliveries from a GitHub webhook",
            );
        }
        let first = self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(delivery);
        if !first {
            tracing::info!(delivery, event, "webhook delivery seen before; ignored");
            return (StatusCode::OK, json!({"status": "duplicate"}));
        }
        match event {
            "ping" => (StatusCode::OK, json!({"status": "pong"})),
            "push" => self.push(headers, body, delivery),
            other => ignored(format!("event `{other}` is not handled; only push is")),
        }
    }

    fn push(&self, headers: &HeaderMap, body: &[u8], delivery: &str) -> (StatusCode, Value) {
        let Some(push) = parse_push(headers, body) else {
            return problem(
                StatusCode::BAD_REQUEST,
                "the push payload is not readable",
                "send the payload as application/json or form-encoded `payload=`",
            );
        };
        let watched = format!("refs/heads/{}", self.branch);
        if push.git_ref != watched {
            return ignored(format!("push to {}; watching {watched}", push.git_ref));
        }
        tracing::info!(delivery, commit = %push.after, "webhook push accepted");
        self.sender.send(Trigger::Webhook {
            delivery: delivery.to_owned(),
            commit: push.after.clone(),
        });
        (
            StatusCode::ACCEPTED,
            json!({"status": "accepted", "commit": push.after}),
        )
    }
}

fn parse_push(headers: &HeaderMap, body: &[u8]) -> Option<Push> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        let form: Form = serde_urlencoded::from_bytes(body).ok()?;
        serde_json::from_str(&form.payload).ok()
    } else {
        serde_json::from_slice(body).ok()
    }
}

fn problem(status: StatusCode, error: &str, hint: &str) -> (StatusCode, Value) {
    (status, json!({"error": error, "hint": hint}))
}

fn ignored(reason: String) -> (StatusCode, Value) {
    (
        StatusCode::ACCEPTED,
        json!({"status": "ignored", "reason": reason}),
    )
}

async fn handle(State(hook): State<Arc<Webhook>>, headers: HeaderMap, body: Bytes) -> Response {
    let (status, body) = hook.receive(&headers, &body);
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests;
