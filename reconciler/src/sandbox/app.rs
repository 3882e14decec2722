//! The sandbox's "app": the product's endpoint for lifecycle events, on 127.0.0.1. It verifies
//! every delivery's `Tether-Signature` with the documented verifier
//! ([`crate::events::signature::verify`]), refuses what does not verify, and keeps the events,
//! so `tether sandbox` and the demo show what a real app would receive.

use crate::daemon::config::{
    DEFAULT_EVENTS_TIMEOUT, DEFAULT_GIVE_UP_AFTER, DEFAULT_RETRY_FIRST, DEFAULT_RETRY_MAX,
    EventsEndpoint,
};
use crate::events::signature;
use crate::secret::Secret;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// The secret the sandbox's daemon and app share (a sandbox only).
const SECRET: &str = "sandbox-app-events-secret";

type Received = Arc<Mutex<Vec<serde_json::Value>>>;

/// The app endpoint, serving until dropped.
#[derive(Debug)]
pub struct App {
    url: String,
    received: Received,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl App {
    /// Serves on a free port of 127.0.0.1.
    ///
    /// # Errors
    /// No port can be bound.
    pub async fn start() -> std::io::Result<App> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks/tether", listener.local_addr()?);
        let received = Received::default();
        let router = Router::new()
            .route("/hooks/tether", post(receive))
            .with_state(received.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(App {
            url,
            received,
            server,
        })
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `events` endpoint a daemon (or the demo) delivers to it with, retrying quickly.
    pub fn endpoint(&self) -> EventsEndpoint {
        EventsEndpoint {
            name: "app".to_owned(),
            url: Secret::new(self.url.clone()),
            secrets: vec![Secret::new(SECRET.to_owned())],
            timeout: DEFAULT_EVENTS_TIMEOUT,
            retry_first: DEFAULT_RETRY_FIRST.min(Duration::from_millis(200)),
            retry_max: DEFAULT_RETRY_MAX.min(Duration::from_secs(5)),
            give_up_after: DEFAULT_GIVE_UP_AFTER,
        }
    }

    /// The verified events received so far, in arrival order.
    pub fn received(&self) -> Vec<serde_json::Value> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One delivery: 204 once verified and kept, 401 when the signature does not verify.
async fn receive(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = headers
        .get(signature::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let secrets = [Secret::new(SECRET.to_owned())];
    if signature::verify(header, &body, &secrets, SystemTime::now()).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut kept = received.lock().unwrap_or_else(PoisonError::into_inner);
    if !kept.iter().any(|e| e["id"] == event["id"]) {
        tracing::info!("{}", describe(&event));
        kept.push(event);
    }
    StatusCode::NO_CONTENT
}

/// The line the demo prints for an event the app received.
pub fn describe(event: &serde_json::Value) -> String {
    let data = &event["data"];
    let mut line = format!(
        "app received {} {} #{}",
        event["type"].as_str().unwrap_or("?"),
        event["subject"].as_str().unwrap_or("?"),
        event["sequence"]
    );
    if event["type"] == "agent.ready" {
        let tailnet: Vec<&str> = data["tailnetIps"]
            .as_array()
            .map(|ips| ips.iter().filter_map(|ip| ip.as_str()).collect())
            .unwrap_or_default();
        line.push_str(&format!(
            ": server {} ({} in {}), public {} / {}, tailnet {} (device {})",
            data["serverId"],
            data["serverType"].as_str().unwrap_or("?"),
            data["location"].as_str().unwrap_or("?"),
            data["ipv4"].as_str().unwrap_or("-"),
            data["ipv6"].as_str().unwrap_or("-"),
            tailnet.join(", "),
            data["deviceId"].as_str().unwrap_or("-")
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_app_keeps_verified_events_once_and_refuses_a_forged_one() {
        let app = App::start().await.expect("app");
        let body = br#"{"id":"evt_1","type":"agent.ready","subject":"a","sequence":2,"data":{"serverId":7,"ipv4":"203.0.113.7","tailnetIps":["100.64.0.7"]}}"#;
        let now = crate::billing::serve::signature::unix(SystemTime::now());
        let client = reqwest::Client::new();
        let send = |header: String| {
            client
                .post(app.url())
                .header(signature::HEADER, header)
                .body(body.to_vec())
                .send()
        };
        let good = signature::sign(&app.endpoint().secrets, now, body);
        assert_eq!(send(good.clone()).await.expect("post").status(), 204);
        assert_eq!(
            send(good).await.expect("post").status(),
            204,
            "a redelivery"
        );
        let forged = signature::sign(&[Secret::new("not-the-secret-at-all".into())], now, body);
        assert_eq!(send(forged).await.expect("post").status(), 401);
        let received = app.received();
        assert_eq!(received.len(), 1, "kept once");
        assert_eq!(
            describe(&received[0]),
            "app received agent.ready a #2: server 7 (? in ?), public 203.0.113.7 / -, tailnet 100.64.0.7 (device -)"
        );
    }
}
