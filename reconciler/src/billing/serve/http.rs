//! The receiver's HTTP side: `POST /stripe` (Stripe webhook deliveries), `GET /healthz` and
//! `GET /metrics`. Start at [`Receiver::receive`], which decides the answer to one delivery.
//!
//! Order of checks: body size (413 past [`MAX_BODY_BYTES`]), signature and timestamp (400,
//! before anything reads the body), replay (a signature acknowledged before: 200 `replay`,
//! nothing done), event shape (400), then the single writer, which reads the subscription from
//! Stripe and maps it (422 unmapped, 503 unreadable): the answer waits for the commit holding
//! the event.

use super::events::{self, Parsed};
use super::metrics::BillingMetrics;
use super::queue::{Item, Outcome, Queue, QueueError};
use super::signature::{self, HEADER};
use crate::secret::Secret;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Largest body accepted (Stripe's events are a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Everything one delivery is checked against.
pub struct Receiver {
    /// Endpoint secrets (several while one is rolled).
    pub secrets: Vec<Secret<String>>,
    /// Timestamp tolerance.
    pub tolerance: Duration,
    /// The single writer.
    pub queue: Queue,
    /// Metrics.
    pub metrics: Arc<BillingMetrics>,
    /// How long a delivery may wait for its commit before 503 (Stripe then retries).
    pub ack_timeout: Duration,
    /// The clock.
    pub now: Arc<dyn Fn() -> SystemTime + Send + Sync>,
    /// Signatures acknowledged within the tolerance window, with their timestamps.
    acknowledged: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .finish_non_exhaustive()
    }
}

/// An answer: status, outcome label (for metrics) and JSON body.
type Answer = (StatusCode, &'static str, Value);

impl Receiver {
    /// A receiver; see the fields.
    pub fn new(
        secrets: Vec<Secret<String>>,
        tolerance: Duration,
        queue: Queue,
        metrics: Arc<BillingMetrics>,
        ack_timeout: Duration,
        now: Arc<dyn Fn() -> SystemTime + Send + Sync>,
    ) -> Receiver {
        Receiver {
            secrets,
            tolerance,
            queue,
            metrics,
            ack_timeout,
            now,
            acknowledged: Mutex::new(HashMap::new()),
        }
    }

    /// The routes: `POST /stripe`, `GET /healthz`, `GET /metrics`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/stripe", post(handle))
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self)
    }

    /// The answer to one delivery.
    pub async fn receive(&self, headers: &HeaderMap, body: &[u8]) -> (StatusCode, Value) {
        let started = Instant::now();
        let (status, outcome, value) = self.decide(headers, body).await;
        self.metrics.count_delivery(outcome, started.elapsed());
        (status, value)
    }

    async fn decide(&self, headers: &HeaderMap, body: &[u8]) -> Answer {
        let Some(sig) = headers.get(HEADER).and_then(|v| v.to_str().ok()) else {
            tracing::warn!("Stripe delivery without a Stripe-Signature header refused");
            return problem(
                StatusCode::BAD_REQUEST,
                "bad_signature",
                "missing Stripe-Signature header",
                "only signed deliveries from a Stripe webhook endpoint are accepted",
            );
        };
        let now = (self.now)();
        let verified = match signature::verify(sig, body, &self.secrets, now, self.tolerance) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "Stripe delivery refused");
                return problem(
                    StatusCode::BAD_REQUEST,
                    "bad_signature",
                    &e.to_string(),
                    "see docs/billing.md, `tether billing serve`",
                );
            }
        };
        if self.was_acknowledged(&verified.signature) {
            tracing::warn!(
                timestamp = verified.timestamp,
                "a delivery already acknowledged was sent again (replay); nothing done"
            );
            return (
                StatusCode::OK,
                "replay",
                json!({"status": "replay", "changed": false}),
            );
        }
        let event = match events::parse(body) {
            Ok(Parsed::Subscription(e)) => e,
            Ok(Parsed::Ignored { id, kind }) => {
                self.acknowledge(verified);
                return (
                    StatusCode::OK,
                    "ignored",
                    json!({"status": "ignored", "event": id, "reason": format!("`{kind}` is not a subscription lifecycle event")}),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "Stripe delivery unreadable");
                return problem(
                    StatusCode::BAD_REQUEST,
                    "bad_event",
                    &e.to_string(),
                    "send Stripe subscription events",
                );
            }
        };
        let (id, sub) = (event.id.clone(), event.subscription.clone());
        let submitted =
            tokio::time::timeout(self.ack_timeout, self.queue.submit(Item { event })).await;
        let answer = match submitted {
            Ok(Ok(outcome)) => answer(&id, &sub, outcome),
            Ok(Err(QueueError::Commit(e))) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "failed",
                &e,
                "Stripe retries; check the fleet repository",
            ),
            Ok(Err(e @ QueueError::Stopped)) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "failed",
                &e.to_string(),
                "Stripe retries",
            ),
            Err(_) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "failed",
                "the commit did not land in time",
                "Stripe retries; the retry is a duplicate if the commit landed meanwhile",
            ),
        };
        if answer.0.is_success() {
            self.acknowledge(verified);
        }
        answer
    }

    fn was_acknowledged(&self, signature: &str) -> bool {
        self.acknowledged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(signature)
    }

    /// Remembers an acknowledged signature until its timestamp leaves the tolerance window
    /// (after which the timestamp check refuses it anyway).
    fn acknowledge(&self, verified: signature::Verified) {
        let oldest = signature::unix((self.now)())
            - i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        let mut seen = self
            .acknowledged
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, t| *t >= oldest);
        seen.insert(verified.signature, verified.timestamp);
    }
}

