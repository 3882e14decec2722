//! Each endpoint's delivery cursor ([`Cursor`]): the last event delivered (or given up on), the
//! retries of the next one, and the dead letters, kept in the fleet's repository as the ref
//! `refs/tether/events/<fleet>/<endpoint>`, which points at a parentless commit with an empty
//! tree whose message holds the cursor as JSON. Every write is a compare-and-swap of that ref,
//! exactly like the single-writer lease's ([`crate::daemon::lock::LockStore`]): a daemon that
//! lost the lease cannot move the cursor back. Decision 047 says why a ref and not a file.

use crate::daemon::lock::{LockStore, lost_race, push_checked};
use crate::source::reflock;
use git2::{ErrorCode, Oid, Repository, Signature, Time};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// The prefix of the cursor refs.
pub const CURSOR_REF_PREFIX: &str = "refs/tether/events/";
/// The most dead letters a cursor keeps (the oldest go first); each names its event, which
/// `tether events show` and `replay` still find on the status branch.
pub const DEAD_LETTERS_KEPT: usize = 200;
const FIRST_LINE: &str = "tether events cursor";

/// An event given up on after retrying for `events.giveUpAfter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The event's id.
    pub id: String,
    /// Its type.
    pub kind: String,
    /// Its agent.
    pub agent: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error (no URL, no secret).
    pub last_error: String,
    /// When it was given up on, UNIX seconds.
    pub dead_at: i64,
}

/// Where one endpoint's delivery stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// The last event delivered or given up on; `None`: none yet, start at the first.
    pub after: Option<String>,
    /// The status commit of that event, for people reading the ref.
    pub after_commit: Option<String>,
    /// When delivering the next event first failed, UNIX seconds; `None` while it has not.
    pub failing_since: Option<i64>,
    /// Attempts made at the next event.
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// Events delivered through this cursor.
    pub delivered: u64,
    /// Events given up on, newest last ([`DEAD_LETTERS_KEPT`] at most).
    pub dead: Vec<DeadLetter>,
}

/// Why a cursor cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// Git failed reading or writing the ref.
    #[error("cannot read or write the events cursor {ref_name}: {message}")]
    Git {
        /// The cursor ref.
        ref_name: String,
        /// What git said (the remote's URL scrubbed of credentials).
        message: String,
    },
    /// The ref's commit does not hold a cursor.
    #[error(
        "the events cursor {ref_name} (commit {commit}) is unreadable: {reason}; delete the ref to start delivering from the status branch's tip"
    )]
    Unreadable {
        /// The cursor ref.
        ref_name: String,
        /// The commit it points at.
        commit: String,
        /// What is wrong.
        reason: String,
    },
}

/// One endpoint's cursor ref in the fleet's repository.
#[derive(Debug, Clone)]
pub struct CursorRef {
    store: LockStore,
    name: String,
}

impl CursorRef {
    /// The cursor of `endpoint` for `fleet`, in `store` (the lease's repository).
    pub fn new(store: LockStore, fleet: &str, endpoint: &str) -> CursorRef {
        CursorRef {
            store,
            name: format!("{CURSOR_REF_PREFIX}{fleet}/{endpoint}"),
        }
    }

