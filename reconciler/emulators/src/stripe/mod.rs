//! A small Stripe emulator: subscriptions whose life (sign-up, status changes, cancellation)
//! produces Stripe events, a [`WebhookSender`] that delivers them with real `Stripe-Signature`
//! headers, and the API's subscription lookup `GET /v1/subscriptions/{id}` (what the
//! confirmed-delete policy asks). Start with [`StripeEmulator::start`].
//!
//! Stricter than Stripe where that catches bugs: only the secret key authenticates (Bearer, or
//! HTTP basic with the key as user), and ids are plain Stripe ids.

pub mod signature;
mod state;
#[cfg(test)]
mod tests;
pub mod wire;

use crate::Token;
use crate::emulator::{Faults, RequestLog, Server};
use axum::Router;
use axum::extract::{Path, State as Axum};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;
pub use state::Event;
use state::State;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// The emulator: its API server and its subscriptions.
#[derive(Debug)]
pub struct StripeEmulator {
    server: Server,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    key: Token,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StripeEmulator {
    /// Serves the API on 127.0.0.1 (a free port), accepting the secret key `key` (`sk_test_…`).
    ///
    /// # Errors
    /// The socket cannot be bound.
    pub async fn start(key: Token) -> std::io::Result<StripeEmulator> {
        let shared = Arc::new(Shared {
            key,
            state: Mutex::new(State::default()),
        });
        let router = Router::new()
            .route("/v1/subscriptions/{id}", get(retrieve))
            .with_state(shared.clone());
        let server = Server::start(
            router,
            Arc::new(Faults::new(0)),
            Arc::new(RequestLog::default()),
            fault_body,
        )
        .await?;
        Ok(StripeEmulator { server, shared })
    }

    /// `http://127.0.0.1:<port>`: the API base URL (Stripe's is `https://api.stripe.com`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A customer signs up for `lookup_key`'s price: a new `active` subscription and its
    /// `customer.subscription.created` event.
    pub fn sign_up(&self, customer: &str, lookup_key: &str) -> Event {
        self.shared
            .state()
            .sign_up(customer, lookup_key, SystemTime::now())
    }

    /// Adds an `active` subscription with a chosen id (e.g. one an existing agent spec names),
    /// without an event: billing history from before the emulator started.
    pub fn seed(&self, subscription: &str, customer: &str, lookup_key: &str) {
        self.shared
            .state()
            .seed(subscription, customer, lookup_key, SystemTime::now());
    }

    /// The subscription's status changes (`customer.subscription.updated`, or `.paused` /
    /// `.resumed` for those transitions); `None` for an unknown subscription.
    pub fn set_status(&self, subscription: &str, status: &str) -> Option<Event> {
        self.shared
            .state()
            .set_status(subscription, status, SystemTime::now())
    }

    /// The subscription is cancelled: status `canceled`, `customer.subscription.deleted`.
    pub fn cancel(&self, subscription: &str) -> Option<Event> {
        self.shared
            .state()
            .set_status(subscription, "canceled", SystemTime::now())
    }

    /// The subscription's current status, as the API would answer.
    pub fn status(&self, subscription: &str) -> Option<String> {
        self.shared
            .state()
            .subscription(subscription)
            .map(|s| s.status.clone())
    }
}

/// Delivers events to a webhook endpoint the way Stripe does: `POST` with the JSON body and a
/// `Stripe-Signature` made afresh for every attempt.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    endpoint: String,
    secret: Token,
    client: reqwest::Client,
}

impl WebhookSender {
    /// A sender to `endpoint` (e.g. `http://127.0.0.1:9181/stripe`) signing with `secret`.
    pub fn new(endpoint: &str, secret: Token) -> WebhookSender {
        WebhookSender {
            endpoint: endpoint.to_owned(),
            secret,
            client: reqwest::Client::new(),
        }
    }

    /// Delivers `event` now: the answer's status and JSON body.
    ///
    /// # Errors
    /// The endpoint did not answer.
    pub async fn deliver(&self, event: &Event) -> Result<(u16, Value), reqwest::Error> {
        let t = signature::unix(SystemTime::now());
        let header = signature::sign(&self.secret, t, event.body.as_bytes());
        let response = self
            .client
            .post(&self.endpoint)
            .header("Stripe-Signature", header)
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(event.body.clone())
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }
}

fn authorized(headers: &HeaderMap, key: &Token) -> bool {
    use base64::Engine as _;
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if let Some(bearer) = value.strip_prefix("Bearer ") {
        return bearer == key.expose();
    }
    value
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|user| String::from_utf8(user).ok())
        .is_some_and(|user| user.strip_suffix(':').unwrap_or(&user) == key.expose())
}

async fn retrieve(
    Axum(shared): Axum<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers, &shared.key) {
        return wire::error(
            StatusCode::UNAUTHORIZED,
            None,
            "Invalid API Key provided.",
            None,
        );
    }
    match shared.state().subscription(&id) {
        Some(sub) => (StatusCode::OK, axum::Json(sub.to_json())).into_response(),
        None => wire::error(
            StatusCode::NOT_FOUND,
            Some("resource_missing"),
            &format!("No such subscription: '{id}'"),
            Some("id"),
        ),
    }
}

fn fault_body(status: StatusCode) -> Response {
    wire::error(
        status,
        None,
        "An error occurred with our connection to Stripe.",
        None,
    )
}
