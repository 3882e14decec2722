//! The daemon's ledger cache: a [`Ledger`] is a pure function of the `status/` tree it was read
//! from, so the daemon keeps the last one it read, keyed by that tree's id, and a pass whose
//! status branch has not moved since reads no blob and parses no document.
//!
//! # Guarantees
//! - A cached ledger is exactly what [`Ledger::from_files`] returned for the same tree: the
//!   key is the `status/` tree's id, which names every byte the ledger is read from.
//! - The branch's tip is resolved on every read (after any fetch), so a status commit written
//!   by this daemon, another replica or a person is always seen.
//!
//! # Assumptions
//! - One process: the cache lives in memory and dies with the daemon.

use super::ledger::{self, Ledger, LedgerError};
use git2::{Oid, Repository};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// The last ledger read, by the id of its `status/` tree.
#[derive(Debug, Default)]
pub struct LedgerCache {
    last: Mutex<Option<(Oid, Ledger)>>,
}

impl LedgerCache {
    /// An empty cache.
    pub fn new() -> LedgerCache {
        LedgerCache::default()
    }

    /// What [`Ledger::read`] reads from `branch` of `repo`, taken from the cache when the
    /// branch's `status/` tree is the one read last.
    ///
    /// # Errors
    /// The repository cannot be opened, or the branch's tip cannot be read.
    pub fn read(&self, repo: &Path, branch: &str) -> Result<Ledger, LedgerError> {
        let err = |e: git2::Error| LedgerError::new(repo, branch, e.message());
        let r = Repository::open(repo).map_err(err)?;
        let Some(refname) = ledger::status_ref(&r, branch) else {
            return Ok(Ledger::default());
        };
        let Some(tree) = ledger::status_tree(&r, &refname).map_err(err)? else {
            return Ok(Ledger::default());
        };
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((id, ledger)) = last.as_ref()
            && *id == tree
        {
            return Ok(ledger.clone());
        }
        let ledger = Ledger::from_files(ledger::tree_files(&r, tree).map_err(err)?);
        *last = Some((tree, ledger.clone()));
        Ok(ledger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits `status/fleet.yaml` with `text` on `branch` of `repo`.
    fn record(repo: &Repository, branch: &str, text: &str) {
        let blob = repo.blob(text.as_bytes()).expect("blob");
        let mut status = repo.treebuilder(None).expect("treebuilder");
        status
            .insert(ledger::FLEET_FILE, blob, 0o100_644)
            .expect("insert");
        let status = status.write().expect("status tree");
        let mut root = repo.treebuilder(None).expect("treebuilder");
        root.insert(super::super::commit::STATUS_DIR, status, 0o040_000)
            .expect("insert");
        let tree = repo.find_tree(root.write().expect("root")).expect("tree");
        let sig = git2::Signature::now("t", "t@example.com").expect("signature");
        let parent = repo
            .find_reference(&format!("refs/heads/{branch}"))
            .and_then(|r| r.peel_to_commit())
            .ok();
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(
            Some(&format!("refs/heads/{branch}")),
            &sig,
            &sig,
            "status",
            &tree,
            &parents,
        )
        .expect("commit");
    }

    #[test]
    fn an_unmoved_branch_reads_as_before_and_a_moved_one_is_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init_bare(dir.path()).expect("init");
        let cache = LedgerCache::new();
        assert_eq!(
            cache.read(dir.path(), "status").expect("read"),
            Ledger::default(),
            "no branch yet"
        );
        record(&repo, "status", "agents: 2\nplanHash: h1\n");
        let first = cache.read(dir.path(), "status").expect("read");
        assert_eq!(first.baseline.as_ref().map(|b| b.agents), Some(2));
        assert_eq!(
            cache.read(dir.path(), "status").expect("read"),
            Ledger::read(dir.path(), "status").expect("read")
        );
        record(&repo, "status", "agents: 3\nplanHash: h2\n");
        let moved = cache.read(dir.path(), "status").expect("read");
        assert_eq!(moved.baseline.as_ref().map(|b| b.agents), Some(3));
        assert_eq!(moved, Ledger::read(dir.path(), "status").expect("read"));
    }
}
