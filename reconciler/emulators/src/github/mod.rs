//! An emulator of the GitHub REST API endpoints tether uses, stricter than GitHub where that
//! catches bugs: issue comments, commit statuses, pull requests and their files, the token's
//! user, with GitHub's authentication, pagination, rate-limit headers and error envelopes.
//! octocrab talks to it in tests and in the local sandbox. Start with [`GitHubEmulator`].
//!
//! - [`state`]: the data and GitHub's rules; [`comments`], [`statuses`], [`pulls`]: one file
//!   per resource, its rules and its routes;
//! - [`gate`]: User-Agent, credentials, rate limits; [`page`]: pagination and `Link`;
//! - [`wire`]: the JSON; [`routes`]: the router and the `/_emulator/` observation routes;
//! - [`files`]: a pull request's files from two branch snapshots; `linked`: repositories whose
//!   branches come from a real git repository.

pub mod comments;
pub mod files;
pub mod gate;
mod linked;
pub mod page;
pub mod pulls;
pub mod routes;
pub mod state;
pub mod statuses;
#[cfg(test)]
mod tests;
pub mod wire;

pub use files::FileChange;
pub use pulls::NewPull;
pub use state::{Comment, PullRequest, Rejection, Status};

use crate::Token;
use crate::emulator::{Faults, RequestLog, Server};
use routes::Shared;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Login of the account behind Actions installation tokens.
pub const ACTIONS_BOT: &str = "github-actions[bot]";

/// A token the emulator accepts, and whose it is.
#[derive(Debug, Clone)]
pub struct Account {
    /// The token.
    pub token: Token,
    /// The account's login.
    pub login: String,
    /// An installation token (GitHub Actions, GitHub App): `GET /user` answers 403.
    pub integration: bool,
}

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Accepted tokens.
    pub accounts: Vec<Account>,
    /// Requests per hour per account (GitHub: 5,000 for users).
    pub rate_limit: u32,
    /// Status of answers over the limit: 403 (GitHub's usual) or 429.
    pub rate_limit_status: u16,
    /// Seed of the fault injector.
    pub fault_seed: u64,
}

impl Default for Config {
    /// No accounts yet, 5,000 requests per hour, 403 over the limit.
    fn default() -> Self {
        Config {
            accounts: Vec::new(),
            rate_limit: 5_000,
            rate_limit_status: 403,
            fault_seed: 0,
        }
    }
}

impl Config {
    /// Accepts `token` as the user `login` (a personal access token).
    pub fn user(mut self, token: &str, login: &str) -> Self {
        self.accounts.push(Account {
            token: Token::from(token),
            login: login.to_owned(),
            integration: false,
        });
        self
    }

    /// Accepts `token` as an Actions installation token acting as `github-actions[bot]`.
    pub fn integration(mut self, token: &str) -> Self {
        self.accounts.push(Account {
            token: Token::from(token),
            login: ACTIONS_BOT.to_owned(),
            integration: true,
        });
        self
    }
}

/// A running GitHub emulator on 127.0.0.1. Dropping it stops the server.
#[derive(Debug)]
pub struct GitHubEmulator {
    server: Server,
    app: Arc<Shared>,
    faults: Arc<Faults>,
}

fn split(repo: &str) -> Result<(&str, &str), Rejection> {
    repo.split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| Rejection::new(422, format!("`{repo}` is not owner/name")))
}

fn owned(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
        .collect()
}

impl GitHubEmulator {
    /// Starts the emulator on a free port.
    ///
    /// # Errors
    /// The socket cannot be bound.
    pub async fn start(config: Config) -> std::io::Result<GitHubEmulator> {
        let faults = Arc::new(Faults::new(config.fault_seed));
        let log = Arc::new(RequestLog::default());
        let app = Arc::new(Shared::new(&config, log.clone()));
        let router = routes::router(app.clone());
        let server = Server::start(router, faults.clone(), log, routes::fault_body).await?;
        Ok(GitHubEmulator {
            server,
            app,
            faults,
        })
    }

