//! Delivery of the agents' lifecycle events ([`crate::events`]) to the app endpoint of the
//! `events` configuration, by the lease holder only. Start at [`Delivery::start`], called each
//! time the daemon takes the lease; [`Delivery::wake`] after each pass; dropping the
//! [`Delivery`] (the lease lost, shutdown) stops it.
//!
//! - [`cursor`]: the endpoint's delivery cursor, a compare-and-swapped git ref;
//! - [`post`]: one signed attempt and the backoff between attempts.
//!
//! # Guarantees
//! - The outbox is the status branch: an event exists once its status commit does, so a kill
//!   between the commit and the delivery loses nothing; the next holder derives the same event
//!   with the same id and delivers it.
//! - At least once, in status-branch order (so in each agent's `sequence` order): the cursor
//!   moves past an event only after a 2xx for it, or after `events.giveUpAfter` of failures,
//!   when it becomes a dead letter kept in the cursor. A kill after the 2xx and before the
//!   cursor write delivers that event again, with the same id.
//! - Only the lease holder moves the cursor: every write is a compare-and-swap, and a holder
//!   whose write loses stops delivering.
//! - Nothing logged or kept names the endpoint's URL or a secret.
//!
//! # Assumptions
//! - Nothing but tether writes `refs/tether/events/*`.
//! - The status branch is never rewritten; if it is, the cursor's event may be missing, and
//!   delivery waits (logged) instead of guessing where to go on.

pub mod cursor;
pub mod post;

use crate::cloud::retry::Clock;
use crate::daemon::config::EventsEndpoint;
use crate::daemon::lock::LockStore;
use crate::daemon::metrics::Metrics;
use crate::events::LifecycleEvent;
use crate::events::derive::Deriver;
use cursor::{Cursor, CursorRef, DEAD_LETTERS_KEPT, DeadLetter};
use git2::{Oid, Repository};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

/// How often delivery looks at the status branch without being woken.
pub const POLL: Duration = Duration::from_secs(30);

/// Where one endpoint's delivery stands, for the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointState {
    /// The endpoint's name.
    pub name: String,
    /// Events delivered through its cursor.
    pub delivered: u64,
    /// Events derived and not delivered yet.
    pub pending: usize,
    /// Seconds since the oldest pending event's status commit (0 when none is pending).
    pub lag_seconds: i64,
    /// Attempts at the next event that failed in a row.
    pub attempts: u32,
    /// The last failure, while the next event keeps failing.
    pub last_error: Option<String>,
    /// Dead letters kept in the cursor.
    pub dead: Vec<DeadLetter>,
}

impl EndpointState {
    /// One line for the dashboard: `app: 12 delivered, 1 pending (oldest 4 s), 0 dead letter(s)`
    /// and, while the next event fails, why.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{}: {} delivered, {} pending (oldest {} s), {} dead letter(s)",
            self.name,
            self.delivered,
            self.pending,
            self.lag_seconds,
            self.dead.len()
        );
        if let Some(e) = &self.last_error {
            line.push_str(&format!("; failing ({} attempt(s)): {e}", self.attempts));
        }
        line
    }
}

/// Shared between the delivery task and the dashboard.
pub type SharedState = Arc<Mutex<Option<EndpointState>>>;

/// Everything delivery reads from and writes to.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// The endpoint.
    pub endpoint: EventsEndpoint,
    /// The fleet, which names the cursor.
    pub fleet: String,
    /// The repository whose status branch is the outbox (the source's cache or directory).
    pub repo: PathBuf,
    /// The status branch.
    pub status_branch: String,
    /// The remote the status branch is fetched from before the cursor is first created (the
    /// source's URL), so a new endpoint starts at the remote's tip, not at a stale copy's.
    pub remote: Option<String>,
    /// Where the cursor lives (the lease's repository).
    pub store: LockStore,
}

/// A running delivery task; dropping it stops the task.
#[derive(Debug)]
pub struct Delivery {
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why delivery could not start.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The cursor could not be read or created.
    #[error(transparent)]
    Cursor(#[from] cursor::CursorError),
    /// The status branch could not be read.
    #[error("cannot read the status branch {branch} in {repo}: {message}")]
    Status {
        /// The branch.
        branch: String,
        /// The repository.
        repo: String,
        /// What git said.
        message: String,
    },
}

impl Delivery {
    /// Reads the endpoint's cursor (creating it at the status branch's tip the first time, so
    /// a new endpoint gets what happens from now on, and a fleet with no status branch yet gets
    /// everything), then delivers in the background.
    ///
    /// # Errors
    /// The cursor or the status branch cannot be read.
    pub async fn start<C: Clock + Clone + 'static>(
        outbox: Outbox,
        clock: C,
        metrics: Arc<Metrics>,
        state: SharedState,
    ) -> Result<Delivery, DeliveryError> {
        let cursor_ref = CursorRef::new(outbox.store.clone(), &outbox.fleet, &outbox.endpoint.name);
        let opened = {
            let (copy, cursor_ref) = (outbox.clone(), cursor_ref.clone());
            let now = clock.now();
            tokio::task::spawn_blocking(move || open(&copy, &cursor_ref, now))
                .await
                .map_err(|e| DeliveryError::Status {
                    branch: outbox.status_branch.clone(),
                    repo: outbox.repo.display().to_string(),
                    message: e.to_string(),
                })??
        };
        let wake = Arc::new(Notify::new());
        let worker = Worker {
            outbox,
            cursor_ref,
            at: opened.0,
            cursor: opened.1,
            deriver: Deriver::new(),
            events: Vec::new(),
            client: reqwest::Client::new(),
            clock,
            metrics,
            state,
            wake: wake.clone(),
        };
        let task = tokio::spawn(worker.run());
        Ok(Delivery { wake, task })
    }

