//! What every emulator shares: an HTTP server on 127.0.0.1 with a free port, fault injection
//! (error statuses, latency, dropped connections, responses lost after the request was applied)
//! and request counters by method, route and outcome.
//!
//! Each emulator supplies an axum `Router` with its API and a function that renders an injected
//! error in that API's own error envelope.

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// Faults for the requests one rule matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultRule {
    /// Only requests with this method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Only requests whose path starts with this (all when empty).
    #[serde(default)]
    pub path_prefix: String,
    /// Probability (0–1) of answering with one of `error_statuses` without applying the request.
    #[serde(default)]
    pub error_rate: f64,
    /// Statuses chosen from for injected errors (default 500, 502, 503, 504).
    #[serde(default = "default_statuses")]
    pub error_statuses: Vec<u16>,
    /// Probability of closing the connection without applying the request.
    #[serde(default)]
    pub drop_rate: f64,
    /// Probability of applying the request and then closing the connection without a response:
    /// the case that turns blind create retries into duplicates.
    #[serde(default)]
    pub lost_response_rate: f64,
    /// Added latency per matching request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
}

fn default_statuses() -> Vec<u16> {
    vec![500, 502, 503, 504]
}

impl FaultRule {
    /// A rule matching every request, with no faults yet.
    pub fn everywhere() -> Self {
        FaultRule {
            method: None,
            path_prefix: String::new(),
            error_rate: 0.0,
            error_statuses: default_statuses(),
            drop_rate: 0.0,
            lost_response_rate: 0.0,
            latency_ms: 0,
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.starts_with(&self.path_prefix)
    }
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Serve,
    Error(StatusCode),
    Drop,
    LoseResponse,
}

/// The fault rules of one emulator; the first matching rule applies. Seeded, so a test run is
/// reproducible.
#[derive(Debug)]
pub struct Faults {
    rules: RwLock<Vec<FaultRule>>,
    rng: Mutex<SmallRng>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults::new(0)
    }
}

impl Faults {
    /// No faults, with a seeded random source.
    pub fn new(seed: u64) -> Self {
        Faults {
            rules: RwLock::new(Vec::new()),
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
        }
    }

    /// Replaces the rules.
    pub fn set(&self, rules: Vec<FaultRule>) {
        *self.rules.write().unwrap_or_else(PoisonError::into_inner) = rules;
    }

    /// The current rules.
    pub fn rules(&self) -> Vec<FaultRule> {
        self.rules
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn decide(&self, method: &str, path: &str) -> (Duration, Fate) {
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        let Some(rule) = rules.iter().find(|r| r.matches(method, path)) else {
            return (Duration::ZERO, Fate::Serve);
        };
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        let latency = Duration::from_millis(rule.latency_ms);
        let roll: f64 = rng.random();
        let fate = if roll < rule.error_rate && !rule.error_statuses.is_empty() {
            let pick = rule.error_statuses[rng.random_range(0..rule.error_statuses.len())];
            Fate::Error(StatusCode::from_u16(pick).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        } else if roll < rule.error_rate + rule.drop_rate {
            Fate::Drop
        } else if roll < rule.error_rate + rule.drop_rate + rule.lost_response_rate {
            Fate::LoseResponse
        } else {
            Fate::Serve
        };
        (latency, fate)
    }
}

/// One counter key: method, route (ids replaced by `{id}`) and outcome (a status code, or
/// `dropped` / `lost` for injected connection faults).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RequestKey {
    /// HTTP method.
    pub method: String,
    /// Path with numeric segments replaced by `{id}`.
    pub route: String,
    /// Status code, `dropped` or `lost`.
    pub outcome: String,
}

/// Request counters of one emulator.
#[derive(Debug, Default)]
pub struct RequestLog {
    counts: Mutex<BTreeMap<RequestKey, u64>>,
}

impl RequestLog {
    fn record(&self, method: &str, path: &str, outcome: String) {
        let key = RequestKey {
            method: method.to_owned(),
            route: route_of(path),
            outcome,
        };
        *self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default() += 1;
    }

