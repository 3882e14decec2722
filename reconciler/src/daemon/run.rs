//! `tether run`: the daemon loop. It serves the HTTP endpoints, takes the single-writer lease
//! (waiting while another process holds it), turns triggers (timer, file changes, webhooks,
//! `POST /reconcile`) into one reconcile pass at a time through provider clients fenced by the
//! lease, and stops cleanly on SIGTERM/SIGINT.
//!
//! # Guarantees
//! - A pass runs to completion however long it takes; only after a shutdown request does it
//!   get a grace period (`shutdownGrace`), during which it starts no new action.
//! - A lost lease stops the pass (no new action; fenced calls refused) and sends the daemon
//!   back to acquiring; it acts again once it holds the lease.
//! - When the loop ends, for whatever reason, the process ends: the endpoints stop with it.

use super::budget::{self, Cadence};
use super::config::{DaemonConfig, FleetSource, TailscaleAuth};
use super::events::{Delivery, Outbox, SharedState};
use super::http::{self, HttpState};
use super::lock::{Lease, LeaseGuard, LockError, LockStore};
use super::metrics::{Metrics, ReconcileOutcome};
use super::notify::{self, Notifier};
use super::pass::{self, Health, Source};
use super::projects;
use super::readiness::Readiness;
use super::trigger::{self, Trigger, TriggerSender};
use super::watch::{self, FleetWatcher};
use super::webhook::Webhook;
use crate::audit::ledgers::LedgerCache;
use crate::cloud::Compute;
use crate::cloud::fence::Fenced;
use crate::cloud::projects::tokens::Registry;
use crate::cloud::retry::{Clock as _, TokioClock};
use crate::cloud::tailscale::Tailnet;
use crate::cloud::{hetzner, tailscale};
use crate::process::shutdown::{self, ShutdownSignal, ShutdownTrigger};
use crate::source::fleets::FleetCache;
use crate::source::remote::{Credentials, RepoCache};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch as tokio_watch;

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
    let compute = hetzner_clients(&config)?;
    tailscale_client(&config)?;

    let (source, lock_store) = open_source(&config, &sender).await?;
    let notifier = Notifier::start(&config, &notify::status_files(&source).await);
    let events = SharedState::default();
    let mut state = HttpState::new(metrics.clone(), readiness.clone(), TokioClock);
    if let Some(secret) = &config.webhook_secret {
        let branch = match &source {
            Source::Remote { branch, .. } => branch.clone(),
            Source::Directory { branch, .. } => branch.clone(),
        };
        state = state.with_webhook(Arc::new(Webhook::new(
            secret.clone(),
            &branch,
            sender.clone(),
        )));
    }
    if let Some(token) = &config.reconcile_token {
        state = state.with_reconcile(token.clone(), sender.clone());
    }
    state = state.with_dashboard(http::dashboard::for_daemon(
        &config,
        &source,
        &lock_store,
        readiness.clone(),
        events.clone(),
    ));
    let server = http::serve(config.listen, state, signal.clone())
        .await
        .map_err(start_err("listening on the HTTP address"))?;
    tracing::info!(url = %server.url(), "endpoints up: / (dashboard) /healthz /readyz /metrics /webhook /reconcile");
    let runtime = match config.agent_api.clone() {
        Some(agent_api) => {
            let signal = signal.clone();
            let stopped = async move {
                signal.requested().await;
            };
            let listen_err = start_err("listening on the agent API address (agentApi.listen)");
            let listener = tokio::net::TcpListener::bind(agent_api.listen)
                .await
                .map_err(&listen_err)?;
            let addr = listener.local_addr().map_err(&listen_err)?;
            let service = crate::runtime::Service::new(agent_api.bound_at(addr));
            crate::runtime::api::serve_on(listener, service.clone(), stopped)
                .map_err(listen_err)?;
            tokio::spawn({
                let (compute, service, fleet) = (
                    compute.compute.clone(),
                    service.clone(),
                    config.fleet.clone(),
                );
                async move { crate::runtime::seed_from_servers(&compute, &service, &fleet).await }
            });
            Some(service)
        }
        None => None,
    };
    if let Some(tx) = started {
        let _ = tx.send(Handles {
            http_url: server.url(),
            trigger: sender.clone(),
        });
    }

    let cadence = Cadence::new(config.rate_budget, config.schedule.every, 0);
    tokio::spawn(budget::run_interval(
        TokioClock,
        config.schedule,
        cadence.subscribe(),
        sender.clone(),
        signal.clone(),
    ));
    tokio::spawn({
        let (signal, readiness) = (signal.clone(), readiness.clone());
        async move {
            signal.requested().await;
            readiness.set_not_ready("shutting down");
        }
    });
    let daemon = Daemon {
        config: &config,
        source: &source,
        store: &lock_store,
        compute: &compute,
        signal: &signal,
        sender: &sender,
        metrics: &metrics,
        readiness: &readiness,
        notifier: &notifier,
        events: &events,
        runtime: runtime.as_ref(),
        cadence: &cadence,
        fleets: &FleetCache::new(),
        ledgers: &LedgerCache::new(),
    };
    daemon.lead(&mut coalescer).await;
    // Whatever ended the loop, the process ends too: never a daemon that answers and does nothing.
    shutdown_trigger.trigger(shutdown::ShutdownReason::Requested);
    let _ = server.stopped().await;
    Ok(())
}

