//! The fleet as billing sees it at one commit: which spec file holds a subscription, and
//! whether the tree stays valid after one file changes. With the [`Index`] this reads
//! `fleet.yaml` and, unless the index already describes this `agents/` tree (the one billing
//! wrote last), the tree's entries and the files not checked before; the whole fleet is loaded
//! only to report problems, or when the tree holds something the index does not cover
//! (symlinks, submodules, folders nested too deep).
//!
//! # Guarantees
//! - A change is accepted exactly when [`tether_schema::load_fleet`] accepts the new tree:
//!   every other spec was checked, alone, against the same `fleet.yaml` (the index proves it
//!   by blob), the changed one is checked now, and names and subscriptions are unique across
//!   all of them. Refusals carry `load_fleet`'s diagnostics, every problem at once.

use super::BillingError;
use super::index::{Checked, Index};
use crate::source::MAX_DIR_DEPTH;
use crate::source::git::tree_files;
use git2::{ObjectType, Oid, Repository, Tree};
use std::collections::HashMap;
use tether_schema::incremental::FleetCheck;
use tether_schema::{AGENTS_DIR, Content, FLEET_FILE, SourceFile, load_fleet};

const MODE_FILE: i32 = 0o100_644;
const MODE_EXECUTABLE: i32 = 0o100_755;

/// One tree, indexed or read whole.
pub(super) enum View {
    /// Every spec file checked, as the [`Index`] now describes them, with `fleet.yaml` ready to
    /// check more.
    Indexed(Box<FleetCheck>),
    /// The tree's fleet files as [`tree_files`] reads them: the index does not cover it, or
    /// it is not valid as it stands.
    Files(Vec<SourceFile>),
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            View::Indexed(_) => write!(f, "View::Indexed"),
            View::Files(files) => write!(f, "View::Files({} files)", files.len()),
        }
    }
}

/// A regular file of the tree that the loader reads.
struct Entry {
    path: String,
    blob: Oid,
}

/// The spec files of `tree`, or `None` when it holds anything else the loader would report
/// under `agents/` (a symlink, a submodule, a folder nested too deep, a path that is not UTF-8
/// or holds a tab or line break).
fn entries(tree: &Tree<'_>, repo: &Repository) -> Result<Option<Vec<Entry>>, git2::Error> {
    let mut specs = Vec::new();
    if let Some(dir) = tree.get_name(AGENTS_DIR.trim_end_matches('/')) {
        if dir.kind() != Some(ObjectType::Tree) {
            return Ok(None);
        }
        let dir = repo.find_tree(dir.id())?;
        if !walk(repo, &dir, AGENTS_DIR, 1, &mut specs)? {
            return Ok(None);
        }
    }
    Ok(Some(specs))
}

fn walk(
    repo: &Repository,
    tree: &Tree<'_>,
    prefix: &str,
    depth: usize,
    out: &mut Vec<Entry>,
) -> Result<bool, git2::Error> {
    for item in tree {
        let Some(name) = item.name().filter(|n| !n.contains(['\t', '\n', '\r'])) else {
            return Ok(false);
        };
        let path = format!("{prefix}{name}");
        match (item.kind(), item.filemode()) {
            (Some(ObjectType::Tree), _) if depth < MAX_DIR_DEPTH => {
                if !walk(
                    repo,
                    &repo.find_tree(item.id())?,
                    &format!("{path}/"),
                    depth + 1,
                    out,
                )? {
                    return Ok(false);
                }
            }
            (Some(ObjectType::Blob), MODE_FILE | MODE_EXECUTABLE) => out.push(Entry {
                path,
                blob: item.id(),
            }),
            _ => return Ok(false),
        }
    }
    Ok(true)
}

fn read(repo: &Repository, path: &str, blob: Oid) -> Result<SourceFile, git2::Error> {
    Ok(SourceFile {
        path: path.to_owned(),
        content: Content::Bytes(repo.find_blob(blob)?.content().to_vec()),
    })
}

impl View {
    /// The view of `tree`, leaving `index` describing its spec files.
    ///
    /// # Errors
    /// An object is missing from the object database.
    pub fn of(repo: &Repository, tree: &Tree<'_>, index: &mut Index) -> Result<View, git2::Error> {
        let whole = || Ok(View::Files(tree_files(repo, tree)?));
        let Some(fleet) = tree
            .get_name(FLEET_FILE)
            .filter(|e| e.kind() == Some(ObjectType::Blob))
            .filter(|e| matches!(e.filemode(), MODE_FILE | MODE_EXECUTABLE))
            .map(|e| e.id())
        else {
            return whole();
        };
        let Ok(check) = FleetCheck::new(&read(repo, FLEET_FILE, fleet)?) else {
            return whole();
        };
        if index.describes(fleet, agents_tree(tree)) {
            return Ok(View::Indexed(Box::new(check)));
        }
        let Some(entries) = entries(tree, repo)? else {
            return whole();
        };
        let mut specs = HashMap::with_capacity(entries.len());
        for Entry { path, blob } in entries {
            let checked = match index.spec(fleet, &path, blob) {
                Some(known) => known,
                None => match check.agent(&read(repo, &path, blob)?) {
                    Ok(Some(agent)) => Checked::Agent {
                        name: agent.name.as_str().to_owned(),
                        subscription: agent.subscription.as_str().to_owned(),
                    },
                    Ok(None) => Checked::Skipped,
                    Err(_) => return whole(),
                },
            };
            specs.insert((path, blob), checked);
        }
        if duplicate(specs.iter().map(|((p, _), c)| (p.as_str(), c))).is_some() {
            return whole();
        }
        index.set_specs(fleet, agents_tree(tree), specs);
        Ok(View::Indexed(Box::new(check)))
    }

