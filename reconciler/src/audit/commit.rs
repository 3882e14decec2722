//! Writing a status commit to the status branch through libgit2, and pushing it without ever
//! forcing: on a non-fast-forward the status change is rebuilt on the new tip and pushed again.

use super::signing::{self, Signer};
use crate::source::{publish, reflock};
use git2::{Oid, Repository, Signature};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Attempts at pushing before giving up on a contended status branch.
pub const MAX_PUSH_ATTEMPTS: usize = 5;
/// The folder of the status branch tether owns.
pub const STATUS_DIR: &str = "status";

/// Who tether commits as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// The key commits are signed with; unsigned without one ([`super::signing`]).
    pub signer: Option<Arc<Signer>>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            name: "tether".to_owned(),
            email: "tether@localhost".to_owned(),
            signer: None,
        }
    }
}

/// Where and how to write.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// A local repository (bare mirror or clone).
    pub repo: &'a Path,
    /// The remote to push to (a URL or a remote name), when the repository is a mirror.
    pub remote: Option<&'a str>,
    /// The status branch.
    pub branch: &'a str,
    /// The branch billing writes; refused as a status branch.
    pub source_branch: &'a str,
    /// Commit author and committer.
    pub identity: &'a Identity,
}

/// A status commit could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The status branch is the source branch.
    #[error(
        "refusing to write status to `{0}`: it is the branch the fleet specs live on; configure another status branch"
    )]
    SourceBranch(String),
    /// libgit2 failed.
    #[error("git: writing status to `{branch}` in {repo}: {message}")]
    Git {
        /// The repository.
        repo: String,
        /// The branch.
        branch: String,
        /// libgit2's message.
        message: String,
    },
    /// The push kept losing races.
    #[error(
        "the status branch `{0}` kept moving; gave up after {MAX_PUSH_ATTEMPTS} attempts (nothing was forced)"
    )]
    Contended(String),
}

/// Writes `files` (file names inside `status/`, replacing that folder wholly) as one commit with
/// `message` on the status branch, and pushes it when a remote is given.
///
/// # Guarantees
/// - Never force-pushes and never writes the source branch.
/// - Makes no commit when the files are unchanged: returns `Ok(None)`.
///
/// # Errors
/// libgit2 failures, or [`CommitError::Contended`] after [`MAX_PUSH_ATTEMPTS`] lost races.
pub fn write(
    target: &Target<'_>,
    files: &BTreeMap<String, String>,
    message: &str,
) -> Result<Option<Oid>, CommitError> {
    land(target, message, |repo, parent| {
        let tree = build_tree(repo, parent.map(|p| p.tree()).transpose()?.as_ref(), files)?;
        Ok((parent.is_none_or(|p| p.tree_id() != tree)).then_some(tree))
    })
}

/// Records `message` on the status branch as a commit that changes no file: an event that is
/// not a pass (a purge request), pushed like [`write`]'s commits.
///
/// # Errors
/// As [`write`]'s.
pub fn note(target: &Target<'_>, message: &str) -> Result<Oid, CommitError> {
    let written = land(target, message, |repo, parent| {
        Ok(Some(match parent {
            Some(p) => p.tree_id(),
            None => repo.treebuilder(None)?.write()?,
        }))
    })?;
    written.ok_or_else(|| CommitError::Contended(target.branch.to_owned()))
}