/// What the loop works with.
struct Daemon<'a> {
    config: &'a DaemonConfig,
    source: &'a Source,
    store: &'a LockStore,
    compute: &'a Registry,
    signal: &'a ShutdownSignal,
    sender: &'a TriggerSender,
    metrics: &'a Arc<Metrics>,
    readiness: &'a Readiness,
    notifier: &'a Notifier,
    /// Where event delivery stands, for the dashboard.
    events: &'a SharedState,
    runtime: Option<&'a crate::runtime::Service>,
    cadence: &'a Cadence,
    /// Fleets loaded from git, kept across passes.
    fleets: &'a FleetCache,
    /// The status branch as last read, kept across passes.
    ledgers: &'a LedgerCache,
}

/// Why a stretch of holding the lease ended.
enum Ended {
    /// Shutdown was requested (and the pass in flight, if any, wound down).
    Shutdown,
    /// The lease was lost, for this reason.
    LeaseLost(String),
}

impl Daemon<'_> {
    /// Takes the lease, reconciles while holding it, and takes it again after losing it, until
    /// shutdown.
    async fn lead(&self, coalescer: &mut trigger::Coalescer<TokioClock>) {
        let mut health = Health::new(self.readiness.clone(), self.config.degraded_after);
        let mut api_seen = projects::Seen::new();
        loop {
            let Some(lease) = acquire(self.store, self.config, self.signal, self.readiness).await
            else {
                return;
            };
            let guard = LeaseGuard::start(lease, TokioClock);
            let tailnet = match tailscale_client(self.config) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "cannot build the Tailscale client");
                    return;
                }
            };
            let compute = Fenced::new(self.compute.compute.clone(), guard.fence());
            let tailnet = Fenced::new(tailnet, guard.fence());
            let delivery = self.start_delivery().await;
            self.sender.send(Trigger::Manual);
            let ended = self
                .while_held(
                    &guard,
                    &compute,
                    &tailnet,
                    coalescer,
                    &mut health,
                    &mut api_seen,
                    delivery.as_ref(),
                )
                .await;
            // Only the lease holder delivers events.
            drop(delivery);
            match ended {
                Ended::Shutdown => {
                    self.readiness.set_not_ready("shutting down");
                    match guard.release().await {
                        Ok(()) => tracing::info!("lease released"),
                        Err(e) => {
                            tracing::warn!(error = %e, "could not release the lease; it expires on its own")
                        }
                    }
                    return;
                }
                Ended::LeaseLost(reason) => {
                    self.readiness.set_not_ready(format!(
                        "the single-writer lease was lost ({reason}); waiting to take it again"
                    ));
                    self.metrics.observe_reconcile(
                        ReconcileOutcome::Aborted,
                        Duration::ZERO,
                        SystemTime::now(),
                    );
                    tracing::error!(%reason, "lease lost; not acting until it is held again");
                }
            }
        }
    }

    /// Starts delivering lifecycle events, when an endpoint is configured; a failure to start
    /// is logged and leaves the events on the status branch for the next holder or restart.
    async fn start_delivery(&self) -> Option<Delivery> {
        let endpoint = self.config.events.endpoint.clone()?;
        let (repo, remote) = match self.source {
            Source::Remote { cache, url, .. } => (cache.path().to_owned(), Some(url.clone())),
            Source::Directory { path, .. } => (path.clone(), None),
        };
        let outbox = Outbox {
            endpoint,
            fleet: self.config.fleet.clone(),
            repo,
            status_branch: crate::audit::STATUS_BRANCH.to_owned(),
            remote,
            store: self.store.clone(),
        };
        match Delivery::start(
            outbox,
            TokioClock,
            self.metrics.clone(),
            self.events.clone(),
        )
        .await
        {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::error!(error = %e, "cannot start delivering lifecycle events; they wait on the status branch");
                None
            }
        }
    }

    /// Runs passes on triggers while `guard` holds the lease.
    #[allow(clippy::too_many_arguments)]
    async fn while_held<C: Compute, T: Tailnet>(
        &self,
        guard: &LeaseGuard<TokioClock>,
        compute: &C,
        tailnet: &T,
        coalescer: &mut trigger::Coalescer<TokioClock>,
        health: &mut Health,
        api_seen: &mut projects::Seen,
        delivery: Option<&Delivery>,
    ) -> Ended {
        let mut unrecorded = Vec::new();
        loop {
            let triggers = tokio::select! {
                set = coalescer.next() => set,
                _ = self.signal.requested() => return Ended::Shutdown,
                reason = guard.lost() => return Ended::LeaseLost(reason),
            };
            if self.signal.is_requested() {
                return Ended::Shutdown;
            }
            if let Some(reason) = guard.lost_reason() {
                return Ended::LeaseLost(reason);
            }
            tracing::info!(triggers = %triggers.summary(), "reconciling");
            let started_at = Instant::now();
            let (stop_tx, stop_rx) = tokio_watch::channel(false);
            let stopper = async {
                tokio::select! {
                    _ = self.signal.requested() => {}
                    _ = guard.lost() => {}
                }
                let _ = stop_tx.send(true);
                std::future::pending::<std::convert::Infallible>().await
            };
            let work = async {
                tokio::select! {
                    biased;
                    done = pass::pass(self.config, pass::FleetInput { source: self.source, fleets: self.fleets, ledgers: self.ledgers, unrecorded: &unrecorded }, self.compute, compute, tailnet, self.runtime, stop_rx) => done,
                    never = stopper => match never {},
                }
            };
            let grace = self.config.shutdown_grace;
            let (commit, outcome) = match shutdown::grace_after_shutdown(self.signal, grace, work)
                .await
            {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(error = %e, "the pass did not wind down within the grace period after the shutdown request; it was cut");
                    return Ended::Shutdown;
                }
            };
            if let Some(reason) = guard.lost_reason() {
                tracing::warn!(%reason, "the lease was lost during the pass; actions not started were skipped");
                return Ended::LeaseLost(reason);
            }
            health.record(
                self.metrics,
                commit.as_deref(),
                &outcome,
                started_at.elapsed(),
            );
            self.notifier.observe(commit.as_deref(), &outcome);
            if let Some(delivery) = delivery {
                delivery.wake();
            }
            pass::carry_unrecorded(&mut unrecorded, &outcome);
            projects::after_pass(
                &self.compute.compute.usage(),
                api_seen,
                self.metrics,
                self.cadence,
                &self.config.rate_budget,
                self.config.schedule.every,
            );
        }
    }
}

