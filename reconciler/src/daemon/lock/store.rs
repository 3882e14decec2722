//! Where leases are read and compare-and-swapped ([`LockStore`]): a repository on this machine
//! (libgit2's checked ref update, under git's ref lock file) or a remote (a push checked
//! against the value read, before upload by us and atomically by the server).

use super::{LOCK_REF_PREFIX, LeaseRecord, LockError};
use crate::source::reflock;
use crate::source::remote::RepoCache;
use git2::{ErrorCode, Oid, PushOptions, Repository, Signature, Time};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// The repository holding the lock refs.
#[derive(Debug, Clone)]
pub enum LockStore {
    /// A repository on this machine (bare or with a work tree), updated in place.
    Local(PathBuf),
    /// A remote, reached through its cache (which holds the credentials).
    Remote(RepoCache),
}

impl LockStore {
    fn url(&self) -> String {
        match self {
            LockStore::Local(path) => path.display().to_string(),
            LockStore::Remote(cache) => cache.url().to_string(),
        }
    }

    fn git_error(&self, fleet: &str, message: String) -> LockError {
        LockError::Git {
            url: self.url(),
            ref_name: lock_ref(fleet),
            message,
        }
    }

    /// The lease commit the lock ref points at, if the ref exists.
    pub(super) fn read(&self, fleet: &str) -> Result<Option<(Oid, LeaseRecord)>, LockError> {
        let fail = |e: git2::Error| self.git_error(fleet, e.message().to_owned());
        match self {
            LockStore::Local(path) => {
                let repo = Repository::open(path).map_err(fail)?;
                let id = match repo.find_reference(&lock_ref(fleet)) {
                    Ok(reference) => reference.target(),
                    Err(e) if e.code() == ErrorCode::NotFound => None,
                    Err(e) => return Err(fail(e)),
                };
                id.map(|id| self.record(&repo, fleet, id)).transpose()
            }
            LockStore::Remote(cache) => {
                let _busy = cache.serialise();
                let repo = cache
                    .repository()
                    .map_err(|e| self.git_error(fleet, e.to_string()))?;
                self.read_remote(cache, &repo, fleet)
            }
        }
    }

    /// Fetches the lock ref into the cache; the caller holds the cache's lock.
    fn read_remote(
        &self,
        cache: &RepoCache,
        repo: &Repository,
        fleet: &str,
    ) -> Result<Option<(Oid, LeaseRecord)>, LockError> {
        let name = lock_ref(fleet);
        let refspec = format!("+{name}:refs/tether/remote-locks/{fleet}");
        let id = cache
            .fetch_refspec(repo, &refspec, &name)
            .map_err(|e| self.git_error(fleet, e.to_string()))?;
        id.map(|id| self.record(repo, fleet, id)).transpose()
    }

    fn record(
        &self,
        repo: &Repository,
        fleet: &str,
        id: Oid,
    ) -> Result<(Oid, LeaseRecord), LockError> {
        let unreadable = |reason: String| LockError::Unreadable {
            url: self.url(),
            ref_name: lock_ref(fleet),
            commit: id.to_string(),
            reason,
        };
        let commit = repo
            .find_commit(id)
            .map_err(|e| unreadable(e.message().to_owned()))?;
        let message = commit
            .message()
            .ok_or_else(|| unreadable("message is not UTF-8".into()))?;
        let record = LeaseRecord::parse(message).map_err(unreadable)?;
        Ok((id, record))
    }

