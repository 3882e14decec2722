//! The single writer: every verified, mapped event goes through one queue to one task that
//! commits whatever has gathered as one batch ([`batch::commit_batch`]) and then answers each
//! waiting request with its event's [`Outcome`]. Start at [`Queue::spawn`] and
//! [`Queue::submit`].
//!
//! Batching needs no timer: while one commit is being written, the next events queue up, and
//! the next batch takes all of them (up to a maximum). A request is answered only after the
//! commit holding its event has landed on the fleet branch.

pub mod batch;
pub mod ledger;

use crate::audit::commit::Identity;
use crate::billing::Target;
use crate::billing::serve::metrics::BillingMetrics;
pub use batch::{Item, Outcome};
use ledger::Ledger;
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
}

impl Destination {
    fn target(&self) -> Target<'_> {
        Target {
            repo: &self.repo,
            branch: &self.branch,
            base: None,
            push: self.push.as_deref(),
            identity: &self.identity,
        }
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
    /// Starts the writer task for `destination`, committing at most `max_batch` events at once.
    pub fn spawn(
        destination: Destination,
        max_batch: usize,
        metrics: Arc<BillingMetrics>,
    ) -> Queue {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        tokio::spawn(write(destination, max_batch.max(1), rx, metrics));
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
        let dest = destination.clone();
        let mut state = std::mem::take(&mut ledger);
        let before = state.tip();
        let done = tokio::task::spawn_blocking(move || {
            let result = batch::commit_batch(&dest.target(), &mut state, &items);
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