    /// Every counter.
    pub fn snapshot(&self) -> BTreeMap<RequestKey, u64> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// All requests seen.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Requests with `method` whose route starts with `route_prefix`.
    pub fn count(&self, method: &str, route_prefix: &str) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(k, _)| k.method == method && k.route.starts_with(route_prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Forgets every counter.
    pub fn reset(&self) {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// `path` with every all-digit segment replaced by `{id}`.
pub fn route_of(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Renders an injected error status in an API's own error envelope.
pub type FaultBody = fn(StatusCode) -> Response;

/// A running emulator: an HTTP/1.1 server on 127.0.0.1. Dropping it stops the server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds 127.0.0.1 on a free port and serves `router` with `faults`, counting into `log`.
    ///
    /// # Errors
    /// The socket cannot be bound.
    pub async fn start(
        router: Router,
        faults: Arc<Faults>,
        log: Arc<RequestLog>,
        fault_body: FaultBody,
    ) -> std::io::Result<Server> {
        Server::start_on(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            router,
            faults,
            log,
            fault_body,
        )
        .await
    }

    /// Like [`Server::start`], on a given address (port 0 picks a free one).
    ///
    /// # Errors
    /// The socket cannot be bound.
    pub async fn start_on(
        addr: SocketAddr,
        router: Router,
        faults: Arc<Faults>,
        log: Arc<RequestLog>,
        fault_body: FaultBody,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(
            listener, router, faults, log, fault_body, stopped,
        ));
        Ok(Server {
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and closes open connections.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Returned by the connection service to make hyper close the connection without a response.
#[derive(Debug)]
struct ConnectionFault;

impl std::fmt::Display for ConnectionFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection fault")
    }
}

impl std::error::Error for ConnectionFault {}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    faults: Arc<Faults>,
    log: Arc<RequestLog>,
    fault_body: FaultBody,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let router = router.clone();
        let faults = faults.clone();
        let log = log.clone();
        let mut stop = stopped.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                handle(req, router.clone(), faults.clone(), log.clone(), fault_body)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
    connections.shutdown().await;
}

async fn handle(
    req: Request<Incoming>,
    router: Router,
    faults: Arc<Faults>,
    log: Arc<RequestLog>,
    fault_body: FaultBody,
) -> Result<Response, ConnectionFault> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let (latency, fate) = faults.decide(&method, &path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fate {
        Fate::Drop => {
            log.record(&method, &path, "dropped".into());
            return Err(ConnectionFault);
        }
        Fate::Error(status) => {
            log.record(&method, &path, status.as_u16().to_string());
            return Ok(fault_body(status));
        }
        Fate::Serve | Fate::LoseResponse => {}
    }
    let response = router
        .oneshot(req.map(Body::new))
        .await
        .unwrap_or_else(|never| match never {});
    if fate == Fate::LoseResponse {
        log.record(&method, &path, "lost".into());
        return Err(ConnectionFault);
    }
    log.record(&method, &path, response.status().as_u16().to_string());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    fn plain(status: StatusCode) -> Response {
        Response::builder()
            .status(status)
            .body(Body::from("injected"))
            .unwrap_or_default()
    }

    #[test]
    fn routes_replace_numeric_ids() {
        assert_eq!(
            route_of("/v1/servers/42/actions/poweron"),
            "/v1/servers/{id}/actions/poweron"
        );
        assert_eq!(route_of("/v1/servers"), "/v1/servers");
    }

    #[tokio::test]
    async fn serves_counts_and_injects_faults() {
        let faults = Arc::new(Faults::new(1));
        let log = Arc::new(RequestLog::default());
        let router = Router::new().route("/ok", get(|| async { "fine" }));
        let server = Server::start(router, faults.clone(), log.clone(), plain)
            .await
            .expect("start");
        let client = reqwest::Client::new();
        let body = client
            .get(format!("{}/ok", server.url()))
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("body");
        assert_eq!(body, "fine");

        faults.set(vec![FaultRule {
            error_rate: 1.0,
            error_statuses: vec![503],
            ..FaultRule::everywhere()
        }]);
        let status = client
            .get(format!("{}/ok", server.url()))
            .send()
            .await
            .expect("send")
            .status();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

        faults.set(vec![FaultRule {
            lost_response_rate: 1.0,
            ..FaultRule::everywhere()
        }]);
        assert!(
            client
                .get(format!("{}/ok", server.url()))
                .send()
                .await
                .is_err()
        );

        faults.set(vec![FaultRule {
            drop_rate: 1.0,
            ..FaultRule::everywhere()
        }]);
        assert!(
            client
                .get(format!("{}/ok", server.url()))
                .send()
                .await
                .is_err()
        );

        let counts: Vec<_> = log
            .snapshot()
            .into_iter()
            .map(|(k, n)| (k.outcome, n))
            .collect();
        assert_eq!(
            counts,
            [
                ("200".to_owned(), 1),
                ("503".to_owned(), 1),
                ("dropped".to_owned(), 1),
                ("lost".to_owned(), 1)
            ]
        );
        server.shutdown().await;
    }
}
