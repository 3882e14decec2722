//! A small Stripe emulator: subscriptions whose life (sign-up, price and status changes,
//! cancellation) produces Stripe events, a [`WebhookSender`] that delivers them with real
//! `Stripe-Signature` headers, and the API's subscription retrieve and list ([`api`]: what the
//! confirmed-delete policy, the billing receiver and `tether billing sync` read), with a read
//! rate limit. Start with [`StripeEmulator::start`].
//!
//! Stricter than Stripe where that catches bugs: only the secret key authenticates (Bearer, or
//! HTTP basic with the key as user), and ids are plain Stripe ids.

mod api;
pub mod signature;
mod state;
#[cfg(test)]
mod tests;
pub mod wire;

use crate::Token;
use crate::emulator::{Faults, RequestLog, Server};
use axum::Router;
use axum::response::Response;
use axum::routing::get;
use http::{StatusCode, header};
use serde_json::Value;
pub use state::Event;
use state::State;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// The emulator: its API server and its subscriptions.
#[derive(Debug)]
pub struct StripeEmulator {
    server: Server,
    shared: Arc<Shared>,
    faults: Arc<Faults>,
    log: Arc<RequestLog>,
}

#[derive(Debug)]
struct Shared {
    key: Token,
    state: Mutex<State>,
    reads: ReadBudget,
}

/// Reads allowed per one-second window (none: unlimited), like Stripe's per-second limit.
#[derive(Debug, Default)]
struct ReadBudget {
    per_second: Mutex<Option<u32>>,
    window: Mutex<Option<(Instant, u32)>>,
}

impl ReadBudget {
    /// Whether one more read fits the window `now` falls in.
    fn take(&self, now: Instant) -> bool {
        let Some(limit) = *self
            .per_second
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        else {
            return true;
        };
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let (start, used) = match *window {
            Some((start, used)) if now.duration_since(start) < Duration::from_secs(1) => {
                (start, used)
            }
            _ => (now, 0),
        };
        if used >= limit {
            *window = Some((start, used));
            return false;
        }
        *window = Some((start, used + 1));
        true
    }
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
            reads: ReadBudget::default(),
        });
        let router = Router::new()
            .route("/v1/subscriptions", get(api::list))
            .route("/v1/subscriptions/{id}", get(api::retrieve))
            .with_state(shared.clone());
        let faults = Arc::new(Faults::new(0));
        let log = Arc::new(RequestLog::default());
        let server = Server::start(router, faults.clone(), log.clone(), fault_body).await?;
        Ok(StripeEmulator {
            server,
            shared,
            faults,
            log,
        })
    }

    /// The fault rules (latency, 5xx answers, dropped connections) of the API.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The API's request counters (reads by route and outcome).
    pub fn requests(&self) -> &RequestLog {
        &self.log
    }

    /// At most `per_second` reads in any one-second window, beyond which the API answers 429
    /// with a `rate_limit_error`, as Stripe does; `None` lifts the limit.
    pub fn set_read_limit(&self, per_second: Option<u32>) {
        *self
            .shared
            .reads
            .per_second
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = per_second;
    }

    /// The subscription moves to `lookup_key`'s price (an upgrade or a downgrade):
    /// `customer.subscription.updated`; `None` for an unknown subscription.
    pub fn change_price(&self, subscription: &str, lookup_key: &str) -> Option<Event> {
        self.shared
            .state()
            .change_price(subscription, lookup_key, SystemTime::now())
    }

    /// Every subscription as `(id, status, lookup key, customer)`, sorted by id: Stripe's
    /// current state, for a test to compare the fleet with.
    pub fn subscriptions(&self) -> Vec<(String, String, String, String)> {
        self.shared
            .state()
            .subscriptions()
            .map(|s| {
                (
                    s.id.clone(),
                    s.status.clone(),
                    s.lookup_key.clone(),
                    s.customer.clone(),
                )
            })
            .collect()
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

fn fault_body(status: StatusCode) -> Response {
    wire::error(
        status,
        None,
        "An error occurred with our connection to Stripe.",
        None,
    )
}