fn answer(id: &str, sub: &str, outcome: Outcome) -> Answer {
    match outcome {
        Outcome::Applied { commit } => {
            tracing::info!(event = id, subscription = sub, %commit, "Stripe event applied");
            (
                StatusCode::OK,
                "applied",
                json!({"status": "applied", "event": id, "subscription": sub, "commit": commit.to_string()}),
            )
        }
        Outcome::Duplicate => (
            StatusCode::OK,
            "duplicate",
            json!({"status": "duplicate", "event": id, "changed": false}),
        ),
        Outcome::Stale { last } => {
            tracing::info!(event = id, subscription = sub, last = %last, "Stripe event older than the last one applied; nothing done");
            (
                StatusCode::OK,
                "stale",
                json!({"status": "stale", "event": id, "last": last, "changed": false}),
            )
        }
        Outcome::Invalid(diagnostics) => {
            tracing::error!(
                event = id,
                subscription = sub,
                problems = diagnostics.len(),
                "Stripe event would make the fleet invalid"
            );
            let problems: Vec<String> = diagnostics
                .iter()
                .map(|d| format!("{}: {}: {}", d.file, d.path, d.message))
                .collect();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                json!({"error": "the change would make the fleet invalid; nothing was committed", "problems": problems, "hint": "fix the price mapping or fleet.yaml; Stripe retries"}),
            )
        }
        Outcome::Unmapped(e) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unmapped",
            &e.to_string(),
            "fix the price mapping and restart; Stripe retries the delivery",
        ),
        Outcome::Unreadable(reason) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unreadable",
            &reason,
            "Stripe retries; the spec follows the subscription read from Stripe's API (STRIPE_API_KEY)",
        ),
        Outcome::Refused(reason) => {
            tracing::error!(event = id, subscription = sub, reason = %reason, "Stripe event refused");
            problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refused",
                &reason,
                "fix the spec by hand; Stripe retries",
            )
        }
    }
}

fn problem(status: StatusCode, outcome: &'static str, error: &str, hint: &str) -> Answer {
    (status, outcome, json!({"error": error, "hint": hint}))
}

async fn handle(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                receiver.metrics.count_delivery("too_large", Duration::ZERO);
            }
            let error = format!("body refused: {}", rejection.body_text());
            let hint = format!("Stripe events are far below {MAX_BODY_BYTES} bytes");
            return (status, Json(json!({"error": error, "hint": hint}))).into_response();
        }
    };
    let (status, value) = receiver.receive(&headers, &body).await;
    (status, Json(value)).into_response()
}

async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

async fn metrics(State(receiver): State<Arc<Receiver>>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::process::metrics::CONTENT_TYPE)],
        receiver.metrics.render(),
    )
        .into_response()
}