    /// `http://127.0.0.1:<port>`: the `GITHUB_API_URL` for clients.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }

    /// Fault injection (a shared handle, so a test's clock can end an outage).
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// Request counters.
    pub fn requests(&self) -> &RequestLog {
        &self.app.log
    }

    /// Creates the empty repository `owner/name` (default branch `main`).
    ///
    /// # Errors
    /// The name is not `owner/name`, or the repository exists.
    pub fn create_repo(&self, repo: &str) -> Result<(), Rejection> {
        let (owner, name) = split(repo)?;
        self.app.state().create_repo(owner, name)
    }

    /// Points `branch` of `repo` at a new commit holding `files` (path, content); returns the
    /// commit's sha. Pull requests from or into the branch follow it.
    ///
    /// # Errors
    /// The repository does not exist.
    pub fn push(
        &self,
        repo: &str,
        branch: &str,
        files: &[(&str, &str)],
    ) -> Result<String, Rejection> {
        let (owner, name) = split(repo)?;
        self.app.state().push(owner, name, branch, owned(files))
    }

    /// Points `branch` of `repo` at the commit `sha` holding `files`: the real git commit id
    /// when a test mirrors a git repository, so statuses land on the commit tether read.
    ///
    /// # Errors
    /// The repository does not exist, or `sha` is not 40 lowercase hex digits.
    pub fn push_commit(
        &self,
        repo: &str,
        branch: &str,
        sha: &str,
        files: &[(&str, &str)],
    ) -> Result<(), Rejection> {
        let (owner, name) = split(repo)?;
        self.app
            .state()
            .push_commit(owner, name, branch, sha, owned(files))
    }

    /// Makes `repo` show the branches (and every commit reachable from them) of the git
    /// repository at `path`, re-read before every request: a `git push` to it is what the API
    /// sees, as on GitHub. Branches set with [`GitHubEmulator::push`] are replaced.
    ///
    /// # Errors
    /// The repository does not exist.
    pub fn link_git(&self, repo: &str, path: &std::path::Path) -> Result<(), Rejection> {
        let (owner, name) = split(repo)?;
        self.app.state().link_git(owner, name, path.to_owned())
    }

    /// Opens a pull request as `author`, with GitHub's rules; returns its number.
    ///
    /// # Errors
    /// As `POST /repos/{owner}/{repo}/pulls` would answer.
    pub fn open_pull_request(
        &self,
        repo: &str,
        new: &NewPull,
        author: &str,
    ) -> Result<u64, Rejection> {
        let (owner, name) = split(repo)?;
        let pr = self.app.state().open_pull(owner, name, new, author)?;
        Ok(pr.number)
    }

    /// Makes `GET …/pulls/{number}/files` list `files` instead of the branch diff.
    ///
    /// # Errors
    /// No such repository or pull request.
    pub fn set_pull_files(
        &self,
        repo: &str,
        number: u64,
        files: Vec<FileChange>,
    ) -> Result<(), Rejection> {
        let (owner, name) = split(repo)?;
        self.app.state().set_pull_files(owner, name, number, files)
    }

    /// Adds a comment by `author` (someone else's, for tests) on pull request `number`.
    ///
    /// # Errors
    /// As `POST …/issues/{number}/comments` would answer.
    pub fn comment_as(
        &self,
        repo: &str,
        number: u64,
        author: &str,
        body: &str,
    ) -> Result<u64, Rejection> {
        let (owner, name) = split(repo)?;
        Ok(self
            .app
            .state()
            .add_comment(owner, name, number, author, body)?
            .id)
    }

    /// Every issue comment, oldest first.
    pub fn comments(&self) -> Vec<Comment> {
        self.app.state().comments()
    }

    /// Every commit status, oldest first.
    pub fn statuses(&self) -> Vec<Status> {
        self.app.state().statuses()
    }

    /// Every pull request, oldest first.
    pub fn pulls(&self) -> Vec<PullRequest> {
        self.app.state().pulls()
    }
}
