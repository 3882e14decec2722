//! The code forge, behind the small [`Forge`] trait in plain data: tether's plan comment on a
//! pull request, commit statuses, a pull request's changed files and head, and opening pull
//! requests. [`GitHub`] implements it with `octocrab`; `tether_emulators::github` emulates the
//! GitHub REST API it speaks.
//!
//! - [`github`]: the client; [`config`]: its configuration (`GITHUB_TOKEN`,
//!   `GITHUB_REPOSITORY`, `GITHUB_API_URL`);
//! - [`convert`]: between octocrab's models and errors and the plain data here;
//! - [`error`]: typed errors and the retry classifier;
//! - [`guard`]: the checks on every text tether sends: no secret-looking material, status
//!   descriptions within GitHub's 140 characters.

pub mod config;
pub mod convert;
pub mod error;
pub mod github;
pub mod guard;
#[cfg(test)]
mod tests;

pub use config::{Config, DEFAULT_API_URL, Repository};
pub use error::{Error, Scope, Target};
pub use github::GitHub;

use serde::Serialize;
use std::fmt;
use std::future::Future;

/// A pull request number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PrNumber(pub u64);

/// An issue comment id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CommentId(pub u64);

impl fmt::Display for PrNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for CommentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The state of a commit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    /// Work in progress (tether is planning or applying).
    Pending,
    /// The plan is valid / the apply succeeded.
    Success,
    /// The plan was refused or the apply failed because of the fleet.
    Failure,
    /// tether itself failed (an API was unreachable, a bug).
    Error,
}

/// A commit status as tether posts it: one per fleet, under the context `tether/<fleet>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// The commit (full 40-hex sha).
    pub sha: String,
    /// The state.
    pub state: StatusState,
    /// The fleet's name; the status context is `tether/<fleet>`.
    pub fleet: String,
    /// One line for people; truncated to 140 characters before sending.
    pub description: String,
    /// Where the details are (the CI run), if anywhere.
    pub target_url: Option<String>,
}

impl CommitStatus {
    /// The status context, `tether/<fleet>`: one status line per fleet on the commit.
    pub fn context(&self) -> String {
        format!("tether/{}", self.fleet)
    }
}

/// How a file changed in a pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// New file.
    Added,
    /// Deleted file.
    Removed,
    /// Changed content.
    Modified,
    /// Moved (see [`ChangedFile::previous_filename`]), possibly with changes.
    Renamed,
    /// Copied from another file.
    Copied,
    /// Mode or metadata changed.
    Changed,
    /// Listed but unchanged.
    Unchanged,
}

/// One file a pull request changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedFile {
    /// Path in the repository, after the change.
    pub filename: String,
    /// How it changed.
    pub status: FileStatus,
    /// The path before a rename or copy: a fleet file moved out of the fleet also touches it.
    pub previous_filename: Option<String>,
}

/// The head of a pull request: what tether plans and what its statuses are posted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrHead {
    /// The head commit sha.
    pub sha: String,
    /// The head branch name (without `refs/heads/`).
    pub branch: String,
}

/// A pull request to open (`tether agent add --open-pr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPullRequest {
    /// The branch with the change (in the same repository).
    pub head: String,
    /// The branch to merge into.
    pub base: String,
    /// Title.
    pub title: String,
    /// Body (Markdown).
    pub body: String,
}

/// The code forge, as tether uses it. The real implementation is [`GitHub`].
pub trait Forge: Send + Sync {
    /// Creates or edits tether's plan comment on `pr` so that exactly one exists with body
    /// `markdown`; returns its id. See [`GitHub::upsert_plan_comment`] for the guarantees.
    fn upsert_plan_comment(
        &self,
        pr: PrNumber,
        markdown: &str,
    ) -> impl Future<Output = Result<CommentId, Error>> + Send;
    /// Posts a commit status under the context `tether/<fleet>`.
    fn set_status(&self, status: &CommitStatus) -> impl Future<Output = Result<(), Error>> + Send;
    /// Every file `pr` changes (all pages; GitHub lists at most 3000).
    fn pr_files(
        &self,
        pr: PrNumber,
    ) -> impl Future<Output = Result<Vec<ChangedFile>, Error>> + Send;
    /// The head commit and branch of `pr`.
    fn pr_head(&self, pr: PrNumber) -> impl Future<Output = Result<PrHead, Error>> + Send;
    /// Opens a pull request, or finds the open one with the same head and base; returns its
    /// number. Never opens a second for one head and base.
    fn create_pull_request(
        &self,
        new: &NewPullRequest,
    ) -> impl Future<Output = Result<PrNumber, Error>> + Send;
}
