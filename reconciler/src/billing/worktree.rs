//! A billing commit on the branch checked out in a clone: the work tree and the index follow
//! the branch, so `git status` stays clean and a later `git commit -a` does not undo the change.
//!
//! # Guarantees
//! - Before the branch moves (locally or on the remote), every path that differs between the
//!   checked-out commit and the new commit is checked: its index entry and its file must equal
//!   the checked-out commit's. Otherwise nothing is committed ([`BillingError::DirtyWorkTree`]).
//! - A checked-out branch is only moved forward: when the remote's tip does not contain the
//!   checked-out commit (local commits not pushed yet), nothing is committed and the branch is
//!   put back ([`BillingError::Diverged`]).
//! - After the branch moved, exactly those paths are written (or removed) in the work tree and
//!   the index; other files, staged or not, are left as they are.

use super::BillingError;
use git2::{Delta, DiffOptions, ObjectType, Oid, Repository};
use std::path::{Path, PathBuf};

/// The branch checked out in a work tree, and the commit the work tree was checked out at.
#[derive(Debug, Clone)]
pub(super) struct Checkout {
    branch: String,
    workdir: PathBuf,
    /// The commit HEAD named before tether touched the branch.
    at: Oid,
}

/// The checkout of `branch`, when `repo` has a work tree whose HEAD is that branch.
///
/// # Errors
/// HEAD cannot be read.
pub(super) fn of(repo: &Repository, branch: &str) -> Result<Option<Checkout>, git2::Error> {
    let Some(workdir) = repo.workdir() else {
        return Ok(None);
    };
    let head = match repo.head() {
        Ok(head) => head,
        Err(e) if e.code() == git2::ErrorCode::UnbornBranch => return Ok(None),
        Err(e) => return Err(e),
    };
    if head.name() != Some(&format!("refs/heads/{branch}")) {
        return Ok(None);
    }
    Ok(Some(Checkout {
        branch: branch.to_owned(),
        workdir: workdir.to_owned(),
        at: head.peel_to_commit()?.id(),
    }))
}

impl Checkout {
    /// Refuses a commit `new` the work tree cannot follow: the branch tip it builds on
    /// (`tip`) has dropped the checked-out commit, or a path it changes has uncommitted edits.
    /// On refusal the branch is put back to the checked-out commit (a fetch may have moved it).
    ///
    /// # Errors
    /// [`BillingError::Diverged`], [`BillingError::DirtyWorkTree`], or git failed.
    pub(super) fn check(&self, repo: &Repository, tip: Oid, new: Oid) -> Result<(), BillingError> {
        let put_back = || {
            repo.reference(
                &format!("refs/heads/{}", self.branch),
                self.at,
                true,
                "tether: put the checked-out branch back",
            )
        };
        if tip != self.at && !repo.graph_descendant_of(tip, self.at)? {
            put_back()?;
            return Err(BillingError::Diverged {
                branch: self.branch.clone(),
                workdir: self.workdir.clone(),
            });
        }
        let index = repo.index()?;
        let old_tree = repo.find_commit(self.at)?.tree()?;
        let mut dirty = Vec::new();
        for path in self.changed(repo, new)? {
            let committed = old_tree
                .get_path(Path::new(&path))
                .ok()
                .filter(|e| e.kind() == Some(ObjectType::Blob))
                .map(|e| e.id());
            let staged = index.get_path(Path::new(&path), 0).map(|e| e.id);
            let file = self.workdir.join(&path);
            let on_disk = if file.is_file() {
                Some(Oid::hash_file(ObjectType::Blob, &file)?)
            } else {
                None
            };
            if staged != committed || on_disk != committed {
                dirty.push(path);
            }
        }
        if dirty.is_empty() {
            return Ok(());
        }
        put_back()?;
        Err(BillingError::DirtyWorkTree {
            branch: self.branch.clone(),
            workdir: self.workdir.clone(),
            paths: dirty.join(", "),
        })
    }

    /// Brings the work tree to `tip` when a fetch moved the branch and nothing was committed.
    ///
    /// # Errors
    /// As [`Checkout::check`] and [`Checkout::follow`].
    pub(super) fn sync(&self, repo: &Repository, tip: Oid) -> Result<(), BillingError> {
        if tip == self.at {
            return Ok(());
        }
        self.check(repo, tip, tip)?;
        self.follow(repo, tip)
    }

    /// Writes the paths commit `new` changes into the work tree and the index.
    ///
    /// # Errors
    /// A file or the index cannot be written.
    pub(super) fn follow(&self, repo: &Repository, new: Oid) -> Result<(), BillingError> {
        let tree = repo.find_commit(new)?.tree()?;
        let mut index = repo.index()?;
        let io = |path: &Path, e: std::io::Error| {
            BillingError::Git(format!("cannot update `{}`: {e}", path.display()))
        };
        for path in self.changed(repo, new)? {
            let file = self.workdir.join(&path);
            match tree.get_path(Path::new(&path)) {
                Ok(entry) => {
                    let blob = repo.find_blob(entry.id())?;
                    if let Some(dir) = file.parent() {
                        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
                    }
                    std::fs::write(&file, blob.content()).map_err(|e| io(&file, e))?;
                    index.add_path(Path::new(&path))?;
                }
                Err(_) => {
                    if file.is_file() {
                        std::fs::remove_file(&file).map_err(|e| io(&file, e))?;
                    }
                    index.remove_path(Path::new(&path))?;
                }
            }
        }
        index.write()?;
        Ok(())
    }

    /// The file paths that differ between the checked-out commit and `new`.
    fn changed(&self, repo: &Repository, new: Oid) -> Result<Vec<String>, git2::Error> {
        let old = repo.find_commit(self.at)?.tree()?;
        let new = repo.find_commit(new)?.tree()?;
        let diff = repo.diff_tree_to_tree(Some(&old), Some(&new), Some(&mut DiffOptions::new()))?;
        Ok(diff
            .deltas()
            .flat_map(|d| {
                let old = d.old_file().path().map(Path::to_path_buf);
                let new = d.new_file().path().map(Path::to_path_buf);
                match d.status() {
                    Delta::Renamed => vec![old, new],
                    _ => vec![new.or(old)],
                }
            })
            .flatten()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .collect())
    }
}
