//! Repositories backed by a real git repository: a linked repository's branches and commits are
//! read from the git repository's `refs/heads/*` before every request, so what tether pushes
//! with git is what the emulated API sees (as on GitHub, where both are one repository).

use super::state::State;
use git2::{ObjectType, Repository, Sort, Tree};
use std::collections::BTreeMap;
use std::path::Path;

/// Largest blob read into a branch snapshot; larger files are listed with a placeholder.
const MAX_BLOB_BYTES: usize = 1 << 20;
/// Most commits remembered per branch (walking back from its tip).
const MAX_COMMITS: usize = 10_000;

/// One branch as read from git: its name and tip, and (when the tip moved since the last read)
/// its files and the commits reachable from the tip.
struct GitBranch {
    name: String,
    sha: String,
    read: Option<(BTreeMap<String, String>, Vec<String>)>,
}

impl State {
    /// Refreshes every linked repository from its git repository. A repository that cannot be
    /// read keeps its last snapshot (logged at WARN).
    pub(super) fn sync_linked(&mut self) {
        let linked: Vec<(String, std::path::PathBuf)> = self
            .repos
            .iter()
            .filter_map(|(key, repo)| repo.git.clone().map(|path| (key.clone(), path)))
            .collect();
        for (key, path) in linked {
            let Some(known) = self.repos.get(&key).map(|r| &r.branches) else {
                continue;
            };
            let branches = match read_branches(&path, known) {
                Ok(branches) => branches,
                Err(e) => {
                    tracing::warn!(repo = %key, path = %path.display(), "cannot read the linked git repository: {e}");
                    continue;
                }
            };
            let Some(repo) = self.repos.get_mut(&key) else {
                continue;
            };
            let mut previous = std::mem::take(&mut repo.branches);
            for branch in branches {
                let files = match branch.read {
                    Some((files, history)) => {
                        repo.commits.extend(history);
                        files
                    }
                    None => previous
                        .remove(&branch.name)
                        .map(|b| b.files)
                        .unwrap_or_default(),
                };
                repo.branches.insert(
                    branch.name,
                    super::state::Branch {
                        sha: branch.sha,
                        files,
                    },
                );
            }
        }
    }
}

/// Every branch of the git repository at `path`; files and history are read only for branches
/// whose tip differs from the one in `known`.
fn read_branches(
    path: &Path,
    known: &BTreeMap<String, super::state::Branch>,
) -> Result<Vec<GitBranch>, git2::Error> {
    let repo = Repository::open(path)?;
    let mut out = Vec::new();
    for reference in repo.references_glob("refs/heads/*")? {
        let reference = reference?;
        let Some(name) = reference.shorthand().map(str::to_owned) else {
            continue;
        };
        let commit = reference.peel_to_commit()?;
        let sha = commit.id().to_string();
        if known.get(&name).is_some_and(|b| b.sha == sha) {
            out.push(GitBranch {
                name,
                sha,
                read: None,
            });
            continue;
        }
        let mut files = BTreeMap::new();
        collect(&repo, &commit.tree()?, "", &mut files)?;
        let mut walk = repo.revwalk()?;
        walk.set_sorting(Sort::TOPOLOGICAL)?;
        walk.push(commit.id())?;
        let history = walk
            .take(MAX_COMMITS)
            .map(|oid| oid.map(|o| o.to_string()))
            .collect::<Result<_, _>>()?;
        out.push(GitBranch {
            name,
            sha,
            read: Some((files, history)),
        });
    }
    Ok(out)
}

fn collect(
    repo: &Repository,
    tree: &Tree<'_>,
    prefix: &str,
    files: &mut BTreeMap<String, String>,
) -> Result<(), git2::Error> {
    for entry in tree {
        let path = format!("{prefix}{}", String::from_utf8_lossy(entry.name_bytes()));
        match entry.kind() {
            Some(ObjectType::Tree) => {
                collect(
                    repo,
                    &repo.find_tree(entry.id())?,
                    &format!("{path}/"),
                    files,
                )?;
            }
            Some(ObjectType::Blob) => {
                let blob = repo.find_blob(entry.id())?;
                let text = if blob.size() > MAX_BLOB_BYTES {
                    format!("(a file of {} bytes, not read)", blob.size())
                } else {
                    String::from_utf8_lossy(blob.content()).into_owned()
                };
                files.insert(path, text);
            }
            _ => {}
        }
    }
    Ok(())
}