    /// Looks at the status branch now (after a pass).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The cursor, created at the status branch's last event when it does not exist yet.
fn open(
    outbox: &Outbox,
    cursor_ref: &CursorRef,
    now: SystemTime,
) -> Result<(Option<Oid>, Cursor), DeliveryError> {
    if let Some((at, cursor)) = cursor_ref.read()? {
        return Ok((Some(at), cursor));
    }
    let status = |e: git2::Error| DeliveryError::Status {
        branch: outbox.status_branch.clone(),
        repo: outbox.repo.display().to_string(),
        message: e.message().to_owned(),
    };
    let repo = Repository::open(&outbox.repo).map_err(status)?;
    if let Some(remote) = &outbox.remote {
        crate::source::publish::fetch_branch(&repo, remote, &outbox.status_branch)
            .map_err(status)?;
    }
    let mut cursor = Cursor::default();
    if let Ok(tip) = repo.refname_to_id(&format!("refs/heads/{}", outbox.status_branch)) {
        let last = Deriver::new().advance(&repo, tip).map_err(status)?.pop();
        if let Some(last) = last {
            cursor.after = Some(last.id);
            cursor.after_commit = Some(last.status_commit);
        }
    }
    match cursor_ref.swap(None, &cursor, now)? {
        Some(at) => {
            tracing::info!(endpoint = %outbox.endpoint.name, cursor = cursor_ref.name(), "events cursor created at the status branch's tip");
            Ok((Some(at), cursor))
        }
        None => Ok(cursor_ref
            .read()?
            .map_or((None, Cursor::default()), |(at, c)| (Some(at), c))),
    }
}

struct Worker<C> {
    outbox: Outbox,
    cursor_ref: CursorRef,
    at: Option<Oid>,
    cursor: Cursor,
    deriver: Deriver,
    /// Every event derived so far, oldest first.
    events: Vec<LifecycleEvent>,
    client: reqwest::Client,
    clock: C,
    metrics: Arc<Metrics>,
    state: SharedState,
    wake: Arc<Notify>,
}

/// What one attempt at the next event led to.
enum Step {
    /// Nothing is pending.
    Idle,
    /// The cursor moved past the event (delivered or dead).
    Moved,
    /// The attempt failed; wait this long before the next.
    Retry(Duration),
    /// Another daemon moved the cursor: this one no longer holds the lease.
    Lost,
}

impl<C: Clock> Worker<C> {
    async fn run(mut self) {
        let name = self.outbox.endpoint.name.clone();
        loop {
            self.refresh().await;
            let step = loop {
                let step = self.step().await;
                self.publish();
                if !matches!(step, Step::Moved) {
                    break step;
                }
            };
            match step {
                // A retry waits its backoff out, passes or not: the endpoint is failing.
                Step::Retry(wait) => self.clock.sleep(wait).await,
                Step::Lost => {
                    tracing::warn!(endpoint = %name, "another daemon moved the events cursor; this one stops delivering");
                    return;
                }
                Step::Idle | Step::Moved => {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = self.clock.sleep(POLL) => {}
                    }
                }
            }
        }
    }

