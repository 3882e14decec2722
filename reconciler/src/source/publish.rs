//! Moving a branch of a remote repository with libgit2, never by force: fetch one branch into
//! the local branch of the same name, and push a commit that must fast-forward. Status commits,
//! billing commits and billing's pull-request branches all publish through here.

use git2::{ErrorCode, PushOptions, RemoteCallbacks, Repository};
use std::cell::RefCell;

/// Fetches `branch` of `remote` (a URL or a configured remote's name) into the local
/// `refs/heads/<branch>`, forcing the local ref to the remote's value. Returns whether the
/// remote advertises the branch; when it does not, nothing is fetched and the local branch is
/// left as it was.
///
/// # Errors
/// The remote cannot be reached or read.
pub fn fetch_branch(repo: &Repository, remote: &str, branch: &str) -> Result<bool, git2::Error> {
    let mut r = open_remote(repo, remote)?;
    // Fetched into a scratch ref first: a fetch of a branch the remote lacks succeeds with
    // nothing, so only the scratch ref tells whether the remote has it.
    let scratch = format!("refs/tether/fetched/{branch}");
    if let Ok(mut stale) = repo.find_reference(&scratch) {
        stale.delete()?;
    }
    r.fetch(&[&format!("+refs/heads/{branch}:{scratch}")], None, None)?;
    let Ok(mut fetched) = repo.find_reference(&scratch) else {
        return Ok(false);
    };
    let tip = fetched.peel_to_commit()?.id();
    fetched.delete()?;
    repo.reference(&format!("refs/heads/{branch}"), tip, true, "tether fetch")?;
    Ok(true)
}

/// Pushes commit `oid` to `branch` of `remote` without force. `Ok(false)` when the remote
/// refused because the branch moved (not a fast-forward): fetch, rebuild and try again.
///
/// # Errors
/// The remote cannot be reached, or refused for another reason.
pub fn fast_forward(
    repo: &Repository,
    remote: &str,
    oid: git2::Oid,
    branch: &str,
) -> Result<bool, git2::Error> {
    let outgoing = "refs/tether/outgoing";
    repo.reference(outgoing, oid, true, "tether outgoing")?;
    let mut r = open_remote(repo, remote)?;
    let rejected = RefCell::new(None);
    let mut callbacks = RemoteCallbacks::new();
    callbacks.push_update_reference(|_, status| {
        if let Some(msg) = status {
            *rejected.borrow_mut() = Some(msg.to_owned());
        }
        Ok(())
    });
    let mut opts = PushOptions::new();
    opts.remote_callbacks(callbacks);
    let result = r.push(
        &[format!("{outgoing}:refs/heads/{branch}")],
        Some(&mut opts),
    );
    let _ = repo.find_reference(outgoing).and_then(|mut r| r.delete());
    match result {
        Ok(()) => Ok(rejected.borrow().is_none()),
        Err(e)
            if e.code() == ErrorCode::NotFastForward
                || e.message().contains("fast-forward")
                || e.message().contains("fast forward") =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The configured remote called `remote`, or else an anonymous remote with `remote` as URL.
fn open_remote<'r>(repo: &'r Repository, remote: &str) -> Result<git2::Remote<'r>, git2::Error> {
    repo.find_remote(remote)
        .or_else(|_| repo.remote_anonymous(remote))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, message: &str, parent: Option<git2::Oid>) -> git2::Oid {
        let sig = git2::Signature::now("t", "t@example.com").expect("signature");
        let tree = repo
            .find_tree(
                repo.treebuilder(None)
                    .expect("builder")
                    .write()
                    .expect("tree"),
            )
            .expect("tree");
        let parents: Vec<git2::Commit<'_>> = parent
            .map(|p| repo.find_commit(p).expect("parent"))
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(
            Some("refs/heads/main"),
            &sig,
            &sig,
            message,
            &tree,
            &parents,
        )
        .expect("commit")
    }

    #[test]
    fn a_push_that_is_not_a_fast_forward_is_refused_and_fetch_reports_missing_branches() {
        let dir = tempfile::tempdir().expect("temp dir");
        let remote = Repository::init_bare(dir.path().join("remote.git")).expect("remote");
        let local = Repository::init_bare(dir.path().join("local.git")).expect("local");
        let url = format!("file://{}", dir.path().join("remote.git").display());
        let base = commit(&remote, "base", None);
        assert!(!fetch_branch(&local, &url, "absent").expect("fetch"));
        local.remote("origin", &url).expect("named remote");
        assert!(fetch_branch(&local, "origin", "main").expect("a remote by name"));
        let ahead = commit(&local, "local", Some(base));
        let moved = commit(&remote, "remote", Some(base));
        assert!(
            !fast_forward(&local, &url, ahead, "main").expect("push"),
            "remote moved"
        );
        assert_eq!(
            remote.refname_to_id("refs/heads/main").expect("main"),
            moved
        );
        assert!(fetch_branch(&local, &url, "main").expect("fetch"));
        let next = commit(&local, "rebuilt", Some(moved));
        assert!(fast_forward(&local, &url, next, "main").expect("push"));
        assert_eq!(remote.refname_to_id("refs/heads/main").expect("main"), next);
    }
}
