//! `tether audit log`: per agent, each change of its spec on the fleet branch (commit, author,
//! time, what changed) with the actions the status branch records for it, and the phases the
//! status branch recorded ([`super::timeline`]); [`AgentHistory::timeline`] puts both in time
//! order for `tether audit log --agent` and the dashboard. [`fetch_status`] brings the remote's
//! status branch in first, so a clone that never checked it out still shows the actions.

use super::timeline::{self, PhaseChange};
use git2::{Commit, DiffOptions, Repository, Sort};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One change of an agent's spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecChange {
    /// Fleet commit.
    pub commit: String,
    /// Author name and email.
    pub author: String,
    /// Commit time, UNIX seconds.
    pub time: i64,
    /// `added`, `modified`, `removed`, or `merged` (a merge commit bringing in the change).
    pub change: String,
    /// The spec file.
    pub path: String,
    /// First line of the commit message.
    pub summary: String,
    /// Actions the status branch records for this agent that reflect this commit.
    pub actions: Vec<String>,
}

/// An agent's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentHistory {
    /// Agent name (the spec file's name).
    pub agent: String,
    /// Oldest first.
    pub changes: Vec<SpecChange>,
    /// The phases the status branch recorded, oldest first.
    pub phases: Vec<PhaseChange>,
}

/// One line of an agent's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineEntry<'a> {
    /// Its spec changed on the fleet branch.
    Spec(&'a SpecChange),
    /// The status branch recorded a new phase.
    Phase(&'a PhaseChange),
}

impl TimelineEntry<'_> {
    /// Commit time, UNIX seconds.
    pub fn time(&self) -> i64 {
        match self {
            TimelineEntry::Spec(c) => c.time,
            TimelineEntry::Phase(p) => p.time,
        }
    }
}

impl AgentHistory {
    /// Spec changes and phases in time order (a spec change first when both have one time).
    pub fn timeline(&self) -> Vec<TimelineEntry<'_>> {
        let mut entries: Vec<TimelineEntry<'_>> = self
            .changes
            .iter()
            .map(TimelineEntry::Spec)
            .chain(self.phases.iter().map(TimelineEntry::Phase))
            .collect();
        entries.sort_by_key(|e| (e.time(), matches!(e, TimelineEntry::Phase(_))));
        entries
    }
}

/// A history could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading history of {repo}: {message}")]
pub struct LogError {
    /// The repository.
    pub repo: String,
    /// What failed.
    pub message: String,
}

/// Fetches `branch` of `remote` (a configured remote's name or a URL) into
/// `refs/remotes/<remote>/<branch>` (a URL: `refs/tether/audit/<branch>`), never touching the
/// local branch, which may hold status commits not pushed yet. Returns the ref, or `None`
/// when the remote has no such branch.
///
/// # Errors
/// The repository or the remote cannot be read.
pub fn fetch_status(
    repo: &Path,
    remote: &str,
    branch: &str,
) -> Result<Option<String>, git2::Error> {
    let r = Repository::open(repo)?;
    let (mut origin, local) = match r.find_remote(remote) {
        Ok(named) => (named, format!("refs/remotes/{remote}/{branch}")),
        Err(_) => (
            r.remote_anonymous(remote)?,
            format!("refs/tether/audit/{branch}"),
        ),
    };
    if let Ok(mut stale) = r.find_reference(&local) {
        stale.delete()?;
    }
    origin.fetch(&[&format!("+refs/heads/{branch}:{local}")], None, None)?;
    Ok(r.find_reference(&local).is_ok().then_some(local))
}

