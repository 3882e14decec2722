//! Reading a fleet from a git revision through libgit2, without a checkout: the tree of the
//! commit is walked in the object database.
//!
//! Symlinks and submodules in the tree are reported, never followed; blobs larger than the spec
//! limit are reported by size (read from the object header) without being loaded.

use super::{Content, MAX_DIR_DEPTH, Snapshot, SourceError, SourceFile};
use git2::{ObjectType, Odb, Repository, Tree};
use std::path::Path;
use tether_schema::{FLEET_FILE, MAX_SPEC_BYTES, is_fleet_path};

const MODE_SYMLINK: i32 = 0o120_000;
const MODE_SUBMODULE: i32 = 0o160_000;

/// Reads the fleet files of revision `rev` (a branch, tag or commit) in the repository at `repo`.
///
/// # Errors
/// The repository cannot be opened, the revision does not name a commit, or an object is
/// missing from the object database.
pub fn read(repo: &Path, rev: &str) -> Result<Snapshot, SourceError> {
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
    let id = commit.id().to_string();
    let read_err = |e: git2::Error| SourceError::GitRead {
        path: repo.to_owned(),
        commit: id.clone(),
        message: e.message().to_owned(),
    };
    let tree = commit.tree().map_err(read_err)?;
    let files = tree_files(&repository, &tree).map_err(read_err)?;
    Ok(Snapshot {
        files,
        commit: Some(id),
    })
}

/// The commits that hold a fleet, newest first, at most `limit`: those reachable from `rev` (a
/// branch, tag or commit), or with `None` (a working tree) from `HEAD` and every local branch.
/// Where a restarted daemon looks for the spec its agents last ran.
///
/// # Errors
/// The repository cannot be opened, `rev` does not name a commit, or the history cannot be
/// walked.
pub fn history(repo: &Path, rev: Option<&str>, limit: usize) -> Result<Vec<String>, SourceError> {
    let repository = Repository::open(repo).map_err(|e| SourceError::GitOpen {
        path: repo.to_owned(),
        message: e.message().to_owned(),
    })?;
    let rev_err = |e: git2::Error| SourceError::GitRev {
        path: repo.to_owned(),
        rev: rev.unwrap_or("HEAD").to_owned(),
        message: e.message().to_owned(),
    };
    let mut walk = repository.revwalk().map_err(rev_err)?;
    walk.set_sorting(git2::Sort::TIME).map_err(rev_err)?;
    match rev {
        Some(rev) => {
            let start = repository
                .revparse_single(rev)
                .and_then(|o| o.peel_to_commit())
                .map_err(rev_err)?;
            walk.push(start.id()).map_err(rev_err)?;
        }
        None => {
            // An unborn HEAD or a repository without branches leaves nothing to walk.
            let _ = walk.push_head();
            let _ = walk.push_glob("refs/heads/*");
        }
    }
    let holds_fleet = |id: git2::Oid| {
        repository
            .find_commit(id)
            .and_then(|c| c.tree())
            .is_ok_and(|t| t.get_name(FLEET_FILE).is_some())
    };
    Ok(walk
        .filter_map(Result::ok)
        .filter(|id| holds_fleet(*id))
        .take(limit)
        .map(|id| id.to_string())
        .collect())
}

/// The fleet files of a tree, sorted by path.
///
/// # Errors
/// An object is missing from the object database.
pub fn tree_files(repo: &Repository, tree: &Tree<'_>) -> Result<Vec<SourceFile>, git2::Error> {
    let mut files = Vec::new();
    let odb = repo.odb()?;
    walk(repo, &odb, tree, "", 0, &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn walk(
    repo: &Repository,
    odb: &Odb<'_>,
    tree: &Tree<'_>,
    prefix: &str,
    depth: usize,
    files: &mut Vec<SourceFile>,
) -> Result<(), git2::Error> {
    for item in tree {
        let name = String::from_utf8_lossy(item.name_bytes());
        let path = format!("{prefix}{name}");
        let is_tree = item.kind() == Some(ObjectType::Tree);
        let wanted = if is_tree {
            // Descend only into agents/ and below.
            is_fleet_path(&format!("{path}/"))
        } else {
            path == FLEET_FILE || is_fleet_path(&path)
        };
        if !wanted {
            continue;
        }
        if is_tree && depth < MAX_DIR_DEPTH {
            let sub = repo.find_tree(item.id())?;
            walk(repo, odb, &sub, &format!("{path}/"), depth + 1, files)?;
            continue;
        }
        let content = if is_tree {
            Content::Unreadable {
                reason: format!("folders nested deeper than {MAX_DIR_DEPTH} levels are not read"),
            }
        } else if item.filemode() == MODE_SUBMODULE {
            Content::Unreadable {
                reason: "a git submodule, not a file".into(),
            }
        } else {
            // The header first, so a large blob is never inflated; then the object straight
            // from the object database (no object cache: each blob is read once).
            let (size, _) = odb.read_header(item.id())?;
            if item.filemode() == MODE_SYMLINK {
                Content::Symlink {
                    target: String::from_utf8_lossy(blob(odb, item.id())?.data()).into_owned(),
                }
            } else if size as u64 > MAX_SPEC_BYTES {
                Content::TooLarge { size: size as u64 }
            } else {
                Content::Bytes(blob(odb, item.id())?.data().to_vec())
            }
        };
        files.push(SourceFile { path, content });
    }
    Ok(())
}

/// The blob `id`, read from the object database.
///
/// # Errors
/// The object is missing, or is not a blob.
fn blob<'o>(odb: &'o Odb<'_>, id: git2::Oid) -> Result<git2::OdbObject<'o>, git2::Error> {
    let object = odb.read(id)?;
    if object.kind() != ObjectType::Blob {
        return Err(git2::Error::from_str(&format!(
            "object {id} is a {}, not a blob",
            object.kind()
        )));
    }
    Ok(object)
}
