//! The local lock a folder-mode `tether apply` holds for its whole run (decision 042): two
//! applies of one fleet on one host never run at once, so the key sweep at the start of one
//! never revokes a key the other minted for a create still under way. A `--git` apply and the
//! daemon hold the single-writer lease instead. Start at [`take`].
//!
//! # Guarantees
//! - While a [`LocalLock`] lives, no other process holds the lock of the same fleet (an
//!   advisory `flock` on [`path`], released by the kernel when the process ends, killed
//!   included: a crash leaves no stale lock).
//!
//! # Assumptions
//! - Every apply of the fleet on this host sees the same temporary directory (`TMPDIR`).
//!   Applies on different hosts need the lease (`--git`).

use super::keys::FleetMarker;
use crate::cloud::retry::Clock;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;
use tether_schema::names::FleetName;

/// How often a waiting apply tries the lock again.
pub const RETRY_EVERY: Duration = Duration::from_millis(200);

/// The lock, held until dropped.
#[derive(Debug)]
pub struct LocalLock {
    _file: File,
    /// The lock file.
    pub path: PathBuf,
}

/// The lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another apply of the fleet holds it, and waiting was not asked for or ran out.
    #[error(
        "another `tether apply` of fleet `{fleet}` is running on this host ({holder}; lock {path}), and waited {waited:?} for it"
    )]
    Held {
        /// The fleet.
        fleet: String,
        /// The holder's process id as it wrote it.
        holder: String,
        /// The lock file.
        path: PathBuf,
        /// How long this apply waited.
        waited: Duration,
    },
    /// The lock file could not be opened or locked.
    #[error("the apply lock of fleet `{fleet}` ({path}): {source}")]
    Io {
        /// The fleet.
        fleet: String,
        /// The lock file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

/// The lock file of `fleet`: `tether-apply-<fleet id>.lock` in the temporary directory.
pub fn path(fleet: &FleetName) -> PathBuf {
    std::env::temp_dir().join(format!("tether-apply-{}.lock", FleetMarker::of(fleet).id()))
}

/// Takes `fleet`'s lock, waiting up to `wait` (trying every [`RETRY_EVERY`] on `clock`) while
/// another apply holds it.
///
/// # Errors
/// [`LockError::Held`] when it is still held after `wait`; [`LockError::Io`] when the file
/// cannot be opened or locked.
pub async fn take<K: Clock>(
    fleet: &FleetName,
    wait: Duration,
    clock: &K,
) -> Result<LocalLock, LockError> {
    let path = path(fleet);
    let io = |source| LockError::Io {
        fleet: fleet.to_string(),
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    let started = clock.now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let waited = clock.now().duration_since(started).unwrap_or_default();
        let holder = holder(&mut file);
        if waited >= wait {
            return Err(LockError::Held {
                fleet: fleet.to_string(),
                holder,
                path,
                waited,
            });
        }
        if !told {
            tracing::warn!(fleet = %fleet, %holder, lock = %path.display(), "another tether apply of this fleet is running on this host; waiting for it to finish");
            told = true;
        }
        clock.sleep(RETRY_EVERY).await;
    }
    file.set_len(0).map_err(io)?;
    write!(file, "pid {}", std::process::id()).map_err(io)?;
    Ok(LocalLock { _file: file, path })
}

/// What the holder wrote in the lock file.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let read = file
        .rewind()
        .and_then(|()| file.take(64).read_to_string(&mut text));
    match read {
        Ok(_) if !text.trim().is_empty() => text.trim().to_owned(),
        _ => "pid unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::retry::TokioClock;

    #[tokio::test]
    async fn a_second_taker_waits_for_the_first_and_gets_the_lock_once_it_is_dropped() {
        let fleet = FleetName::parse(&format!("lock-test-{}", std::process::id())).expect("name");
        let first = take(&fleet, Duration::ZERO, &TokioClock)
            .await
            .expect("free");
        let refused = take(&fleet, Duration::from_millis(300), &TokioClock)
            .await
            .expect_err("held");
        assert!(
            matches!(&refused, LockError::Held { holder, .. } if holder == &format!("pid {}", std::process::id())),
            "{refused}"
        );
        let waiter = tokio::spawn(async move {
            let fleet =
                FleetName::parse(&format!("lock-test-{}", std::process::id())).expect("name");
            take(&fleet, Duration::from_secs(10), &TokioClock)
                .await
                .map(|_| ())
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        drop(first);
        waiter.await.expect("task").expect("taken after the drop");
    }
}
