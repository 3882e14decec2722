//! The daemon's fleet cache: a loaded [`Fleet`] is a pure function of the git tree it was read
//! from (and of this binary), so the daemon keeps the last few it loaded, keyed by tree id, and
//! a pass whose revision resolves to a tree it already loaded reads no blob and parses nothing.
//!
//! # Guarantees
//! - Only fleets that loaded cleanly are remembered: a revision whose specs fail to load is read
//!   and loaded again on every pass, so its diagnostics are always the loader's own, and an
//!   error is never mistaken for an empty fleet.
//! - A cached fleet is exactly what [`load_fleet`] returned for the same tree: the key is the
//!   commit's root tree, which names every byte the loader reads.
//!
//! # Assumptions
//! - One process, one binary: the cache lives in memory and dies with the daemon.

use super::{Snapshot, SourceError, git};
use git2::{Oid, Repository};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tether_schema::{Fleet, LoadError, load_fleet};

/// How many loaded trees are kept: the fleet's head and the status baseline's revision.
pub const KEPT_TREES: usize = 2;

/// A revision's fleet, loaded or not.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The commit the revision named, when read from git.
    pub commit: Option<String>,
    /// The fleet, or why its specs do not load.
    pub fleet: Result<Fleet, LoadError>,
}

impl Loaded {
    /// Loads the files of `snapshot` (no cache: a folder, or a one-off command).
    pub fn from_snapshot(snapshot: &Snapshot) -> Loaded {
        Loaded {
            commit: snapshot.commit.clone(),
            fleet: load_fleet(&snapshot.files),
        }
    }
}

/// Loaded fleets by tree id, most recently used first.
type Entries = VecDeque<(Oid, Arc<Fleet>)>;

/// The fleets loaded from the most recent [`KEPT_TREES`] git trees. Cloning shares the cache.
#[derive(Debug, Clone, Default)]
pub struct FleetCache {
    entries: Arc<Mutex<Entries>>,
    loads: Arc<AtomicU64>,
}

impl FleetCache {
    /// An empty cache.
    pub fn new() -> FleetCache {
        FleetCache::default()
    }

    /// The fleet of revision `rev` (a branch, tag or commit) of the repository at `repo`: the
    /// cached one when the revision's tree was loaded before, otherwise read and loaded as
    /// [`git::read`] and [`load_fleet`] do, and remembered when it loads.
    ///
    /// # Errors
    /// The repository or revision cannot be read ([`SourceError`]); specs that fail to load are
    /// not an error here but [`Loaded::fleet`].
    pub fn read(&self, repo: &Path, rev: &str) -> Result<Loaded, SourceError> {
        let (commit, tree) = resolve(repo, rev)?;
        if let Some(fleet) = self.get(tree) {
            tracing::debug!(%commit, %tree, "fleet cache hit");
            return Ok(Loaded {
                commit: Some(commit),
                fleet: Ok(fleet.as_ref().clone()),
            });
        }
        let snapshot = git::read(repo, &commit)?;
        self.loads.fetch_add(1, Ordering::Relaxed);
        let loaded = Loaded::from_snapshot(&snapshot);
        if let Ok(fleet) = &loaded.fleet {
            self.put(tree, Arc::new(fleet.clone()));
        }
        Ok(loaded)
    }

    /// How many times this cache (and its clones) loaded a fleet from blobs: every miss.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    fn get(&self, tree: Oid) -> Option<Arc<Fleet>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let at = entries.iter().position(|(id, _)| *id == tree)?;
        let entry = entries.remove(at)?;
        let fleet = Arc::clone(&entry.1);
        entries.push_front(entry);
        Some(fleet)
    }

    fn put(&self, tree: Oid, fleet: Arc<Fleet>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|(id, _)| *id != tree);
        entries.push_front((tree, fleet));
        entries.truncate(KEPT_TREES);
    }
}

/// The commit `rev` names and that commit's root tree.
fn resolve(repo: &Path, rev: &str) -> Result<(String, Oid), SourceError> {
    let repository = Repository::open(repo).map_err(|e| SourceError::GitOpen {
        path: repo.to_owned(),
        message: e.message().to_owned(),
    })?;
    let commit = repository
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| SourceError::GitRev {
            path: repo.to_owned(),
            rev: rev.to_owned(),
            message: e.message().to_owned(),
        })?;
    Ok((commit.id().to_string(), commit.tree_id()))
}

#[cfg(test)]
#[path = "fleets_tests.rs"]
pub(crate) mod tests;