    /// Points the lock ref at a new commit holding `record` if it still points at `expected`
    /// (`None`: does not exist). `Ok(None)` when it did not: someone else wrote first.
    pub(super) fn swap(
        &self,
        fleet: &str,
        expected: Option<Oid>,
        record: &LeaseRecord,
        now: SystemTime,
    ) -> Result<Option<Oid>, LockError> {
        let fail = |e: git2::Error| self.git_error(fleet, e.message().to_owned());
        let name = lock_ref(fleet);
        let expected = expected.unwrap_or_else(Oid::zero);
        match self {
            LockStore::Local(path) => {
                let repo = Repository::open(path).map_err(fail)?;
                let commit = lease_commit(&repo, fleet, record, now).map_err(fail)?;
                reflock::clear_stale(&repo, &name, SystemTime::now());
                match repo.reference_matching(&name, commit, true, expected, "tether lease") {
                    Ok(_) => Ok(Some(commit)),
                    Err(e) if lost_race(&e) => Ok(None),
                    Err(e) => Err(fail(e)),
                }
            }
            LockStore::Remote(cache) => {
                let _busy = cache.serialise();
                let repo = cache
                    .repository()
                    .map_err(|e| self.git_error(fleet, e.to_string()))?;
                let commit = lease_commit(&repo, fleet, record, now).map_err(fail)?;
                let outgoing = format!("refs/tether/outgoing/{fleet}");
                reflock::clear_stale(&repo, &outgoing, SystemTime::now());
                repo.reference(&outgoing, commit, true, "tether lease")
                    .map_err(fail)?;
                let rejected = push_checked(cache, &repo, &outgoing, &name, expected)
                    .map_err(|e| self.git_error(fleet, cache.scrub(e.message())))?;
                let Some(rejection) = rejected else {
                    return Ok(Some(commit));
                };
                // The server refused the update: a lost race if the ref moved, else a real error.
                match self.read_remote(cache, &repo, fleet)? {
                    Some((now_at, _)) if now_at != expected => Ok(None),
                    None if !expected.is_zero() => Ok(None),
                    _ => Err(self.git_error(fleet, format!("push rejected: {rejection}"))),
                }
            }
        }
    }
}

/// Pushes `outgoing` to `name` unless the remote's value differs from `expected`. `Ok(None)`
/// when pushed, `Ok(Some(reason))` when the server rejected the update, and for a value that
/// moved before upload. The events' delivery cursor is written the same way.
pub(in crate::daemon) fn push_checked(
    cache: &RepoCache,
    repo: &Repository,
    outgoing: &str,
    name: &str,
    expected: Oid,
) -> Result<Option<String>, git2::Error> {
    let moved = Cell::new(false);
    let rejected = RefCell::new(None);
    let mut callbacks = cache.callbacks();
    callbacks.push_negotiation(|updates| {
        if updates
            .iter()
            .any(|u| u.dst_refname() == Some(name) && u.src() != expected)
        {
            moved.set(true);
            return Err(git2::Error::from_str("the ref moved since it was read"));
        }
        Ok(())
    });
    callbacks.push_update_reference(|reference, status| {
        if let Some(status) = status {
            *rejected.borrow_mut() = Some(format!("{reference}: {status}"));
        }
        Ok(())
    });
    let mut options = PushOptions::new();
    options.remote_callbacks(callbacks);
    let result = cache
        .origin(repo)?
        .push(&[format!("+{outgoing}:{name}")], Some(&mut options));
    drop(options);
    match result {
        Err(_) if moved.get() => Ok(Some("the ref moved since it was read".into())),
        Err(e) => Err(e),
        Ok(()) => Ok(rejected.into_inner()),
    }
}

/// A libgit2 error meaning the ref was not what we expected, or another writer held it.
pub(in crate::daemon) fn lost_race(e: &git2::Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::Modified | ErrorCode::Locked | ErrorCode::Exists | ErrorCode::NotFound
    )
}

fn lock_ref(fleet: &str) -> String {
    format!("{LOCK_REF_PREFIX}{fleet}")
}

/// A parentless commit with the empty tree and `record` as its message.
fn lease_commit(
    repo: &Repository,
    fleet: &str,
    record: &LeaseRecord,
    now: SystemTime,
) -> Result<Oid, git2::Error> {
    let tree = repo.find_tree(repo.treebuilder(None)?.write()?)?;
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let signature = Signature::new("tether", "tether@localhost", &Time::new(seconds, 0))?;
    repo.commit(
        None,
        &signature,
        &signature,
        &record.message(fleet),
        &tree,
        &[],
    )
}