/// Reads the history of `fleet_branch` in `repo`, with the actions recorded on every one of
/// `status_refs` that exists (the local status branch and the fetched one: a fleet commit's
/// records come from the first ref holding any) and the phases recorded on the newest of them,
/// for every agent or one, with changes at or after `since` (UNIX seconds).
///
/// # Errors
/// The repository or the fleet branch cannot be read.
pub fn history(
    repo: &Path,
    fleet_branch: &str,
    status_refs: &[&str],
    agent: Option<&str>,
    since: Option<i64>,
) -> Result<Vec<AgentHistory>, LogError> {
    let err = |e: git2::Error| LogError {
        repo: repo.display().to_string(),
        message: e.message().to_owned(),
    };
    let r = Repository::open(repo).map_err(err)?;
    let mut actions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for status_ref in status_refs {
        for (source, lines) in status_actions(&r, status_ref).map_err(err)? {
            // Both refs share most of their history: a source commit is read from the first
            // ref that records it.
            actions.entry(source).or_insert(lines);
        }
    }
    let mut walk = r.revwalk().map_err(err)?;
    walk.push(
        r.revparse_single(fleet_branch)
            .and_then(|o| o.peel_to_commit())
            .map_err(err)?
            .id(),
    )
    .map_err(err)?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)
        .map_err(err)?;
    let mut by_agent: BTreeMap<String, Vec<SpecChange>> = BTreeMap::new();
    for oid in walk {
        let commit = r.find_commit(oid.map_err(err)?).map_err(err)?;
        if since.is_some_and(|s| commit.time().seconds() < s) {
            continue;
        }
        for (path, change) in changed_specs(&r, &commit).map_err(err)? {
            let name = path
                .rsplit('/')
                .next()
                .unwrap_or(&path)
                .trim_end_matches(".yaml")
                .trim_end_matches(".yml")
                .to_owned();
            if agent.is_some_and(|a| a != name) {
                continue;
            }
            by_agent.entry(name).or_default().push(SpecChange {
                commit: commit.id().to_string(),
                author: format!(
                    "{} <{}>",
                    commit.author().name().unwrap_or("?"),
                    commit.author().email().unwrap_or("?")
                ),
                time: commit.time().seconds(),
                change,
                path,
                summary: commit.summary().unwrap_or("").to_owned(),
                actions: Vec::new(),
            });
        }
    }
    attribute(&r, &mut by_agent, &actions).map_err(err)?;
    let mut phases = match newest(&r, status_refs) {
        Some(status_ref) => timeline::phase_changes(&r, status_ref, agent).map_err(err)?,
        None => BTreeMap::new(),
    };
    for (name, list) in &mut phases {
        list.retain(|p| since.is_none_or(|s| p.time >= s));
        if !list.is_empty() {
            by_agent.entry(name.clone()).or_default();
        }
    }
    Ok(by_agent
        .into_iter()
        .map(|(agent, changes)| AgentHistory {
            phases: phases.remove(&agent).unwrap_or_default(),
            agent,
            changes,
        })
        .collect())
}

/// A phase change as one line: `phase Ready (server 42)`, `phase Failed (server 42): why`
/// (the error escaped to one line), `… (3 passes in a row)` for a repeated failure.
pub fn phase_line(p: &PhaseChange) -> String {
    let server = p
        .server_id
        .map(|id| format!(" (server {id})"))
        .unwrap_or_default();
    let error = p
        .error
        .as_deref()
        .map(|e| format!(": {}", super::trailers::escape(e)))
        .unwrap_or_default();
    let repeated = if p.count > 1 {
        format!(" ({} passes in a row)", p.count)
    } else {
        String::new()
    };
    format!("phase {}{server}{error}{repeated}", p.phase)
}

/// Of `refs`, the one whose tip was committed last.
fn newest<'a>(repo: &Repository, refs: &[&'a str]) -> Option<&'a str> {
    refs.iter()
        .filter_map(|name| {
            let tip = repo.revparse_single(name).ok()?.peel_to_commit().ok()?;
            Some((tip.time().seconds(), *name))
        })
        .max_by_key(|(t, _)| *t)
        .map(|(_, name)| name)
}

fn mentions(line: &str, agent: &str) -> bool {
    line.split_whitespace().nth(1) == Some(agent)
}