/// The `HCLOUD_TOKEN` client, and the settings the clients of the fleet's projects share
/// ([`Registry`]).
fn hetzner_clients(config: &DaemonConfig) -> Result<Registry, RunError> {
    let mut hc = hetzner::Config::new(
        config.hetzner_endpoint.clone(),
        config.hetzner_token.clone(),
    );
    hc.action_timeout = config.action_timeout;
    let single =
        hetzner::Client::new(hc.clone()).map_err(start_err("building the Hetzner client"))?;
    Ok(Registry::new(hc, single))
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
) -> Result<(Source, LockStore), RunError> {
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
                store,
            ))
        }
        FleetSource::Directory { path } => {
            let repo = git2::Repository::open(path);
            if let Err(e) = &repo {
                return Err(RunError::Start {
                    what: "the fleet directory",
                    message: format!(
                        "`{}` is not the top of a git repository ({}): the single-writer lease lives in the fleet's repository, and without it two daemons could act at once. Run `git init` there (and commit the fleet), or set `source.remote`",
                        path.display(),
                        e.message()
                    ),
                });
            }
            let watcher = FleetWatcher::start(path, sender.clone(), watch::DEFAULT_DEBOUNCE)
                .map_err(start_err("watching the fleet directory"))?;
            let store = LockStore::Local(path.clone());
            let branch = repo
                .ok()
                .and_then(|r| r.head().ok()?.shorthand().map(str::to_owned))
                .unwrap_or_else(|| "main".to_owned());
            Ok((
                Source::Directory {
                    path: path.clone(),
                    branch,
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
        let mut expires_at = None;
        match attempt {
            Ok(Ok(lease)) => {
                tracing::info!(holder = %config.lock_holder, "single-writer lease acquired");
                return Some(lease);
            }
            Ok(Err(LockError::Held {
                holder,
                expires_at: until,
                ..
            })) => {
                readiness.set_not_ready(format!("standing by: `{holder}` holds the fleet's lease"));
                tracing::warn!(%holder, "another process holds the lease; waiting");
                expires_at = Some(until);
            }
            Ok(Err(e)) => {
                readiness.set_not_ready(format!("cannot take the lease: {e}"));
                tracing::error!(error = %e, hint = e.hint(), "cannot take the lease; retrying");
            }
            Err(e) => tracing::error!(error = %e, "lease task failed; retrying"),
        }
        let wait = standby_wait(
            expires_at,
            TokioClock.now(),
            config.lock_ttl,
            rand::random::<f64>(),
        );
        tokio::select! {
            _ = TokioClock.sleep(wait) => {}
            _ = signal.requested() => return None,
        }
    }
}

/// The least a standby waits between attempts, so a lease that reads as held past its expiry
/// (clock skew) is not retried in a busy loop.
const STANDBY_MIN_WAIT: Duration = Duration::from_millis(50);
/// The most jitter added after a lease's expiry, so standbys of one fleet do not all try at
/// the same instant.
const STANDBY_MAX_JITTER: Duration = Duration::from_secs(1);

/// How long a standby waits before trying the lease again: until the holder's lease expires
/// (`expires_at`, as its record says), plus a jitter of up to a twentieth of the TTL (at most
/// [`STANDBY_MAX_JITTER`]; `jitter` in `[0, 1)`), but never longer than a quarter TTL, so a
/// lease its holder released is taken soon. So a killed holder's lease is taken over within
/// the TTL of its last renewal plus the jitter.
fn standby_wait(
    expires_at: Option<SystemTime>,
    now: SystemTime,
    ttl: Duration,
    jitter: f64,
) -> Duration {
    let poll = ttl / 4;
    let Some(expires_at) = expires_at else {
        return poll.max(STANDBY_MIN_WAIT);
    };
    let jitter = (ttl / 20)
        .min(STANDBY_MAX_JITTER)
        .mul_f64(jitter.clamp(0.0, 1.0));
    let until = expires_at.duration_since(now).unwrap_or_default() + jitter;
    until.min(poll).max(STANDBY_MIN_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_tries_again_right_after_the_lease_expires_and_at_least_every_quarter_ttl() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let ttl = Duration::from_secs(120);
        let wait = |expires_in: u64, jitter: f64| {
            standby_wait(
                Some(now + Duration::from_secs(expires_in)),
                now,
                ttl,
                jitter,
            )
        };
        assert_eq!(wait(10, 0.0), Duration::from_secs(10));
        assert_eq!(wait(10, 0.5), Duration::from_millis(10_500));
        assert_eq!(wait(10, 1.0), Duration::from_secs(11), "jitter at most 1 s");
        assert_eq!(wait(100, 0.0), Duration::from_secs(30), "a quarter TTL");
        assert_eq!(
            standby_wait(Some(now - Duration::from_secs(5)), now, ttl, 0.0),
            STANDBY_MIN_WAIT,
            "an expired lease that still reads as held is retried, not spun on"
        );
        assert_eq!(standby_wait(None, now, ttl, 0.0), Duration::from_secs(30));
        let short = Duration::from_secs(2);
        assert_eq!(
            standby_wait(Some(now + Duration::from_secs(1)), now, short, 1.0),
            Duration::from_millis(500),
            "a quarter of a short TTL"
        );
    }
}