/// The loop [`write`] and [`note`] share: `tree_for` gives the tree to commit on the current tip
/// (`None`: nothing to commit), then the commit lands by compare-and-swap or a push that never
/// forces, rebuilt on a lost race.
fn land(
    target: &Target<'_>,
    message: &str,
    tree_for: impl Fn(&Repository, Option<&git2::Commit<'_>>) -> Result<Option<Oid>, git2::Error>,
) -> Result<Option<Oid>, CommitError> {
    if target.branch == target.source_branch {
        return Err(CommitError::SourceBranch(target.branch.to_owned()));
    }
    let git = |e: git2::Error| CommitError::Git {
        repo: target.repo.display().to_string(),
        branch: target.branch.to_owned(),
        message: e.message().to_owned(),
    };
    let repo = Repository::open(target.repo).map_err(git)?;
    let local_ref = format!("refs/heads/{}", target.branch);
    for _ in 0..MAX_PUSH_ATTEMPTS {
        if let Some(remote) = target.remote {
            publish::fetch_branch(&repo, remote, target.branch).map_err(git)?;
        }
        let parent = repo
            .find_reference(&local_ref)
            .ok()
            .and_then(|r| r.peel_to_commit().ok());
        let Some(tree) = tree_for(&repo, parent.as_ref()).map_err(git)? else {
            return Ok(None);
        };
        let tree = repo.find_tree(tree).map_err(git)?;
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let who = Signature::now(&target.identity.name, &target.identity.email).map_err(git)?;
        let signer = target.identity.signer.as_deref();
        let oid = signing::commit(&repo, &who, signer, message, &tree, &parents).map_err(git)?;
        match target.remote {
            None => {
                reflock::clear_stale(&repo, &local_ref, std::time::SystemTime::now());
                let updated = match &parent {
                    Some(p) => {
                        repo.reference_matching(&local_ref, oid, true, p.id(), "tether status")
                    }
                    None => repo.reference(&local_ref, oid, false, "tether status"),
                };
                if updated.is_ok() {
                    return Ok(Some(oid));
                }
            }
            Some(remote) => {
                if publish::fast_forward(&repo, remote, oid, target.branch).map_err(git)? {
                    repo.reference(&local_ref, oid, true, "tether status pushed")
                        .map_err(git)?;
                    return Ok(Some(oid));
                }
                tracing::info!(
                    branch = target.branch,
                    "status push lost a race; rebuilding on the new tip"
                );
            }
        }
    }
    Err(CommitError::Contended(target.branch.to_owned()))
}

/// The parent's root tree with `status/` replaced by `files` (file names inside `status/`).
fn build_tree(
    repo: &Repository,
    parent: Option<&git2::Tree<'_>>,
    files: &BTreeMap<String, String>,
) -> Result<Oid, git2::Error> {
    let mut status = repo.treebuilder(None)?;
    for (name, content) in files {
        status.insert(name, repo.blob(content.as_bytes())?, 0o100_644)?;
    }
    let mut root = repo.treebuilder(parent)?;
    if root.get(STATUS_DIR)?.is_some() {
        root.remove(STATUS_DIR)?;
    }
    if !files.is_empty() {
        root.insert(STATUS_DIR, status.write()?, 0o040_000)?;
    }
    root.write()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn target<'a>(repo: &'a Path, remote: Option<&'a str>, identity: &'a Identity) -> Target<'a> {
        Target {
            repo,
            remote,
            branch: "tether/status",
            source_branch: "main",
            identity,
        }
    }

    fn read(repo: &Path, branch: &str, file: &str) -> String {
        let r = Repository::open(repo).expect("open");
        let tree = r
            .revparse_single(branch)
            .expect("branch")
            .peel_to_commit()
            .expect("commit")
            .tree()
            .expect("tree");
        let entry = tree.get_path(Path::new(file)).expect("file");
        String::from_utf8(r.find_blob(entry.id()).expect("blob").content().to_vec()).expect("utf-8")
    }

    #[test]
    fn writes_once_and_makes_no_commit_when_nothing_changed() {
        let dir = tempfile::tempdir().expect("tmp");
        Repository::init_bare(dir.path()).expect("init");
        let id = Identity::default();
        let first = write(
            &target(dir.path(), None, &id),
            &files(&[("fleet.yaml", "agents: 1\n")]),
            "apply a: +1",
        )
        .expect("write");
        assert!(first.is_some());
        let again = write(
            &target(dir.path(), None, &id),
            &files(&[("fleet.yaml", "agents: 1\n")]),
            "apply a: +0",
        )
        .expect("write");
        assert_eq!(again, None);
        assert_eq!(
            read(dir.path(), "tether/status", "status/fleet.yaml"),
            "agents: 1\n"
        );
    }

    #[test]
    fn refuses_to_write_the_source_branch() {
        let dir = tempfile::tempdir().expect("tmp");
        Repository::init_bare(dir.path()).expect("init");
        let id = Identity::default();
        let mut t = target(dir.path(), None, &id);
        t.branch = "main";
        assert!(matches!(
            write(&t, &files(&[("fleet.yaml", "x")]), "m"),
            Err(CommitError::SourceBranch(_))
        ));
    }

    #[test]
    fn a_push_race_is_resolved_by_rebuilding_on_the_new_tip_never_by_force() {
        let remote = tempfile::tempdir().expect("tmp");
        Repository::init_bare(remote.path()).expect("init remote");
        let url = format!("file://{}", remote.path().display());
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        Repository::init_bare(a.path()).expect("init a");
        Repository::init_bare(b.path()).expect("init b");
        let id = Identity::default();
        write(
            &target(a.path(), Some(&url), &id),
            &files(&[("x.yaml", "from a\n"), ("fleet.yaml", "1\n")]),
            "first",
        )
        .expect("a writes");
        // b's local view is stale (it never fetched), yet its write lands on top of a's.
        write(
            &target(b.path(), Some(&url), &id),
            &files(&[("y.yaml", "from b\n"), ("fleet.yaml", "2\n")]),
            "second",
        )
        .expect("b writes");
        let r = Repository::open(remote.path()).expect("open remote");
        let tip = r
            .revparse_single("tether/status")
            .expect("tip")
            .peel_to_commit()
            .expect("commit");
        assert_eq!(tip.message(), Some("second"));
        assert_eq!(
            tip.parent(0).expect("parent is a's commit").message(),
            Some("first")
        );
        assert_eq!(
            read(remote.path(), "tether/status", "status/fleet.yaml"),
            "2\n"
        );
    }
}