    /// The path and text of the spec whose subscription is `subscription`.
    ///
    /// # Errors
    /// An object is missing from the object database.
    pub fn existing(
        &self,
        repo: &Repository,
        index: &Index,
        subscription: &str,
    ) -> Result<Option<(String, String)>, git2::Error> {
        match self {
            View::Indexed(_) => {
                let Some((path, blob)) = index.by_subscription(subscription) else {
                    return Ok(None);
                };
                let text = String::from_utf8_lossy(repo.find_blob(blob)?.content()).into_owned();
                Ok(Some((path, text)))
            }
            View::Files(files) => Ok(files.iter().find_map(|f| {
                spec_subscription(f)
                    .filter(|(_, s)| *s == subscription)
                    .map(|(text, _)| (f.path.clone(), text.to_owned()))
            })),
        }
    }

    /// The bytes of the file at `path`, when it is a readable file of the fleet.
    ///
    /// # Errors
    /// An object is missing from the object database.
    pub fn current(
        &self,
        repo: &Repository,
        index: &Index,
        path: &str,
    ) -> Result<Option<Vec<u8>>, git2::Error> {
        match self {
            View::Indexed(_) => index
                .spec_at(path)
                .map(|(blob, _)| Ok(repo.find_blob(blob)?.content().to_vec()))
                .transpose(),
            View::Files(files) => Ok(files.iter().find(|f| f.path == path).and_then(|f| match &f
                .content
            {
                Content::Bytes(b) => Some(b.clone()),
                _ => None,
            })),
        }
    }

    /// Checks the fleet of `new_tree`, which is this tree with `path` set to `content` (removed
    /// when empty); leaves `index` describing `new_tree` when it is valid.
    ///
    /// # Errors
    /// [`BillingError::Invalid`] with every problem of the new tree.
    pub fn validate(
        &self,
        repo: &Repository,
        new_tree: Oid,
        path: &str,
        content: &str,
        index: &mut Index,
    ) -> Result<(), BillingError> {
        let full = || -> Result<(), BillingError> {
            let files = tree_files(repo, &repo.find_tree(new_tree)?)?;
            load_fleet(&files).map_err(|e| BillingError::Invalid(e.diagnostics))?;
            Ok(())
        };
        let View::Indexed(check) = self else {
            return full();
        };
        let agents = agents_tree(&repo.find_tree(new_tree)?);
        if content.is_empty() {
            // Removing a valid spec from a valid fleet leaves a valid fleet.
            index.set_spec(path, None, agents);
            return Ok(());
        }
        let file = SourceFile {
            path: path.to_owned(),
            content: Content::Bytes(content.as_bytes().to_vec()),
        };
        let checked = match check.agent(&file) {
            Ok(Some(agent)) => Checked::Agent {
                name: agent.name.as_str().to_owned(),
                subscription: agent.subscription.as_str().to_owned(),
            },
            Ok(None) => Checked::Skipped,
            Err(_) => return full(),
        };
        if index.clashes(path, &checked) {
            return full();
        }
        let blob = Oid::hash_object(ObjectType::Blob, content.as_bytes())?;
        index.set_spec(path, Some((blob, checked)), agents);
        Ok(())
    }
}

/// The id of `tree`'s `agents/` folder, if it has one.
fn agents_tree(tree: &Tree<'_>) -> Option<Oid> {
    tree.get_name(AGENTS_DIR.trim_end_matches('/'))
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .map(|e| e.id())
}

/// The first spec sharing a name or subscription with another.
fn duplicate<'a>(specs: impl Iterator<Item = (&'a str, &'a Checked)>) -> Option<&'a str> {
    let mut names = std::collections::HashSet::new();
    let mut subscriptions = std::collections::HashSet::new();
    let mut seen = |c: &'a Checked| match c {
        Checked::Agent { name, subscription } => {
            !names.insert(name.as_str()) || !subscriptions.insert(subscription.as_str())
        }
        Checked::Skipped => false,
    };
    specs.into_iter().find(|(_, c)| seen(c)).map(|(p, _)| p)
}

/// A spec file's text and its `spec.subscription`.
pub(super) fn spec_subscription(file: &tether_schema::SourceFile) -> Option<(&str, &str)> {
    let tether_schema::Content::Bytes(bytes) = &file.content else {
        return None;
    };
    let text = std::str::from_utf8(bytes).ok()?;
    let sub = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("subscription:"))
        .map(|v| v.trim().trim_matches('"').trim_matches('\''))?;
    Some((text, sub))
}
