//! `tether run`: the daemon loop. It holds the single-writer lease, serves the HTTP endpoints,
//! turns triggers (timer, file changes, webhooks) into one reconcile pass at a time, records
//! metrics and readiness, and stops cleanly on SIGTERM/SIGINT.

use super::config::{DaemonConfig, FleetSource, TailscaleAuth};
use super::http::{self, HttpState, Readiness};
use super::lock::{Lease, LockError, LockStore};
use super::metrics::{Metrics, ReconcileOutcome};
use super::shutdown::{self, ShutdownSignal, ShutdownTrigger};
use super::trigger::{self, Trigger, TriggerSender, run_interval};
use super::watch::{self, FleetWatcher};
use super::webhook::Webhook;
use crate::apply::{Options, Outcome};
use crate::audit::{STATUS_BRANCH, commit::Identity};
use crate::cloud::retry::TokioClock;
use crate::cloud::{hetzner, tailscale};
use crate::plan::Note;
use crate::reconcile::{self, PassError, PassOptions, StatusTarget};
use crate::source::remote::{Credentials, RepoCache};
use crate::source::{self, Snapshot};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch as tokio_watch;

/// How long an in-flight pass may take to wind down after a shutdown request.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Something needed at start failed.
    #[error("tether run: {what}: {message}")]
    Start {
        /// What was being set up.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
}

fn start_err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> RunError {
    move |e| RunError::Start {
        what,
        message: e.to_string(),
    }
}

/// Where the fleet comes from, resolved.
enum Source {
    Remote {
        cache: RepoCache,
        branch: String,
        url: String,
    },
    Directory {
        path: PathBuf,
        /// The checked-out branch, when the folder is a git work tree: status commits then go
        /// to the repository's own status branch.
        git_branch: Option<String>,
        _watcher: FleetWatcher,
    },
}

/// The running daemon's handles, for tests and the sandbox.
#[derive(Debug, Clone)]
pub struct Handles {
    /// The HTTP endpoints' base URL.
    pub http_url: String,
    /// Request a reconcile.
    pub trigger: TriggerSender,
}

/// Runs the daemon until `shutdown` is requested. `started` receives the handles once the
/// endpoints serve.
///
/// # Errors
/// The configuration's source, clients, lease store or listen address cannot be set up.
pub async fn run(
    config: DaemonConfig,
    shutdown_trigger: ShutdownTrigger,
    started: Option<tokio::sync::oneshot::Sender<Handles>>,
) -> Result<(), RunError> {
    let signal = shutdown_trigger.signal();
    let metrics = Arc::new(Metrics::new(SystemTime::now()));
    let readiness = Readiness::default();
    let (sender, mut coalescer) = trigger::coalescer(TokioClock, trigger::DEFAULT_SETTLE);
    let compute = hetzner_client(&config)?;
    let tailnet = tailscale_client(&config)?;

    let (source, lock_store) = open_source(&config, &sender).await?;
    let mut state = HttpState::new(metrics.clone(), readiness.clone(), TokioClock);
    if let Some(secret) = &config.webhook_secret {
        let branch = match &source {
            Source::Remote { branch, .. } => branch.clone(),
            Source::Directory { .. } => "main".to_owned(),
        };
        state = state.with_webhook(Arc::new(Webhook::new(
            secret.clone(),
            &branch,
            sender.clone(),
        )));
    }
    let server = http::serve(config.listen, state, signal.clone())
        .await
        .map_err(start_err("listening on the HTTP address"))?;
    tracing::info!(url = %server.url(), "endpoints up: /healthz /readyz /metrics /webhook");
    if let Some(tx) = started {
        let _ = tx.send(Handles {
            http_url: server.url(),
            trigger: sender.clone(),
        });
    }

    let lease = match lock_store {
        Some(store) => match acquire(&store, &config, &signal, &readiness).await {
            Some(lease) => Some((store, Arc::new(Mutex::new(lease)))),
            None => return finish(server, None).await,
        },
        None => None,
    };
    tokio::spawn(run_interval(
        TokioClock,
        config.schedule,
        sender.clone(),
        signal.clone(),
    ));
    sender.send(Trigger::Manual);

    let (stop_tx, stop_rx) = tokio_watch::channel(false);
    let stop_signal = signal.clone();
    tokio::spawn(async move {
        stop_signal.requested().await;
        let _ = stop_tx.send(true);
    });
    let mut api_seen = std::collections::BTreeMap::new();
    loop {
        let triggers = tokio::select! {
            set = coalescer.next() => set,
            _ = signal.requested() => break,
        };
        if signal.is_requested() {
            break;
        }
        if let Some((_, lease)) = &lease
            && let Err(e) = renew(lease).await
        {
            readiness.set_not_ready(format!("the single-writer lease was lost: {e}"));
            metrics.observe_reconcile(ReconcileOutcome::Aborted, Duration::ZERO, SystemTime::now());
            tracing::error!(error = %e, "lease lost; not acting until it is held again");
            continue;
        }
        tracing::info!(triggers = %triggers.summary(), "reconciling");
        let started_at = Instant::now();
        let pass = pass(&config, &source, &compute, &tailnet, stop_rx.clone());
        let outcome = match shutdown::within_grace(SHUTDOWN_GRACE, pass).await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::error!("the pass did not wind down within the grace period");
                break;
            }
        };
        record(&metrics, &readiness, &outcome, started_at.elapsed());
        for (status, n) in compute.request_counts() {
            let before = api_seen.insert(status, n).unwrap_or(0);
            for _ in before..n {
                metrics.count_api_request("hetzner", status);
            }
        }
        metrics.set_rate_limit_remaining("hetzner", u64::from(compute.rate_limit_remaining()));
    }
    finish(server, lease.map(|(_, l)| l)).await
}

