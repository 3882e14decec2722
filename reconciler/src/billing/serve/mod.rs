//! `tether billing serve`: a Stripe webhook receiver that turns subscription events into
//! commits on the fleet branch, verified, mapped, ordered per subscription, idempotent and
//! batched. Start at [`start`]; `docs/billing.md` is the user's reference and
//! `docs/decisions/017-stripe-receiver.md` the reasoning.
//!
//! The rooms, in the order a delivery passes them: [`http`] (the endpoint), [`signature`]
//! (`Stripe-Signature`), [`events`] (the wire types), [`queue`] (the single writer), [`read`]
//! (the batch's subscriptions read from Stripe, once each, paced), [`mapping`] (status and
//! price to agent), [`queue::batch`] (the commit) and [`queue::ledger`] (read from trailers),
//! plus [`config`], [`file`] and [`metrics`].

pub mod config;
pub mod events;
pub mod file;
pub mod http;
pub mod mapping;
pub mod metrics;
pub mod queue;
pub mod read;
pub mod signature;
pub mod sync;
pub mod trigger;

use crate::process::shutdown::ShutdownSignal;
use config::BillingConfig;
use file::FileError;
use http::Receiver;
use mapping::Mapping;
use metrics::BillingMetrics;
use queue::{Destination, Queue, Source};
use read::Reader;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Why the receiver cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The mapping file is unusable.
    #[error(transparent)]
    Mapping(#[from] FileError),
    /// The fleet repository or branch is unusable.
    #[error("the fleet repository `{repo}` (branch `{branch}`) cannot be used: {reason}")]
    Repository {
        /// The repository.
        repo: String,
        /// The branch.
        branch: String,
        /// Why.
        reason: String,
    },
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A running receiver. Dropping it stops it.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until the server has stopped (after a shutdown request).
    ///
    /// # Errors
    /// The server failed.
    pub async fn stopped(mut self) -> std::io::Result<()> {
        (&mut self.task).await.map_err(std::io::Error::other)?
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Loads the mapping, checks the fleet branch, starts the writer and serves until `shutdown`.
///
/// # Errors
/// See [`ServeError`].
pub async fn start(config: BillingConfig, shutdown: ShutdownSignal) -> Result<Running, ServeError> {
    let mapping = Mapping::load(&config.mapping)?;
    check_branch(&config)?;
    let metrics = Arc::new(BillingMetrics::default());
    let destination = Destination {
        repo: config.repo.clone(),
        branch: config.branch.clone(),
        push: config.push.clone(),
        identity: config.identity.clone(),
        trigger: config.trigger.clone(),
    };
    tokio::spawn(sync::every(
        config.sync_every,
        config.stripe.clone(),
        mapping.clone(),
        destination.clone(),
    ));
    let source = Source {
        reader: Reader::new(config.stripe, config.reads_per_second),
        mapping,
    };
    let queue = Queue::spawn(destination, config.max_batch, source, metrics.clone());
    let receiver = Arc::new(Receiver::new(
        config.secrets,
        config.tolerance,
        queue,
        metrics,
        config.ack_timeout,
        Arc::new(SystemTime::now),
    ));
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let app = receiver.router();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.requested().await;
            })
            .await
    });
    tracing::info!(%addr, branch = %config.branch, "billing receiver listening");
    Ok(Running { addr, task })
}

fn check_branch(config: &BillingConfig) -> Result<(), ServeError> {
    let fail = |reason: String| ServeError::Repository {
        repo: config.repo.display().to_string(),
        branch: config.branch.clone(),
        reason,
    };
    let repo = git2::Repository::open(&config.repo).map_err(|e| fail(e.message().to_owned()))?;
    if config.push.is_none() {
        repo.find_reference(&format!("refs/heads/{}", config.branch))
            .map_err(|_| {
                fail(
                    "the branch does not exist; billing commits to an existing fleet branch"
                        .to_owned(),
                )
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod after_commit_tests;
#[cfg(test)]
mod burst;
#[cfg(test)]
mod emulator_tests;
#[cfg(test)]
mod harness;
#[cfg(test)]
mod tests;