/// Attaches each status line to the agent's latest spec change at or before the fleet commit
/// the status commit reflects (several spec commits may be applied in one run).
fn attribute(
    repo: &Repository,
    by_agent: &mut BTreeMap<String, Vec<SpecChange>>,
    actions: &BTreeMap<String, Vec<String>>,
) -> Result<(), git2::Error> {
    for (source, lines) in actions {
        let Ok(source_id) = git2::Oid::from_str(source) else {
            continue;
        };
        for (agent, changes) in by_agent.iter_mut() {
            let mine: Vec<String> = lines
                .iter()
                .filter(|l| mentions(l, agent))
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut target = None;
            for (i, change) in changes.iter().enumerate() {
                let id = git2::Oid::from_str(&change.commit)?;
                if id == source_id || repo.graph_descendant_of(source_id, id)? {
                    target = Some(i);
                }
            }
            if let Some(i) = target {
                changes[i].actions.extend(mine);
            }
        }
    }
    Ok(())
}

/// Spec files under `agents/` that `commit` added, modified or removed.
fn changed_specs(
    repo: &Repository,
    commit: &Commit<'_>,
) -> Result<Vec<(String, String)>, git2::Error> {
    let tree = commit.tree()?;
    let parent = commit.parents().next().map(|p| p.tree()).transpose()?;
    let merge = commit.parent_count() > 1;
    let mut opts = DiffOptions::new();
    opts.pathspec("agents/");
    let diff = repo.diff_tree_to_tree(parent.as_ref(), Some(&tree), Some(&mut opts))?;
    Ok(diff
        .deltas()
        .filter_map(|d| {
            let change = match d.status() {
                // A merge brings in changes made (and attributed) on the merged branch.
                _ if merge => "merged",
                git2::Delta::Added => "added",
                git2::Delta::Deleted => "removed",
                _ => "modified",
            };
            let file = d.new_file().path().or(d.old_file().path())?;
            Some((file.to_string_lossy().into_owned(), change.to_owned()))
        })
        .collect())
}

/// A status commit whose trailer block gives one token different values: its records are not
/// trusted, and `tether audit log` shows it instead of its actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Flagged {
    /// The status commit.
    pub status_commit: String,
    /// The tokens that conflict.
    pub tokens: Vec<String>,
}

/// The status commits on `status_refs` whose trailers conflict ([`Flagged`]), newest first.
///
/// # Errors
/// The repository or a ref cannot be read.
pub fn flagged(repo: &Path, status_refs: &[&str]) -> Result<Vec<Flagged>, LogError> {
    let err = |e: git2::Error| LogError {
        repo: repo.display().to_string(),
        message: e.message().to_owned(),
    };
    let r = Repository::open(repo).map_err(err)?;
    let mut out: Vec<Flagged> = Vec::new();
    for status_ref in status_refs {
        for f in read_status(&r, status_ref).map_err(err)?.1 {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

fn status_actions(
    repo: &Repository,
    branch: &str,
) -> Result<BTreeMap<String, Vec<String>>, git2::Error> {
    read_status(repo, branch).map(|(actions, _)| actions)
}

/// Status-commit body lines by the fleet commit they reflect.
type Actions = BTreeMap<String, Vec<String>>;

/// Status-commit body lines keyed by the fleet commit in their `Tether-Source-Commit` trailer,
/// read from the real trailer block only ([`super::trailers`]), and the commits whose trailers
/// conflict, which give no lines.
fn read_status(repo: &Repository, branch: &str) -> Result<(Actions, Vec<Flagged>), git2::Error> {
    let mut out = Actions::new();
    let mut flagged = Vec::new();
    let Ok(tip) = repo
        .revparse_single(branch)
        .and_then(|o| o.peel_to_commit())
    else {
        return Ok((out, flagged));
    };
    let mut walk = repo.revwalk()?;
    walk.push(tip.id())?;
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        let message = commit.message().unwrap_or("");
        let block = super::trailers::block(message);
        let conflicts = block.conflicts();
        if !conflicts.is_empty() {
            flagged.push(Flagged {
                status_commit: commit.id().to_string(),
                tokens: conflicts.into_iter().map(str::to_owned).collect(),
            });
            continue;
        }
        let Some(source) = block.get(super::TRAILER_SOURCE) else {
            continue;
        };
        let body: Vec<String> = message
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with("Apply:") && !l.is_empty())
            .map(str::to_owned)
            .collect();
        out.entry(source.to_owned()).or_default().extend(body);
    }
    Ok((out, flagged))
}
