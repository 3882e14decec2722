//! The single-writer lease for one-shot commands (`tether apply --git`): the same lease the
//! daemon holds (`refs/tether/locks/<fleet>` in the fleet repository), taken before anything
//! changes and renewed in the background while the command runs.

use super::CliError;
use crate::daemon::lock::{Lease, LeaseGuard, LockError, LockStore, rfc3339};
use crate::process::parse_duration;
use crate::source::Snapshot;
use std::path::Path;
use std::time::Duration;

/// Parses `--lock-ttl` (`90s`, `2m`; at least 2 s).
///
/// # Errors
/// Not a duration, or shorter than 2 s.
pub fn ttl(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text.trim())?;
    if d < Duration::from_secs(2) {
        return Err(format!(
            "{} is shorter than the minimum of 2s",
            humantime::format_duration(d)
        ));
    }
    Ok(d)
}

/// Parses `--lock-wait` (`0s`, `30s`, `2m`).
///
/// # Errors
/// Not a duration.
pub fn wait(text: &str) -> Result<Duration, String> {
    parse_duration(text.trim())
}

/// This process's holder id: `apply/<host>/<pid>`.
pub fn holder(command: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "tether".to_owned());
    format!("{command}/{host}/{}", std::process::id())
}

/// Takes the lease on `fleet` in the repository `repo`, waiting up to `wait` while another
/// process holds it, and guards it. Must be called inside the runtime.
///
/// # Errors
/// Another process still holds the lease after `wait` (transient, exit 4: the message names
/// it and when its lease expires), or the repository cannot be written.
pub async fn take(
    repo: &Path,
    fleet: String,
    ttl: Duration,
    wait: Duration,
    holder: &str,
) -> Result<LeaseGuard<crate::cloud::retry::TokioClock>, CliError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let (store, fleet_owned, holder_owned) = (
            LockStore::Local(repo.to_owned()),
            fleet.clone(),
            holder.to_owned(),
        );
        let attempt = tokio::task::spawn_blocking(move || {
            Lease::acquire(
                &store,
                &fleet_owned,
                &holder_owned,
                ttl,
                crate::cloud::retry::TokioClock,
            )
        })
        .await
        .map_err(|e| {
            CliError::failed(
                format!("the lease task failed: {e}"),
                "report this as a bug",
            )
        })?;
        match attempt {
            Ok(lease) => {
                tracing::info!(holder, "single-writer lease acquired");
                return Ok(LeaseGuard::start(lease, crate::cloud::retry::TokioClock));
            }
            Err(LockError::Held { .. } | LockError::Contended { .. })
                if tokio::time::Instant::now() < deadline =>
            {
                tracing::info!("the fleet's lease is held; waiting (--lock-wait)");
                tokio::time::sleep(LEASE_POLL.min(deadline - tokio::time::Instant::now())).await;
            }
            Err(LockError::Held {
                fleet,
                holder,
                expires_at,
            }) => {
                return Err(CliError::transient(
                    format!(
                        "fleet `{fleet}` is being changed by `{holder}` (its lease expires at {} unless renewed); nothing was changed",
                        rfc3339(expires_at)
                    ),
                    "wait for it to finish and run again (or pass --lock-wait), or stop that process (`tether run` daemons hold the lease while they run)",
                ));
            }
            Err(LockError::Contended { fleet }) => {
                return Err(CliError::transient(
                    format!(
                        "cannot take the single-writer lease: fleet `{fleet}`'s lock ref kept changing or stayed locked while tether wrote it; nothing was changed"
                    ),
                    format!(
                        "try again in a few seconds: a `refs/tether/locks/{fleet}.lock` file left by a killed process is removed once it is 10 s old"
                    ),
                ));
            }
            Err(e) => {
                return Err(CliError::failed(
                    format!("cannot take the single-writer lease: {e}; nothing was changed"),
                    e.hint(),
                ));
            }
        }
    }
}

/// How often a waiting `tether apply` asks for the lease again.
const LEASE_POLL: Duration = Duration::from_millis(500);

/// `metadata.name` of fleet.yaml, validated on its own; `None` when fleet.yaml is invalid (the
/// pass then refuses before reading or changing anything).
pub fn fleet_name(snapshot: &Snapshot) -> Option<String> {
    let file = snapshot
        .files
        .iter()
        .find(|f| f.path == tether_schema::FLEET_FILE)?;
    tether_schema::load_fleet(std::slice::from_ref(file))
        .ok()
        .map(|fleet| fleet.settings.name.to_string())
}
