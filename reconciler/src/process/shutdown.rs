//! Shutdown: one [`ShutdownTrigger`] (fired by SIGTERM/SIGINT through [`on_os_signals`], or by
//! code) and any number of [`ShutdownSignal`]s that the reconcile loop, the HTTP server and the
//! producers check or await. [`grace_after_shutdown`] lets work run to completion however long
//! it takes, and bounds it only once shutdown was requested.
//!
//! The reconcile loop checks [`ShutdownSignal::is_requested`] between actions: an action that
//! has started is finished (never abandoned half-way), no new one starts.

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why shutdown was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    /// SIGTERM (e.g. `systemctl stop`, Kubernetes).
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// Asked for by code.
    Requested,
}

impl ShutdownReason {
    /// A stable name for logs: `SIGTERM`, `SIGINT` or `requested`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShutdownReason::Terminate => "SIGTERM",
            ShutdownReason::Interrupt => "SIGINT",
            ShutdownReason::Requested => "requested",
        }
    }
}

/// Requests shutdown; the first reason given wins.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    tx: watch::Sender<Option<ShutdownReason>>,
}

impl ShutdownTrigger {
    /// Requests shutdown with `reason`, unless it was already requested.
    pub fn trigger(&self, reason: ShutdownReason) {
        self.tx.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(reason);
            }
            first
        });
    }

    /// Another signal observing this trigger.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            rx: self.tx.subscribe(),
        }
    }
}

/// Observes whether shutdown was requested. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    rx: watch::Receiver<Option<ShutdownReason>>,
}

impl ShutdownSignal {
    /// Whether shutdown was requested: check it between actions.
    pub fn is_requested(&self) -> bool {
        self.rx.borrow().is_some()
    }

    /// The reason, once requested.
    pub fn reason(&self) -> Option<ShutdownReason> {
        *self.rx.borrow()
    }

    /// Completes when shutdown is requested (at once if it already was). Never completes if
    /// every [`ShutdownTrigger`] is dropped without firing.
    pub async fn requested(&self) -> ShutdownReason {
        let mut rx = self.rx.clone();
        let reason = rx.wait_for(Option::is_some).await.map(|r| *r);
        match reason {
            Ok(reason) => reason.unwrap_or(ShutdownReason::Requested),
            Err(_) => std::future::pending().await,
        }
    }
}

/// A connected trigger and signal, not yet requested.
pub fn channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (tx, rx) = watch::channel(None);
    (ShutdownTrigger { tx }, ShutdownSignal { rx })
}

/// Registers handlers for SIGTERM and SIGINT now, and returns the task that fires `trigger`
/// on the first of them. From then on the first signal no longer kills the process: it shuts
/// down through `trigger`. A second signal exits the process at once (status 130).
///
/// # Errors
/// The signal handlers cannot be registered.
pub fn on_os_signals(trigger: ShutdownTrigger) -> std::io::Result<JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(tokio::spawn(async move {
        let reason = tokio::select! {
            _ = terminate.recv() => ShutdownReason::Terminate,
            _ = interrupt.recv() => ShutdownReason::Interrupt,
        };
        tracing::info!(
            signal = reason.as_str(),
            "shutdown requested; a second signal exits at once"
        );
        trigger.trigger(reason);
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::warn!("second signal: exiting at once, without winding down");
        std::process::exit(130);
    }))
}

/// The grace period ran out before the work finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("work still running after the {grace:?} grace period; it was abandoned")]
pub struct GraceExpired {
    /// The grace period.
    pub grace: Duration,
}

/// Runs `work` for at most `grace` (tokio time, so paused-clock tests take no real time).
///
/// # Errors
/// [`GraceExpired`] when `work` did not finish in time; it is dropped.
pub async fn within_grace<F: Future>(grace: Duration, work: F) -> Result<F::Output, GraceExpired> {
    tokio::time::timeout(grace, work)
        .await
        .map_err(|_| GraceExpired { grace })
}

/// Runs `work` to completion however long it takes, unless shutdown is requested: from then on
/// it has `grace` more (it is expected to wind down by itself, e.g. through a stop watch), and
/// is dropped if it takes longer.
///
/// # Errors
/// [`GraceExpired`] when `work` was still running `grace` after the shutdown request.
pub async fn grace_after_shutdown<F: Future>(
    signal: &ShutdownSignal,
    grace: Duration,
    work: F,
) -> Result<F::Output, GraceExpired> {
    let mut work = std::pin::pin!(work);
    tokio::select! {
        out = &mut work => return Ok(out),
        _ = signal.requested() => {}
    }
    within_grace(grace, work).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_signal_sees_the_first_reason() {
        let (trigger, signal) = channel();
        let other = trigger.signal();
        assert!(!signal.is_requested());
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.requested().await }
        });
        trigger.trigger(ShutdownReason::Interrupt);
        trigger.trigger(ShutdownReason::Requested);
        assert_eq!(waiter.await.expect("join"), ShutdownReason::Interrupt);
        assert!(other.is_requested());
        assert_eq!(other.reason(), Some(ShutdownReason::Interrupt));
        assert_eq!(other.requested().await, ShutdownReason::Interrupt);
    }

    #[tokio::test(start_paused = true)]
    async fn the_grace_period_bounds_slow_work_and_lets_quick_work_finish() {
        let quick = within_grace(Duration::from_secs(10), async { 7 }).await;
        assert_eq!(quick, Ok(7));
        let slow = within_grace(Duration::from_secs(10), async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        })
        .await;
        assert_eq!(
            slow,
            Err(GraceExpired {
                grace: Duration::from_secs(10)
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn work_longer_than_the_grace_runs_to_completion_without_a_shutdown_request() {
        let (_trigger, signal) = channel();
        let started = tokio::time::Instant::now();
        let out = grace_after_shutdown(&signal, Duration::from_secs(60), async {
            tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
            "done"
        })
        .await;
        assert_eq!(out, Ok("done"));
        assert_eq!(started.elapsed(), Duration::from_secs(2 * 3600));
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_shutdown_request_work_gets_the_grace_and_no_more() {
        let (trigger, signal) = channel();
        let started = tokio::time::Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(100)).await;
            trigger.trigger(ShutdownReason::Terminate);
        });
        let out = grace_after_shutdown(&signal, Duration::from_secs(60), async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        })
        .await;
        assert_eq!(
            out,
            Err(GraceExpired {
                grace: Duration::from_secs(60)
            })
        );
        assert_eq!(started.elapsed(), Duration::from_secs(160));
    }

    #[tokio::test]
    async fn sigterm_requests_shutdown_instead_of_killing_the_process() {
        let (trigger, signal) = channel();
        let listener = on_os_signals(trigger).expect("register handlers");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let reason = tokio::time::timeout(Duration::from_secs(10), signal.requested())
            .await
            .expect("signal delivered");
        assert_eq!(reason, ShutdownReason::Terminate);
        listener.abort();
    }
}