    /// The ref's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn git(&self, message: impl Into<String>) -> CursorError {
        CursorError::Git {
            ref_name: self.name.clone(),
            message: message.into(),
        }
    }

    /// The cursor and the commit holding it, if the ref exists.
    ///
    /// # Errors
    /// The ref cannot be read, or holds no cursor.
    pub fn read(&self) -> Result<Option<(Oid, Cursor)>, CursorError> {
        let fail = |e: git2::Error| self.git(e.message());
        match &self.store {
            LockStore::Local(path) => {
                let repo = Repository::open(path).map_err(fail)?;
                let id = match repo.find_reference(&self.name) {
                    Ok(r) => r.target(),
                    Err(e) if e.code() == ErrorCode::NotFound => None,
                    Err(e) => return Err(fail(e)),
                };
                id.map(|id| self.parse(&repo, id)).transpose()
            }
            LockStore::Remote(cache) => {
                let _busy = cache.serialise();
                let repo = cache.repository().map_err(|e| self.git(e.to_string()))?;
                self.read_remote(cache, &repo)
            }
        }
    }

    fn read_remote(
        &self,
        cache: &crate::source::remote::RepoCache,
        repo: &Repository,
    ) -> Result<Option<(Oid, Cursor)>, CursorError> {
        let local = self.name.replacen("refs/tether/", "refs/tether/remote-", 1);
        let refspec = format!("+{}:{local}", self.name);
        let id = cache
            .fetch_refspec(repo, &refspec, &self.name)
            .map_err(|e| self.git(e.to_string()))?;
        id.map(|id| self.parse(repo, id)).transpose()
    }

    fn parse(&self, repo: &Repository, id: Oid) -> Result<(Oid, Cursor), CursorError> {
        let unreadable = |reason: String| CursorError::Unreadable {
            ref_name: self.name.clone(),
            commit: id.to_string(),
            reason,
        };
        let commit = repo
            .find_commit(id)
            .map_err(|e| unreadable(e.message().to_owned()))?;
        let message = commit
            .message()
            .ok_or_else(|| unreadable("the message is not UTF-8".into()))?;
        let json = message
            .strip_prefix(FIRST_LINE)
            .ok_or_else(|| unreadable(format!("the message does not start with `{FIRST_LINE}`")))?;
        let cursor = serde_json::from_str(json.trim()).map_err(|e| unreadable(e.to_string()))?;
        Ok((id, cursor))
    }

    /// Points the ref at a commit holding `cursor` if it still points at `expected` (`None`:
    /// does not exist). `Ok(None)` when it did not: another daemon wrote first (it holds the
    /// lease now), and this one must stop delivering.
    ///
    /// # Errors
    /// Git fails for another reason.
    pub fn swap(
        &self,
        expected: Option<Oid>,
        cursor: &Cursor,
        now: SystemTime,
    ) -> Result<Option<Oid>, CursorError> {
        let fail = |e: git2::Error| self.git(e.message());
        let expected = expected.unwrap_or_else(Oid::zero);
        match &self.store {
            LockStore::Local(path) => {
                let repo = Repository::open(path).map_err(fail)?;
                let commit = cursor_commit(&repo, cursor, now).map_err(fail)?;
                reflock::clear_stale(&repo, &self.name, SystemTime::now());
                match repo.reference_matching(&self.name, commit, true, expected, "tether events") {
                    Ok(_) => Ok(Some(commit)),
                    Err(e) if lost_race(&e) => Ok(None),
                    Err(e) => Err(fail(e)),
                }
            }
            LockStore::Remote(cache) => {
                let _busy = cache.serialise();
                let repo = cache.repository().map_err(|e| self.git(e.to_string()))?;
                let commit = cursor_commit(&repo, cursor, now).map_err(fail)?;
                let outgoing = self
                    .name
                    .replacen("refs/tether/", "refs/tether/outgoing-", 1);
                reflock::clear_stale(&repo, &outgoing, SystemTime::now());
                repo.reference(&outgoing, commit, true, "tether events")
                    .map_err(fail)?;
                let rejected = push_checked(cache, &repo, &outgoing, &self.name, expected)
                    .map_err(|e| self.git(cache.scrub(e.message())))?;
                let Some(rejection) = rejected else {
                    return Ok(Some(commit));
                };
                match self.read_remote(cache, &repo)? {
                    Some((now_at, _)) if now_at != expected => Ok(None),
                    None if !expected.is_zero() => Ok(None),
                    _ => Err(self.git(format!("push rejected: {rejection}"))),
                }
            }
        }
    }
}

/// A parentless commit with the empty tree and `cursor` as its message.
fn cursor_commit(repo: &Repository, cursor: &Cursor, now: SystemTime) -> Result<Oid, git2::Error> {
    let tree = repo.find_tree(repo.treebuilder(None)?.write()?)?;
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let signature = Signature::new("tether", "tether@localhost", &Time::new(seconds, 0))?;
    let json =
        serde_json::to_string_pretty(cursor).map_err(|e| git2::Error::from_str(&e.to_string()))?;
    repo.commit(
        None,
        &signature,
        &signature,
        &format!("{FIRST_LINE}\n\n{json}\n"),
        &tree,
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_written_only_over_the_value_its_writer_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        Repository::init(dir.path()).expect("init");
        let at = CursorRef::new(LockStore::Local(dir.path().to_owned()), "aura", "app");
        assert_eq!(at.name(), "refs/tether/events/aura/app");
        assert!(at.read().expect("read").is_none());
        let mut cursor = Cursor {
            after: Some("evt_1".into()),
            delivered: 1,
            ..Cursor::default()
        };
        let first = at
            .swap(None, &cursor, SystemTime::now())
            .expect("swap")
            .expect("written");
        cursor.after = Some("evt_2".into());
        assert_eq!(
            at.swap(None, &cursor, SystemTime::now()).expect("swap"),
            None,
            "a writer that read nothing loses to the one that wrote"
        );
        at.swap(Some(first), &cursor, SystemTime::now())
            .expect("swap")
            .expect("written");
        let (_, read) = at.read().expect("read").expect("a cursor");
        assert_eq!(read.after.as_deref(), Some("evt_2"));
    }
}
