//! The agent API the daemon serves to its VMs over the tailnet (never a public port):
//! `GET /v1/agents/<name>/runtime` (what that agent should run), `POST /v1/agents/<name>/report`
//! (what it runs; a heartbeat) and `POST /v1/agents/<name>/rotate` (a new credential).
//!
//! Every request carries `Authorization: Bearer <credential>`. A missing or unknown credential
//! is 401; a credential of another agent is 403, so a VM can only ever read its own runtime
//! (its env may hold secrets). Credentials are compared in constant time against the kept
//! hashes and never logged; refusals are logged in aggregate ([`super::refusals`]). Start at
//! [`serve`]; [`router`] is the same routes without a socket.
//!
//! A report is bounded ([`super::wire::Report::checked`]: 413 for a body over
//! [`MAX_REPORT_BYTES`], 422 naming the field) and rate-limited per agent ([`super::limit`]:
//! 429 with `Retry-After`).

use super::refusals::{self, Refusal};
use super::wire::{ErrorBody, MAX_REPORT_BYTES, Report, Rotated};
use super::{Service, credential};
use crate::secret::Secret;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderMap, StatusCode, header};
use std::future::Future;
use std::net::SocketAddr;
use std::time::SystemTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The routes, over `service`.
pub fn router(service: Service) -> Router {
    Router::new()
        .route("/v1/agents/{name}/runtime", get(runtime))
        .route(
            "/v1/agents/{name}/report",
            post(report).layer(DefaultBodyLimit::max(MAX_REPORT_BYTES)),
        )
        .route("/v1/agents/{name}/rotate", post(rotate))
        .with_state(service)
}

/// The running API: its address and task.
#[derive(Debug)]
pub struct ApiServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// The server task; ends after `shutdown` resolves.
    pub task: JoinHandle<std::io::Result<()>>,
}

/// Binds `service`'s configured address and serves until `shutdown` resolves.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(
    service: Service,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<ApiServer> {
    let listener = TcpListener::bind(service.config().listen).await?;
    serve_on(listener, service, shutdown)
}

/// Serves `service` on an already bound `listener` until `shutdown` resolves (the daemon binds
/// first, so a port-0 address is known before the service writes it into cloud-init).
///
/// # Errors
/// The listener's address cannot be read.
pub fn serve_on(
    listener: TcpListener,
    service: Service,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<ApiServer> {
    let addr = listener.local_addr()?;
    let app = router(service);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    tracing::info!(%addr, "agent API listening");
    Ok(ApiServer { addr, task })
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorBody { error: message })).into_response()
}

/// Checks the bearer credential against `name`'s kept hash.
fn authorize(
    service: &Service,
    name: &str,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, String)> {
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| Secret::new(v.trim().to_owned()));
    let refused = |refusal| {
        let now = SystemTime::now();
        if let Some(tally) = service.refused(refusal, now) {
            refusals::log(&tally, now);
        }
    };
    let Some(credential) = credential else {
        refused(Refusal::Missing);
        return Err((
            StatusCode::UNAUTHORIZED,
            "no credential: send `Authorization: Bearer <the agent credential cloud-init wrote to /etc/tether/agent-credential>`".to_owned(),
        ));
    };
    if service.authenticates(name, &credential) {
        return Ok(());
    }
    match service.owner_of(&credential) {
        Some(owner) => {
            tracing::debug!(agent = %owner, requested = %name, "agent API: an agent asked for another agent's runtime; refused");
            refused(Refusal::Foreign);
            Err((
                StatusCode::FORBIDDEN,
                format!(
                    "this credential is not agent `{name}`'s; an agent may only read and report its own runtime"
                ),
            ))
        }
        None => {
            tracing::debug!(requested = %name, "agent API: unknown credential; refused");
            refused(Refusal::Unknown);
            Err((
                StatusCode::UNAUTHORIZED,
                format!(
                    "the credential is not valid for agent `{name}`: it was rotated or the server was not created with it; the agent cannot be served until it has the credential tether minted"
                ),
            ))
        }
    }
}

async fn runtime(
    State(service): State<Service>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, message)) = authorize(&service, &name, &headers) {
        return refuse(status, message);
    }
    match service.desired(&name) {
        Some(desired) => Json(desired).into_response(),
        None => refuse(
            StatusCode::NOT_FOUND,
            format!(
                "no runtime to serve agent `{name}` yet: keep running what you run; tether serves one after its next pass"
            ),
        ),
    }
}

async fn report(
    State(service): State<Service>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Report>, JsonRejection>,
) -> Response {
    if let Err((status, message)) = authorize(&service, &name, &headers) {
        return refuse(status, message);
    }
    let now = SystemTime::now();
    if let Err(wait) = service.admit(&name, now) {
        let secs = wait.as_secs_f64().ceil().max(1.0);
        let mut response = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "agent `{name}` reports too often: at most {} at once, then one a second; retry after {secs} s",
                super::limit::BURST
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, http::HeaderValue::from(secs as u64));
        return response;
    }
    let report = match body {
        Ok(Json(report)) => report.checked(),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "a report is at most {MAX_REPORT_BYTES} bytes; send `error` on one line of at most a few hundred characters"
                ),
            );
        }
        Err(rejection) => {
            return refuse(
                rejection.status(),
                format!(
                    "the report is not the expected JSON: {}",
                    super::wire::one_line(&rejection.body_text(), 200)
                ),
            );
        }
    };
    let report = match report {
        Ok(report) => report,
        Err(refused) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, refused.to_string()),
    };
    tracing::debug!(agent = %name, version = report.version.as_deref().unwrap_or("none"), healthy = report.healthy, "agent report");
    service.record(&name, report, now);
    StatusCode::NO_CONTENT.into_response()
}

async fn rotate(
    State(service): State<Service>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, message)) = authorize(&service, &name, &headers) {
        return refuse(status, message);
    }
    let fresh = credential::mint();
    service.rotate(&name, credential::hash(&fresh));
    tracing::info!(agent = %name, "agent credential rotated; the server's tether/agent-key label follows in the next pass");
    Json(Rotated {
        credential: fresh.expose().clone(),
    })
    .into_response()
}
