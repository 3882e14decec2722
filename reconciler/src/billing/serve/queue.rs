//! The single writer: every verified event goes through one queue to one task that reads the
//! batch's subscriptions from Stripe (once each, [`super::read`]), maps each to what its agent
//! should be, commits whatever has gathered as one batch ([`batch::commit_batch`]) and then
//! answers each waiting request with its event's [`Outcome`]. Start at [`Queue::spawn`] and
//! [`Queue::submit`].
//!
//! Batching needs no timer: while one batch is read and committed, the next events queue up,
//! and the next batch takes all of them (up to a maximum). A request is answered only after the
//! commit holding its event has landed on the fleet branch.

pub mod batch;
pub mod ledger;

use super::events::{self, SubscriptionEvent};
use super::mapping::Mapping;
use super::read::Reader;
use super::trigger::Trigger;
use crate::audit::commit::Identity;
use crate::billing::Target;
use crate::billing::serve::metrics::BillingMetrics;
use crate::billing::stripe::ReadError;
pub use batch::{Item, Outcome, States};
use ledger::Ledger;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Where the writer commits.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The fleet repository (bare or a clone).
    pub repo: PathBuf,
    /// The fleet branch.
    pub branch: String,
    /// Push to this remote (no force) instead of moving the local branch only.
    pub push: Option<String>,
    /// Commit identity.
    pub identity: Identity,
    /// The daemon asked for a pass after each commit.
    pub trigger: Option<Trigger>,
}

impl Destination {
    /// The commit target.
    pub fn target(&self) -> Target<'_> {
        Target {
            repo: &self.repo,
            branch: &self.branch,
            base: None,
            push: self.push.as_deref(),
            identity: &self.identity,
        }
    }
}

/// Where the writer learns what each subscription's agent should be: Stripe's current state,
/// through the price mapping.
#[derive(Debug)]
pub struct Source {
    /// Stripe's API, paced.
    pub reader: Reader,
    /// The price mapping.
    pub mapping: Mapping,
}

impl Source {
    /// What each subscription of `items` that `ledger` would apply asks of the fleet, read from
    /// Stripe once per subscription; the outcome of its events when that cannot be known.
    async fn states(&self, ledger: &Ledger, items: &[Item], metrics: &BillingMetrics) -> States {
        let mut newest: BTreeMap<&str, &SubscriptionEvent> = BTreeMap::new();
        for item in items {
            let e = &item.event;
            if !ledger.seen(&e.id) && !batch::is_stale(ledger, e) {
                newest.insert(&e.subscription, e);
            }
        }
        let wanted: Vec<String> = newest.keys().map(ToString::to_string).collect();
        let reads = self.reader.read_all(wanted).await;
        metrics.count_reads(reads.len());
        reads
            .into_iter()
            .map(|(sub, read)| {
                let state = newest.get(sub.as_str()).map_or_else(
                    || {
                        Err(Outcome::Unreadable(format!(
                            "no event of {sub} in the batch"
                        )))
                    },
                    |event| self.resolve(event, read),
                );
                (sub, state)
            })
            .collect()
    }

    fn resolve(
        &self,
        event: &SubscriptionEvent,
        read: Result<Value, ReadError>,
    ) -> Result<super::mapping::Desired, Outcome> {
        let object = read.map_err(|e| {
            tracing::error!(subscription = %event.subscription, event = %event.id, error = %e, "the subscription could not be read from Stripe; Stripe will deliver the event again");
            Outcome::Unreadable(e.to_string())
        })?;
        let current =
            events::current(event, object).map_err(|e| Outcome::Unreadable(e.to_string()))?;
        self.mapping.resolve(&current).map_err(|e| {
            tracing::error!(subscription = %event.subscription, event = %event.id, error = %e, "Stripe event not applied");
            Outcome::Unmapped(e)
        })
    }
}

