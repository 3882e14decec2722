//! The daemon's HTTP endpoints: `/healthz` (the process answers), `/readyz` (the last pass
//! succeeded; 503 with the reason while waiting for the first pass or for the lease, and when
//! degraded after repeated failures), `/metrics` (Prometheus text) and, when configured,
//! `/webhook` ([`super::webhook`]) and `POST /reconcile` (a bearer token; asks for a pass now),
//! and the read-only [`dashboard`] (`/`, `/agents/<name>`, `/api/status`).
//! Start at [`serve`]; [`router`] is the same routes without a socket.

pub mod dashboard;

use crate::cloud::retry::Clock;
use crate::daemon::metrics::Metrics;
use crate::daemon::readiness::Readiness;
use crate::daemon::trigger::{Trigger, TriggerSender};
use crate::daemon::webhook::Webhook;
use crate::process::metrics::CONTENT_TYPE;
use crate::process::shutdown::ShutdownSignal;
use crate::secret::Secret;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderMap, StatusCode, header};
use serde_json::json;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the endpoints read: metrics, readiness, the optional webhook and the clock.
#[derive(Clone)]
pub struct HttpState {
    metrics: Arc<Metrics>,
    readiness: Readiness,
    webhook: Option<Arc<Webhook>>,
    reconcile: Option<(Secret<String>, TriggerSender)>,
    dashboard: Option<Arc<dashboard::Dashboard>>,
    now: Arc<dyn Fn() -> SystemTime + Send + Sync>,
}

impl fmt::Debug for HttpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpState")
            .field("readiness", &self.readiness)
            .field("webhook", &self.webhook.is_some())
            .field("reconcile", &self.reconcile.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpState {
    /// Endpoints over `metrics` and `readiness`, rendering metrics at `clock`'s time, without
    /// a webhook.
    pub fn new(
        metrics: Arc<Metrics>,
        readiness: Readiness,
        clock: impl Clock + 'static,
    ) -> HttpState {
        HttpState {
            metrics,
            readiness,
            webhook: None,
            reconcile: None,
            dashboard: None,
            now: Arc::new(move || clock.now()),
        }
    }

    /// Adds `POST /webhook`.
    pub fn with_webhook(mut self, webhook: Arc<Webhook>) -> HttpState {
        self.webhook = Some(webhook);
        self
    }

    /// Adds the dashboard.
    pub fn with_dashboard(mut self, dashboard: dashboard::Dashboard) -> HttpState {
        self.dashboard = Some(Arc::new(dashboard));
        self
    }

    /// Adds `POST /reconcile`, which requires `Authorization: Bearer <token>` and sends a
    /// manual trigger to `sender`.
    pub fn with_reconcile(mut self, token: Secret<String>, sender: TriggerSender) -> HttpState {
        self.reconcile = Some((token, sender));
        self
    }
}

/// The routes, ready to serve.
pub fn router(state: HttpState) -> Router {
    let webhook = state.webhook.clone();
    let dashboard = state.dashboard.clone();
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/reconcile", post(reconcile))
        .with_state(state);
    let routes = match webhook {
        Some(webhook) => routes.merge(webhook.router()),
        None => routes,
    };
    match dashboard {
        Some(dashboard) => routes.merge(dashboard.router()),
        None => routes,
    }
}

async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

async fn readyz(State(state): State<HttpState>) -> Response {
    match state.readiness.check() {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err((status, reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": status, "reason": reason})),
        )
            .into_response(),
    }
}

async fn reconcile(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let Some((token, sender)) = &state.reconcile else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "POST /reconcile is off: set TETHER_RECONCILE_TOKEN (or reconcile.tokenFile) to enable it"})),
        )
            .into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": "a valid `Authorization: Bearer <token>` header is required"})),
        )
            .into_response();
    }
    sender.send(Trigger::Manual);
    tracing::info!("reconcile requested over HTTP");
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "accepted", "message": "a pass starts as soon as the current one, if any, finishes"})),
    )
        .into_response()
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let text = state.metrics.render((state.now)());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// A running HTTP server. Dropping it stops it at once; [`HttpServer::stopped`] waits for the
/// graceful stop that follows a shutdown request.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Binds `addr` (port 0 picks a free one) and serves [`router`] until `shutdown` is
/// requested; then it stops accepting and lets requests in flight finish.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    state: HttpState,
    shutdown: ShutdownSignal,
) -> std::io::Result<HttpServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.requested().await;
            })
            .await
    });
    tracing::info!(%addr, "http endpoints listening");
    Ok(HttpServer {
        addr,
        task: Some(task),
    })
}

impl HttpServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until the server has stopped (after a shutdown request).
    ///
    /// # Errors
    /// The server failed, or its task panicked.
    pub async fn stopped(mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests;