async fn finish(
    server: http::HttpServer,
    lease: Option<Arc<Mutex<Lease<TokioClock>>>>,
) -> Result<(), RunError> {
    if let Some(lease) = lease {
        let released = tokio::task::spawn_blocking(move || match Arc::try_unwrap(lease) {
            Ok(lease) => lease
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .release()
                .map_err(|e| e.to_string()),
            Err(_) => Err("the lease is still in use".to_owned()),
        })
        .await;
        match released {
            Ok(Ok(())) => tracing::info!("lease released"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not release the lease; it expires on its own")
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not release the lease; it expires on its own")
            }
        }
    }
    let _ = server.stopped().await;
    Ok(())
}

fn hetzner_client(config: &DaemonConfig) -> Result<hetzner::Client, RunError> {
    let hc = hetzner::Config::new(
        config.hetzner_endpoint.clone(),
        config.hetzner_token.clone(),
    );
    hetzner::Client::new(hc).map_err(start_err("building the Hetzner client"))
}

fn tailscale_client(config: &DaemonConfig) -> Result<tailscale::Client, RunError> {
    let credentials = match &config.tailscale_auth {
        TailscaleAuth::ApiKey(key) => tailscale::Credentials::ApiKey(key.clone()),
        TailscaleAuth::OAuth {
            client_id,
            client_secret,
        } => tailscale::Credentials::OAuth {
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
        },
    };
    let mut tc = tailscale::Config::new(credentials);
    tc.api_url = config
        .tailscale_endpoint
        .trim_end_matches('/')
        .trim_end_matches("/api/v2")
        .to_owned();
    tailscale::Client::new(tc).map_err(start_err("building the Tailscale client"))
}

async fn open_source(
    config: &DaemonConfig,
    sender: &TriggerSender,
) -> Result<(Source, Option<LockStore>), RunError> {
    match &config.source {
        FleetSource::Remote {
            url,
            branch,
            cache_dir,
        } => {
            let credentials = config
                .github_token
                .clone()
                .map_or(Credentials::None, Credentials::Token);
            let (cache_dir, url_owned) = (cache_dir.clone(), url.clone());
            let cache = tokio::task::spawn_blocking(move || {
                RepoCache::open(&cache_dir, &url_owned, credentials)
            })
            .await
            .map_err(start_err("opening the fleet cache"))?
            .map_err(start_err("opening the fleet cache"))?;
            let store = LockStore::for_cache(&cache);
            Ok((
                Source::Remote {
                    cache,
                    branch: branch.clone(),
                    url: url.clone(),
                },
                Some(store),
            ))
        }
        FleetSource::Directory { path } => {
            let watcher = FleetWatcher::start(path, sender.clone(), watch::DEFAULT_DEBOUNCE)
                .map_err(start_err("watching the fleet directory"))?;
            let git_branch = git2::Repository::open(path).ok().map(|repo| {
                repo.head()
                    .ok()
                    .and_then(|h| h.shorthand().map(str::to_owned))
                    .unwrap_or_else(|| "main".to_owned())
            });
            let store = git_branch.as_ref().map(|_| LockStore::Local(path.clone()));
            Ok((
                Source::Directory {
                    path: path.clone(),
                    git_branch,
                    _watcher: watcher,
                },
                store,
            ))
        }
    }
}