/// Why an event got no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// Committing the batch failed; nothing of it is acknowledged.
    #[error("the fleet branch could not be updated: {0}")]
    Commit(String),
    /// The writer stopped (shutting down).
    #[error("the billing writer has stopped")]
    Stopped,
}

struct Job {
    item: Item,
    reply: oneshot::Sender<Result<Outcome, QueueError>>,
}

/// The way into the writer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Queue {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("event", &self.item.event.id)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// Starts the writer task for `destination`, committing at most `max_batch` events at once,
    /// each subscription's spec from `source`.
    pub fn spawn(
        destination: Destination,
        max_batch: usize,
        source: Source,
        metrics: Arc<BillingMetrics>,
    ) -> Queue {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        tokio::spawn(write(destination, max_batch.max(1), source, rx, metrics));
        Queue { tx }
    }

    /// Queues `item` and waits for the commit that decides it.
    ///
    /// # Errors
    /// See [`QueueError`].
    pub async fn submit(&self, item: Item) -> Result<Outcome, QueueError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { item, reply })
            .await
            .map_err(|_| QueueError::Stopped)?;
        answer.await.map_err(|_| QueueError::Stopped)?
    }
}

async fn write(
    destination: Destination,
    max_batch: usize,
    source: Source,
    mut rx: mpsc::Receiver<Job>,
    metrics: Arc<BillingMetrics>,
) {
    let mut ledger = warm_up(&destination).await;
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < max_batch
            && let Ok(job) = rx.try_recv()
        {
            jobs.push(job);
        }
        let items: Vec<Item> = jobs.iter().map(|j| j.item.clone()).collect();
        let states = source.states(&ledger, &items, &metrics).await;
        let dest = destination.clone();
        let mut state = std::mem::take(&mut ledger);
        let before = state.tip();
        let done = tokio::task::spawn_blocking(move || {
            let result = batch::commit_batch(&dest.target(), &mut state, &items, &states);
            (state, result)
        })
        .await;
        let results: Vec<Result<Outcome, QueueError>> = match done {
            Ok((state, Ok(outcomes))) => {
                if state.tip() != before
                    && outcomes
                        .iter()
                        .any(|o| matches!(o, Outcome::Applied { .. }))
                {
                    metrics.count_commit(jobs.len());
                    if let (Some(trigger), Some(tip)) = (&destination.trigger, state.tip()) {
                        trigger.nudge(tip);
                    }
                }
                ledger = state;
                outcomes.into_iter().map(Ok).collect()
            }
            Ok((state, Err(e))) => {
                ledger = state;
                tracing::error!(error = %e, events = jobs.len(), "billing batch not committed; Stripe will retry");
                jobs.iter()
                    .map(|_| Err(QueueError::Commit(e.to_string())))
                    .collect()
            }
            Err(e) => {
                tracing::error!(error = %e, "billing writer task failed; the ledger is read again");
                jobs.iter()
                    .map(|_| Err(QueueError::Commit(e.to_string())))
                    .collect()
            }
        };
        for (job, result) in jobs.into_iter().zip(results) {
            let _ = job.reply.send(result);
        }
    }
}

/// The ledger as of the branch tip at start, so the first delivery does not wait for the
/// history to be read; an empty one (read at the first batch) when that fails.
async fn warm_up(destination: &Destination) -> Ledger {
    let dest = destination.clone();
    let read = tokio::task::spawn_blocking(move || {
        let repo = git2::Repository::open(&dest.repo)?;
        let tip = repo.refname_to_id(&format!("refs/heads/{}", dest.branch))?;
        let mut ledger = Ledger::default();
        ledger.catch_up(&repo, tip)?;
        Ok::<_, git2::Error>(ledger)
    })
    .await;
    match read {
        Ok(Ok(ledger)) => ledger,
        Ok(Err(e)) => {
            tracing::warn!(error = %e.message(), "the billing ledger is read at the first delivery instead");
            Ledger::default()
        }
        Err(_) => Ledger::default(),
    }
}
