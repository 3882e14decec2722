//! What the dashboard shows, read from git alone on each request: the fleet overview (the one
//! `tether status` builds, [`crate::audit::view`]), the newest status commits, and one
//! agent's detail with its timeline (the one `tether audit log --agent` prints,
//! [`crate::audit::log::history`]). Blocking: call from `spawn_blocking`.

use crate::audit::log::{self, AgentHistory};
use crate::audit::overview::{Filter, FleetOverview};
use crate::audit::view::{self, StatusCommit};
use std::path::PathBuf;

/// How many status commits the fleet page lists.
pub const RECENT_COMMITS: usize = 10;
/// How far back the agent page looks for plan lines about the agent.
const PLAN_LOOKBACK: usize = 50;
/// How many plan lines the agent page lists.
const PLAN_LINES: usize = 10;

/// Where the dashboard reads from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The repository holding the status branch (the fleet work tree, or the remote's cache).
    pub repo: PathBuf,
    /// The status branch's full ref (`refs/heads/tether/status`).
    pub status_ref: String,
    /// The fleet branch's ref in that repository, for the spec changes of the timeline.
    pub fleet_ref: String,
}

/// Why the dashboard could not read git.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Nothing was recorded yet: no status branch.
    #[error("no status recorded yet: `{status_ref}` is not in {repo} (the first pass writes it)")]
    NoStatus {
        /// The repository.
        repo: String,
        /// The status ref looked for.
        status_ref: String,
    },
    /// The repository or a commit cannot be read.
    #[error("cannot read `{status_ref}` in {repo}: {message}")]
    Git {
        /// The repository.
        repo: String,
        /// The status ref read.
        status_ref: String,
        /// What failed.
        message: String,
    },
}

/// The fleet page's data.
#[derive(Debug, Clone)]
pub struct FleetData {
    /// The table and fleet lines, as `tether status` shows them.
    pub overview: FleetOverview,
    /// Why customer and subscription are missing, if they are.
    pub warning: Option<String>,
    /// The newest status commits, newest first: the first is the last plan's record.
    pub commits: Vec<StatusCommit>,
}

/// An agent page's data.
#[derive(Debug, Clone)]
pub struct AgentData {
    /// The fleet around it (its row is `overview.agents[0]`).
    pub overview: FleetOverview,
    /// Its Tailscale device id, as its status document records it.
    pub device_id: Option<String>,
    /// Its spec changes and phases.
    pub history: AgentHistory,
    /// Recent plan lines naming it, newest first, with their status commit.
    pub plan_lines: Vec<(StatusCommit, String)>,
}

impl Sources {
    fn err(&self) -> impl Fn(git2::Error) -> DataError + '_ {
        move |e| DataError::Git {
            repo: self.repo.display().to_string(),
            status_ref: self.status_ref.clone(),
            message: e.message().to_owned(),
        }
    }

    fn has_status(&self) -> Result<(), DataError> {
        let repo = git2::Repository::open(&self.repo).map_err(self.err())?;
        match repo.find_reference(&self.status_ref) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Err(DataError::NoStatus {
                repo: self.repo.display().to_string(),
                status_ref: self.status_ref.clone(),
            }),
            Err(e) => Err(self.err()(e)),
        }
    }

    /// The overview narrowed by `filter`, as of `now` (UNIX seconds).
    ///
    /// # Errors
    /// No status branch yet, or git cannot be read.
    pub fn overview(
        &self,
        filter: &Filter,
        now: i64,
    ) -> Result<(FleetOverview, Option<String>), DataError> {
        self.has_status()?;
        view::read_overview(&self.repo, &self.status_ref, filter, now).map_err(self.err())
    }

    /// The fleet page's data as of `now`.
    ///
    /// # Errors
    /// No status branch yet, or git cannot be read.
    pub fn fleet(&self, now: i64) -> Result<FleetData, DataError> {
        let (overview, warning) = self.overview(&Filter::default(), now)?;
        let commits = view::recent_commits(&self.repo, &self.status_ref, RECENT_COMMITS)
            .map_err(self.err())?;
        Ok(FleetData {
            overview,
            warning,
            commits,
        })
    }

    /// `agent`'s page data as of `now`; `None` when the status branch has no such agent.
    ///
    /// # Errors
    /// No status branch yet, or git cannot be read.
    pub fn agent(&self, agent: &str, now: i64) -> Result<Option<AgentData>, DataError> {
        let filter = Filter {
            agent: Some(agent.to_owned()),
            ..Filter::default()
        };
        let (overview, _) = self.overview(&filter, now)?;
        if overview.agents.is_empty() {
            return Ok(None);
        }
        let repo = git2::Repository::open(&self.repo).map_err(self.err())?;
        let files =
            crate::audit::ledger::status_files(&repo, &self.status_ref).map_err(self.err())?;
        let device_id = files
            .get(&format!("{agent}.yaml"))
            .and_then(|t| yaml_rust2::YamlLoader::load_from_str(t).ok())
            .and_then(|docs| docs.into_iter().next())
            .and_then(|doc| doc["device"]["id"].as_str().map(str::to_owned));
        let history = log::history(
            &self.repo,
            &self.fleet_ref,
            &[self.status_ref.as_str()],
            Some(agent),
            None,
        )
        .map_err(|e| DataError::Git {
            repo: self.repo.display().to_string(),
            status_ref: self.status_ref.clone(),
            message: e.message,
        })?
        .into_iter()
        .next()
        .unwrap_or_else(|| AgentHistory {
            agent: agent.to_owned(),
            changes: Vec::new(),
            phases: Vec::new(),
        });
        let plan_lines = view::recent_commits(&self.repo, &self.status_ref, PLAN_LOOKBACK)
            .map_err(self.err())?
            .into_iter()
            .flat_map(|c| {
                let mine: Vec<String> = c
                    .body
                    .iter()
                    .filter(|l| l.split_whitespace().nth(1) == Some(agent))
                    .cloned()
                    .collect();
                mine.into_iter().map(move |l| (c.clone(), l))
            })
            .take(PLAN_LINES)
            .collect();
        Ok(Some(AgentData {
            overview,
            device_id,
            history,
            plan_lines,
        }))
    }
}
