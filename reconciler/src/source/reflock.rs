//! Git's ref lock files (`<ref>.lock`) left behind by a process killed in the middle of a ref
//! update: aged and removed, so that the next writer of tether's own refs is not blocked forever.
//!
//! libgit2 (like git) creates `<gitdir>/<ref>.lock`, writes the new value and renames it over
//! the ref; a kill between the two leaves the lock file, and every later update of that ref
//! fails with "locked". A live update holds the file for milliseconds, so one older than
//! [`STALE_AFTER`] belongs to a process that is gone.

use git2::Repository;
use std::time::{Duration, SystemTime};

/// Age after which a ref lock file is taken to be left by a dead process.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// Removes the lock file of `refname` in `repo` when it is older than [`STALE_AFTER`] (as of
/// `now`); returns whether it removed one. A younger lock file is left alone: its writer may
/// still be alive, and the caller's compare-and-swap then loses the race as usual.
pub fn clear_stale(repo: &Repository, refname: &str, now: SystemTime) -> bool {
    let path = repo.path().join(format!("{refname}.lock"));
    let Ok(modified) = std::fs::metadata(&path).and_then(|m| m.modified()) else {
        return false;
    };
    let age = now.duration_since(modified).unwrap_or_default();
    if age < STALE_AFTER || std::fs::remove_file(&path).is_err() {
        return false;
    }
    tracing::warn!(
        lock_file = %path.display(),
        age_seconds = age.as_secs(),
        "removed a ref lock file left by a process that stopped mid-update"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with_lock(age: Duration) -> (tempfile::TempDir, Repository, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tmp");
        let repo = Repository::init_bare(dir.path()).expect("init");
        let lock = dir.path().join("refs/tether/locks/fleet.lock");
        std::fs::create_dir_all(lock.parent().expect("parent")).expect("mkdir");
        let file = std::fs::File::create(&lock).expect("lock file");
        file.set_modified(SystemTime::now() - age).expect("mtime");
        (dir, repo, lock)
    }

    #[test]
    fn an_old_lock_file_is_removed_and_a_fresh_one_kept() {
        let (_dir, repo, lock) = repo_with_lock(Duration::from_secs(2));
        assert!(!clear_stale(
            &repo,
            "refs/tether/locks/fleet",
            SystemTime::now()
        ));
        assert!(
            lock.exists(),
            "a writer may still hold a two-second-old lock"
        );

        let (_dir, repo, lock) = repo_with_lock(Duration::from_secs(60));
        assert!(clear_stale(
            &repo,
            "refs/tether/locks/fleet",
            SystemTime::now()
        ));
        assert!(!lock.exists());
        assert!(
            !clear_stale(&repo, "refs/tether/locks/fleet", SystemTime::now()),
            "nothing left to remove"
        );
    }

    #[test]
    fn after_a_stale_lock_is_cleared_the_ref_can_be_updated_again() {
        let (dir, repo, _lock) = repo_with_lock(Duration::from_secs(60));
        let sig = git2::Signature::now("t", "t@localhost").expect("sig");
        let tree = repo
            .find_tree(
                repo.treebuilder(None)
                    .and_then(|t| t.write())
                    .expect("tree"),
            )
            .expect("tree");
        let commit = repo
            .commit(None, &sig, &sig, "lease", &tree, &[])
            .expect("commit");
        let blocked = repo.reference("refs/tether/locks/fleet", commit, true, "t");
        assert_eq!(
            blocked.map(|_| ()).map_err(|e| e.code()),
            Err(git2::ErrorCode::Locked),
            "the left-over lock file blocks the update"
        );
        assert!(clear_stale(
            &repo,
            "refs/tether/locks/fleet",
            SystemTime::now()
        ));
        repo.reference("refs/tether/locks/fleet", commit, true, "t")
            .expect("updated once the lock is cleared");
        drop(dir);
    }
}
