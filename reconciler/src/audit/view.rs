//! The fleet as a status ref in a repository records it, for `tether status` and the daemon's
//! dashboard alike: [`read_overview`] builds the [`FleetOverview`] (documents, the spec they
//! reflect, and each agent's last action from the status commits); [`recent_commits`] lists
//! the newest status commits.

use super::overview::{self, Activity, Filter, FleetOverview};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One status commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCommit {
    /// The commit id.
    pub commit: String,
    /// Commit time, UNIX seconds.
    pub time: i64,
    /// The summary line (`apply 3f2a1c9: +2 created, -0 deleted`).
    pub summary: String,
    /// The body before the trailers: one line per action, or the refusal's reasons.
    pub body: Vec<String>,
}

/// The body lines of a status commit message: between the summary and the trailers.
fn body_lines(message: &str) -> Vec<&str> {
    message
        .lines()
        .skip(2)
        .take_while(|l| !l.starts_with("Apply:") && !l.is_empty())
        .collect()
}

/// The fleet overview of `refname` in `repo` as of `now` (UNIX seconds), narrowed by `filter`,
/// with a warning when the spec it reflects cannot be read (customer and subscription are then
/// not shown).
///
/// # Errors
/// The repository, the ref or a commit on it cannot be read.
pub fn read_overview(
    repo: &Path,
    refname: &str,
    filter: &Filter,
    now: i64,
) -> Result<(FleetOverview, Option<String>), git2::Error> {
    let r = git2::Repository::open(repo)?;
    let files = super::ledger::status_files(&r, refname)?;
    let (spec, warning) = match spec_at(repo, &files) {
        Ok(spec) => (spec, None),
        Err(e) => (None, Some(e)),
    };
    let activity = status_activity(&r, refname)?;
    let view =
        FleetOverview::from_files(&files, spec.as_ref(), filter).with_activity(&activity, now);
    Ok((view, warning))
}

/// Each agent's last action and last create, from the action lines of the status commits
/// (the body between the summary and the `Apply:` line), newest first.
///
/// # Errors
/// The ref or a commit on it cannot be read.
pub fn status_activity(
    repo: &git2::Repository,
    refname: &str,
) -> Result<BTreeMap<String, Activity>, git2::Error> {
    let commits = walk(repo, refname, usize::MAX)?;
    Ok(overview::activity(commits.iter().map(|c| {
        let lines = c.body.iter().map(String::as_str).collect();
        (c.time, lines)
    })))
}

/// The newest `limit` commits of `refname`, newest first.
///
/// # Errors
/// The ref or a commit on it cannot be read.
pub fn recent_commits(
    repo: &Path,
    refname: &str,
    limit: usize,
) -> Result<Vec<StatusCommit>, git2::Error> {
    walk(&git2::Repository::open(repo)?, refname, limit)
}

fn walk(
    repo: &git2::Repository,
    refname: &str,
    limit: usize,
) -> Result<Vec<StatusCommit>, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.push(repo.find_reference(refname)?.peel_to_commit()?.id())?;
    walk.set_sorting(git2::Sort::TIME)?;
    let mut out = Vec::new();
    for oid in walk.take(limit) {
        let commit = repo.find_commit(oid?)?;
        let message = commit.message().unwrap_or("");
        out.push(StatusCommit {
            commit: commit.id().to_string(),
            time: commit.time().seconds(),
            summary: commit.summary().unwrap_or("").to_owned(),
            body: body_lines(message).into_iter().map(str::to_owned).collect(),
        });
    }
    Ok(out)
}

/// The fleet at the revision `status/fleet.yaml` records, for customer, subscription and the
/// deletion budget; `Ok(None)` when no revision is recorded.
///
/// # Errors
/// Why the spec at the recorded revision cannot be read, as a sentence naming the revision.
pub fn spec_at(
    repo: &Path,
    files: &BTreeMap<String, String>,
) -> Result<Option<tether_schema::Fleet>, String> {
    let overview = FleetOverview::from_files(files, None, &Filter::default());
    let Some(revision) = overview.revision else {
        return Ok(None);
    };
    crate::source::git::read(repo, &revision)
        .map_err(|e| e.to_string())
        .and_then(|s| tether_schema::load_fleet(&s.files).map_err(|e| e.to_string()))
        .map(Some)
        .map_err(|e| {
            format!(
                "customer and subscription are not shown: the spec at {revision} cannot be read ({e})"
            )
        })
}