/// Takes the lease, waiting while another daemon holds it; `None` when shutdown came first.
async fn acquire(
    store: &LockStore,
    config: &DaemonConfig,
    signal: &ShutdownSignal,
    readiness: &Readiness,
) -> Option<Lease<TokioClock>> {
    loop {
        let (store, fleet, holder, ttl) = (
            store.clone(),
            config.fleet.clone(),
            config.lock_holder.clone(),
            config.lock_ttl,
        );
        let attempt = tokio::task::spawn_blocking(move || {
            Lease::acquire(&store, &fleet, &holder, ttl, TokioClock)
        })
        .await;
        match attempt {
            Ok(Ok(lease)) => {
                tracing::info!(holder = %config.lock_holder, "single-writer lease acquired");
                return Some(lease);
            }
            Ok(Err(LockError::Held { holder, .. })) => {
                readiness
                    .set_not_ready(format!("another daemon ({holder}) holds the fleet's lease"));
                tracing::warn!(%holder, "another daemon holds the lease; waiting");
            }
            Ok(Err(e)) => {
                readiness.set_not_ready(format!("cannot take the lease: {e}"));
                tracing::error!(error = %e, hint = e.hint(), "cannot take the lease; retrying");
            }
            Err(e) => tracing::error!(error = %e, "lease task failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.lock_ttl / 4) => {}
            _ = signal.requested() => return None,
        }
    }
}

async fn renew(lease: &Arc<Mutex<Lease<TokioClock>>>) -> Result<(), String> {
    let lease = lease.clone();
    tokio::task::spawn_blocking(move || {
        let mut lease = lease.lock().unwrap_or_else(PoisonError::into_inner);
        lease.renew().map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// One pass: read the fleet (fetching a remote first), then plan, apply and record.
async fn pass(
    config: &DaemonConfig,
    source: &Source,
    compute: &hetzner::Client,
    tailnet: &tailscale::Client,
    stop: tokio_watch::Receiver<bool>,
) -> Result<reconcile::PassOutcome, PassError> {
    let snapshot = match read(source).await {
        Ok(s) => s,
        Err(message) => {
            let diagnostic =
                tether_schema::Diagnostic::new("", None, tether_schema::Code::Unreadable, message);
            return Err(PassError::Load(tether_schema::LoadError {
                diagnostics: vec![diagnostic],
            }));
        }
    };
    let identity = Identity {
        name: "tether".into(),
        email: format!("tether@{}", config.fleet),
    };
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let run = format!(
        "{}-{}",
        config.lock_holder,
        time::OffsetDateTime::now_utc().unix_timestamp()
    );
    let status = match source {
        Source::Remote { cache, branch, url } => Some(StatusTarget {
            repo: cache.path(),
            remote: Some(url.as_str()),
            branch: STATUS_BRANCH,
            source_branch: branch,
            identity: &identity,
        }),
        Source::Directory {
            path,
            git_branch: Some(branch),
            ..
        } => Some(StatusTarget {
            repo: path,
            remote: None,
            branch: STATUS_BRANCH,
            source_branch: branch,
            identity: &identity,
        }),
        Source::Directory { .. } => None,
    };
    let options = PassOptions {
        expect_plan_hash: None,
        allow_shrink: false,
        apply: Options {
            concurrency: config.concurrency,
            ..Options::default()
        },
        status,
        run: &run,
        now: &now,
    };
    reconcile::run(&snapshot, compute, tailnet, &options, stop).await
}

async fn read(source: &Source) -> Result<Snapshot, String> {
    match source {
        Source::Remote { cache, branch, .. } => {
            let (cache, branch) = (cache.clone(), branch.clone());
            tokio::task::spawn_blocking(move || {
                let commit = cache.fetch(&branch).map_err(|e| e.to_string())?;
                source::git::read(cache.path(), &commit).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
        }
        Source::Directory { path, .. } => source::dir::read(path).map_err(|e| e.to_string()),
    }
}

fn record(
    metrics: &Metrics,
    readiness: &Readiness,
    outcome: &Result<reconcile::PassOutcome, PassError>,
    took: Duration,
) {
    let now = SystemTime::now();
    match outcome {
        Ok(o) => {
            for a in &o.report.actions {
                let result = match a.outcome {
                    Outcome::Done => "done",
                    Outcome::Failed { .. } => "failed",
                    Outcome::Skipped { .. } => "skipped",
                };
                metrics.count_action(a.kind, result);
            }
            let unhealthy = o
                .plan
                .notes
                .iter()
                .filter(|n| matches!(n, Note::Unhealthy { .. }))
                .count() as u64;
            let agents = o.fleet.agents.len() as u64;
            metrics.set_agents(&[
                ("healthy", agents.saturating_sub(unhealthy)),
                ("unhealthy", unhealthy),
            ]);
            let ok = o.report.succeeded();
            metrics.observe_reconcile(
                if ok {
                    ReconcileOutcome::Success
                } else {
                    ReconcileOutcome::Failure
                },
                took,
                now,
            );
            if ok {
                readiness.set_ready();
            }
            tracing::info!(done = o.report.counts().0, failed = o.report.counts().1, status_commit = ?o.status_commit, "reconcile finished");
        }
        Err(e) => {
            metrics.observe_reconcile(ReconcileOutcome::Failure, took, now);
            tracing::error!(error = %e, "reconcile failed");
        }
    }
}