    /// Derives the events of status commits not seen yet.
    async fn refresh(&mut self) {
        let (repo, branch) = (
            self.outbox.repo.clone(),
            format!("refs/heads/{}", self.outbox.status_branch),
        );
        let mut deriver = std::mem::take(&mut self.deriver);
        let derived = tokio::task::spawn_blocking(move || {
            let repo = Repository::open(&repo)?;
            let new = match repo.refname_to_id(&branch) {
                Ok(tip) => deriver.advance(&repo, tip)?,
                Err(_) => Vec::new(),
            };
            Ok::<_, git2::Error>((deriver, new))
        })
        .await;
        match derived {
            Ok(Ok((deriver, new))) => {
                if deriver.restarted() {
                    self.events = new;
                } else {
                    self.events.extend(new);
                }
                self.deriver = deriver;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e.message(), "cannot read the status branch for events; trying again later");
            }
            Err(e) => tracing::warn!(error = %e, "reading the status branch for events failed"),
        }
    }

    /// The index of the next event to deliver; `None` when the cursor's event is not on the
    /// status branch as read (a lagging copy: wait for the next pass to bring it in).
    fn next(&self) -> Option<usize> {
        match &self.cursor.after {
            None => Some(0),
            Some(id) => self.events.iter().rposition(|e| &e.id == id).map(|i| i + 1),
        }
    }

    async fn step(&mut self) -> Step {
        let Some(next) = self.next() else {
            if !self.events.is_empty() {
                tracing::warn!(after = ?self.cursor.after, "the events cursor names an event not on the status branch as read; waiting for the next pass");
            }
            return Step::Idle;
        };
        let Some(event) = self.events.get(next).cloned() else {
            return Step::Idle;
        };
        let now = self.clock.now();
        let timestamp = crate::billing::serve::signature::unix(now);
        let endpoint = &self.outbox.endpoint;
        let name = endpoint.name.clone();
        match post::post(&self.client, endpoint, &event, timestamp).await {
            Ok(()) => {
                self.metrics.count_event_delivery(&name, "delivered");
                tracing::info!(endpoint = %name, event = %event.id, kind = event.kind.as_str(), agent = %event.agent, sequence = event.sequence, attempts = self.cursor.attempts + 1, "event delivered");
                self.cursor.delivered += 1;
                self.pass(&event);
                self.write().await
            }
            Err(e) => {
                self.metrics.count_event_delivery(&name, "failed");
                self.cursor.attempts += 1;
                self.cursor.last_error = Some(e.to_string());
                let since = *self.cursor.failing_since.get_or_insert(timestamp);
                let failing = Duration::from_secs(u64::try_from(timestamp - since).unwrap_or(0));
                if failing >= endpoint.give_up_after {
                    self.metrics.count_event_delivery(&name, "dead");
                    tracing::error!(endpoint = %name, event = %event.id, kind = event.kind.as_str(), agent = %event.agent, attempts = self.cursor.attempts, error = %e, "event given up on after retrying for events.giveUpAfter: a dead letter");
                    self.cursor.dead.push(DeadLetter {
                        id: event.id.clone(),
                        kind: event.kind.as_str().to_owned(),
                        agent: event.agent.clone(),
                        attempts: self.cursor.attempts,
                        last_error: e.to_string(),
                        dead_at: timestamp,
                    });
                    let excess = self.cursor.dead.len().saturating_sub(DEAD_LETTERS_KEPT);
                    self.cursor.dead.drain(..excess);
                    self.pass(&event);
                    return self.write().await;
                }
                let wait = post::backoff(
                    self.cursor.attempts,
                    endpoint.retry_first,
                    endpoint.retry_max,
                );
                tracing::warn!(endpoint = %name, event = %event.id, attempts = self.cursor.attempts, error = %e, retry_in = ?wait, "event not delivered; retrying");
                if self.cursor.attempts == 1 {
                    // Record when it started failing, so the give-up clock survives a restart.
                    if let Step::Lost = self.write().await {
                        return Step::Lost;
                    }
                }
                Step::Retry(wait)
            }
        }
    }

    /// Moves the cursor past `event`.
    fn pass(&mut self, event: &LifecycleEvent) {
        self.cursor.after = Some(event.id.clone());
        self.cursor.after_commit = Some(event.status_commit.clone());
        self.cursor.attempts = 0;
        self.cursor.failing_since = None;
        self.cursor.last_error = None;
    }

    /// Writes the cursor over the value last read or written.
    async fn write(&mut self) -> Step {
        let (cursor_ref, at, cursor, now) = (
            self.cursor_ref.clone(),
            self.at,
            self.cursor.clone(),
            self.clock.now(),
        );
        let written = tokio::task::spawn_blocking(move || cursor_ref.swap(at, &cursor, now)).await;
        match written {
            Ok(Ok(Some(at))) => {
                self.at = Some(at);
                Step::Moved
            }
            Ok(Ok(None)) => Step::Lost,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot write the events cursor; the event may be delivered again");
                Step::Retry(self.outbox.endpoint.retry_first)
            }
            Err(e) => {
                tracing::warn!(error = %e, "writing the events cursor failed; the event may be delivered again");
                Step::Retry(self.outbox.endpoint.retry_first)
            }
        }
    }

    /// Shares where delivery stands with the dashboard and `/metrics`.
    fn publish(&self) {
        let next = self.next().unwrap_or(self.events.len());
        let pending = self.events.len().saturating_sub(next);
        let now = crate::billing::serve::signature::unix(self.clock.now());
        let lag_seconds = self
            .events
            .get(next)
            .map_or(0, |e| now.saturating_sub(e.time).max(0));
        let state = EndpointState {
            name: self.outbox.endpoint.name.clone(),
            delivered: self.cursor.delivered,
            pending,
            lag_seconds,
            attempts: self.cursor.attempts,
            last_error: self.cursor.last_error.clone(),
            dead: self.cursor.dead.clone(),
        };
        self.metrics
            .set_event_backlog(&state.name, pending, lag_seconds, state.dead.len());
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = Some(state);
    }
}
