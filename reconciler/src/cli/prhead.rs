//! `tether plan --github-pr N` plans the pull request's head or nothing: before any status is
//! set, the fleet files about to be planned are compared with the fleet files of the head
//! commit GitHub names. A plan of another tree is refused (docs/decisions/015).

use super::CliError;
use super::common::SourceArgs;
use crate::forge::PrNumber;
use crate::source::{Snapshot, SourceFile, git};
use git2::{Oid, Repository};
use std::collections::BTreeMap;
use std::path::Path;

/// How many differing paths a refusal lists.
const LISTED: usize = 5;

/// Checks that `snapshot` holds the fleet files of `head`, the head commit of `pr`.
///
/// - With `--git REPO --rev REV`: REV is the head commit, or a commit whose fleet files are
///   byte for byte those of the head (which must then be in REPO).
/// - With `--fleet DIR` (or the current directory): DIR lies in a git checkout holding the
///   head commit, and the fleet files on disk, uncommitted edits included, are those of the
///   head at the same place in the tree.
///
/// # Errors
/// A usage error naming the tree planned, the head, and how to plan the head instead.
pub fn ensure_head(
    source: &SourceArgs,
    snapshot: &Snapshot,
    pr: PrNumber,
    head: &str,
) -> Result<(), CliError> {
    if snapshot.commit.as_deref() == Some(head) {
        return Ok(());
    }
    let hint = format!(
        "plan the head itself: `--git REPO --rev {head}` (fetch it with `git fetch origin pull/{}/head`); in GitHub Actions check out `github.event.pull_request.head.sha`, not the merge ref",
        pr.0
    );
    let (repo_path, subdir) = match (&source.git, &snapshot.commit) {
        (Some(repo), Some(_)) => (repo.clone(), None),
        _ => {
            let dir = source.fleet.as_deref().unwrap_or(Path::new("."));
            let not_checkout = || {
                CliError::usage(
                    format!(
                        "`{}` is not a git checkout, so tether cannot tell whether it holds pull request {pr}'s head {}; nothing was posted",
                        dir.display(),
                        short(head)
                    ),
                    hint.clone(),
                )
            };
            let repo = Repository::discover(dir).map_err(|_| not_checkout())?;
            let workdir = repo.workdir().ok_or_else(not_checkout)?;
            let (dir, workdir) = (canonical(dir), canonical(workdir));
            let sub = dir
                .strip_prefix(&workdir)
                .map(Path::to_path_buf)
                .map_err(|_| not_checkout())?;
            (workdir, Some(sub))
        }
    };
    let planned = match &snapshot.commit {
        Some(commit) => format!("commit {}", short(commit)),
        None => "the folder's files".to_owned(),
    };
    let head_files = head_files(&repo_path, head, subdir.as_deref()).map_err(|why| {
        CliError::usage(
            format!(
                "cannot compare {planned} with pull request {pr}'s head {}: {why}; nothing was posted",
                short(head)
            ),
            hint.clone(),
        )
    })?;
    let differ = differing(&snapshot.files, &head_files);
    if differ.is_empty() {
        return Ok(());
    }
    let mut listed = differ
        .iter()
        .take(LISTED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if differ.len() > LISTED {
        listed.push_str(&format!(" and {} more", differ.len() - LISTED));
    }
    Err(CliError::usage(
        format!(
            "{planned} is not pull request {pr}'s head {}: the fleet files differ ({listed}); nothing was posted",
            short(head)
        ),
        hint,
    ))
}

/// The fleet files of `head` in the repository at `repo`, under `subdir` of its tree.
fn head_files(repo: &Path, head: &str, subdir: Option<&Path>) -> Result<Vec<SourceFile>, String> {
    let repository = Repository::open(repo).map_err(|e| e.message().to_owned())?;
    let oid = Oid::from_str(head).map_err(|e| e.message().to_owned())?;
    let commit = repository
        .find_commit(oid)
        .map_err(|_| format!("the head commit is not in `{}`", repo.display()))?;
    let mut tree = commit.tree().map_err(|e| e.message().to_owned())?;
    if let Some(sub) = subdir.filter(|s| !s.as_os_str().is_empty()) {
        let entry = tree
            .get_path(sub)
            .map_err(|_| format!("the head has no folder `{}`", sub.display()))?;
        tree = repository
            .find_tree(entry.id())
            .map_err(|_| format!("`{}` is not a folder in the head", sub.display()))?;
    }
    git::tree_files(&repository, &tree).map_err(|e| e.message().to_owned())
}

/// Paths present on one side only or with different contents, sorted.
fn differing(planned: &[SourceFile], head: &[SourceFile]) -> Vec<String> {
    let index = |files: &[SourceFile]| {
        files
            .iter()
            .map(|f| (f.path.clone(), f.content.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let (a, b) = (index(planned), index(head));
    let mut paths: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|p| a.get(*p) != b.get(*p))
        .cloned()
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

fn canonical(path: &Path) -> std::path::PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Content;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.to_owned(),
            content: Content::Bytes(text.as_bytes().to_vec()),
        }
    }

    #[test]
    fn differing_paths_are_those_added_removed_or_changed() {
        let planned = [file("fleet.yaml", "a"), file("agents/x.yaml", "1")];
        let head = [file("fleet.yaml", "a"), file("agents/y.yaml", "1")];
        assert_eq!(
            differing(&planned, &head),
            ["agents/x.yaml", "agents/y.yaml"]
        );
        assert!(differing(&planned, &planned).is_empty());
    }
}
