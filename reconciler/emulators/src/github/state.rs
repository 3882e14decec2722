//! The emulated GitHub's data: users, repositories with branches (file snapshots), pull
//! requests, issue comments and commit statuses, and the rules GitHub applies to them.
//! Every refusal is a [`Rejection`], rendered by the routes in GitHub's error envelope and
//! returned as is by the out-of-band Rust API.

use super::files;
use super::files::FileChange;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// GitHub's limit on a comment body, in characters.
pub const COMMENT_BODY_LIMIT: usize = 65_536;
/// GitHub's limit on a status description, in characters.
pub const STATUS_DESCRIPTION_LIMIT: usize = 140;
/// Most statuses GitHub keeps per sha and context.
pub const STATUSES_PER_CONTEXT: usize = 1000;

/// A request GitHub would refuse: status, `message` and `errors[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// HTTP status.
    pub status: u16,
    /// GitHub's `message`.
    pub message: String,
    /// GitHub's `errors[]` (`{resource, field, code, message?}` objects).
    pub errors: Vec<Value>,
}

impl Rejection {
    /// 404 `Not Found`.
    pub fn not_found() -> Self {
        Rejection::new(404, "Not Found")
    }

    /// A status with a message and no field errors.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Rejection {
            status,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// 422 `Validation Failed` with one field error.
    pub fn validation(resource: &str, field: &str, code: &str, message: Option<&str>) -> Self {
        let mut error = json!({"resource": resource, "field": field, "code": code});
        if let Some(m) = message {
            error["message"] = json!(m);
        }
        Rejection {
            status: 422,
            message: "Validation Failed".into(),
            errors: vec![error],
        }
    }

    /// 422 `Validation Failed` with one `custom` error that names no field.
    pub fn custom(resource: &str, message: &str) -> Self {
        Rejection {
            status: 422,
            message: "Validation Failed".into(),
            errors: vec![json!({"resource": resource, "code": "custom", "message": message})],
        }
    }

    /// 422 for a request body that breaks the endpoint's schema.
    pub fn invalid_request(detail: &str) -> Self {
        Rejection::new(422, format!("Invalid request.\n\n{detail}"))
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.message)
    }
}

impl std::error::Error for Rejection {}

/// A user or bot account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Numeric id.
    pub id: u64,
    /// Login, e.g. `tether-bot` or `github-actions[bot]`.
    pub login: String,
    /// Whether it is a bot (`type: Bot`): logins ending in `[bot]`.
    pub bot: bool,
}

/// An issue (pull-request conversation) comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    /// Comment id.
    pub id: u64,
    /// `owner/name`.
    pub repo: String,
    /// Pull request number.
    pub issue: u64,
    /// Author login.
    pub author: String,
    /// Markdown body.
    pub body: String,
    /// RFC 3339, seconds.
    pub created_at: String,
    /// RFC 3339, seconds.
    pub updated_at: String,
}

/// A commit status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Status id.
    pub id: u64,
    /// `owner/name`.
    pub repo: String,
    /// Commit sha.
    pub sha: String,
    /// `error`, `failure`, `pending` or `success`.
    pub state: String,
    /// Context, e.g. `tether/prod`.
    pub context: String,
    /// Description (at most 140 characters).
    pub description: Option<String>,
    /// Link to details.
    pub target_url: Option<String>,
    /// Creator login.
    pub creator: String,
    /// RFC 3339, seconds.
    pub created_at: String,
}

/// A pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    /// `owner/name`.
    pub repo: String,
    /// Number (shared with issues).
    pub number: u64,
    /// Global id.
    pub id: u64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: Option<String>,
    /// Author login.
    pub author: String,
    /// Head branch.
    pub head: String,
    /// Base branch.
    pub base: String,
    /// Draft.
    pub draft: bool,
    /// RFC 3339, seconds.
    pub created_at: String,
}

/// A branch: its head sha and the files at that commit.
#[derive(Debug, Clone)]
pub(super) struct Branch {
    pub sha: String,
    pub files: BTreeMap<String, String>,
}

#[derive(Debug)]
pub(super) struct Pull {
    pub record: PullRequest,
    pub files: Option<Vec<FileChange>>,
}

#[derive(Debug)]
pub(super) struct Repo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub default_branch: String,
    pub created_at: String,
    pub branches: BTreeMap<String, Branch>,
    pub commits: BTreeSet<String>,
    pub pulls: BTreeMap<u64, Pull>,
    pub next_number: u64,
    pub comments: BTreeMap<u64, Comment>,
    pub statuses: Vec<Status>,
    /// The git repository whose branches this repository shows (see `linked`).
    pub git: Option<PathBuf>,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    pub fn pull(&self, number: u64) -> Result<&Pull, Rejection> {
        self.pulls.get(&number).ok_or_else(Rejection::not_found)
    }

    pub fn branch(&self, name: &str) -> Option<&Branch> {
        self.branches.get(name)
    }

    /// The files of `pull`: as set out of band, or the diff between its branches.
    pub fn pull_files(&self, pull: &Pull) -> Vec<FileChange> {
        if let Some(files) = &pull.files {
            return files.clone();
        }
        let tree = |name: &str| {
            self.branch(name)
                .map(|b| b.files.clone())
                .unwrap_or_default()
        };
        files::diff(&tree(&pull.record.base), &tree(&pull.record.head))
    }

    /// The commit `reference` names: a known sha, a branch, or `heads/<branch>`.
    pub fn resolve(&self, reference: &str) -> Option<String> {
        if self.commits.contains(reference) {
            return Some(reference.to_owned());
        }
        let branch = reference.strip_prefix("heads/").unwrap_or(reference);
        self.branch(branch).map(|b| b.sha.clone())
    }
}

/// Everything the emulated GitHub holds.
#[derive(Debug, Default)]
pub struct State {
    next_id: u64,
    users: BTreeMap<String, User>,
    pub(super) repos: BTreeMap<String, Repo>,
}

/// The current time as GitHub writes it: RFC 3339 in UTC, whole seconds.
pub fn now() -> String {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl State {
    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The account `login`, created on first use.
    pub fn user(&mut self, login: &str) -> User {
        if let Some(user) = self.users.get(login) {
            return user.clone();
        }
        let user = User {
            id: self.next_id(),
            login: login.to_owned(),
            bot: login.ends_with("[bot]"),
        };
        self.users.insert(login.to_owned(), user.clone());
        user
    }

    /// The repository `owner/name` (case-insensitive, as on GitHub).
    pub(super) fn repo(&self, owner: &str, name: &str) -> Result<&Repo, Rejection> {
        self.repos
            .get(&format!("{owner}/{name}").to_ascii_lowercase())
            .ok_or_else(Rejection::not_found)
    }

    pub(super) fn repo_mut(&mut self, owner: &str, name: &str) -> Result<&mut Repo, Rejection> {
        self.repos
            .get_mut(&format!("{owner}/{name}").to_ascii_lowercase())
            .ok_or_else(Rejection::not_found)
    }

    /// Creates an empty repository whose default branch is `main`.
    pub fn create_repo(&mut self, owner: &str, name: &str) -> Result<(), Rejection> {
        let key = format!("{owner}/{name}").to_ascii_lowercase();
        if self.repos.contains_key(&key) {
            return Err(Rejection::validation(
                "Repository",
                "name",
                "custom",
                Some("name already exists on this account"),
            ));
        }
        self.user(owner);
        let repo = Repo {
            id: self.next_id(),
            owner: owner.to_owned(),
            name: name.to_owned(),
            default_branch: "main".into(),
            created_at: now(),
            branches: BTreeMap::new(),
            commits: BTreeSet::new(),
            pulls: BTreeMap::new(),
            next_number: 1,
            comments: BTreeMap::new(),
            statuses: Vec::new(),
            git: None,
        };
        self.repos.insert(key, repo);
        Ok(())
    }

    /// Points `branch` at a new commit with a synthetic sha holding `files`; returns the sha.
    pub fn push(
        &mut self,
        owner: &str,
        name: &str,
        branch: &str,
        files: BTreeMap<String, String>,
    ) -> Result<String, Rejection> {
        let serial = self.next_id();
        let repo = self.repo(owner, name)?;
        let mut hash = Sha256::new();
        hash.update(format!("{}\0{branch}\0{serial}\0", repo.full_name()));
        for (path, content) in &files {
            hash.update(format!("{path}\0{content}\0"));
        }
        let sha: String = format!("{:x}", hash.finalize())[..40].to_owned();
        self.push_commit(owner, name, branch, &sha, files)?;
        Ok(sha)
    }

    /// Points `branch` at the commit `sha` (e.g. a real git commit id) holding `files`.
    ///
    /// # Errors
    /// 404 without the repository; 422 when `sha` is not 40 lowercase hex digits.
    pub fn push_commit(
        &mut self,
        owner: &str,
        name: &str,
        branch: &str,
        sha: &str,
        files: BTreeMap<String, String>,
    ) -> Result<(), Rejection> {
        let repo = self.repo_mut(owner, name)?;
        if sha.len() != 40 || !sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Rejection::validation("Commit", "sha", "invalid", None));
        }
        repo.commits.insert(sha.to_owned());
        let sha = sha.to_owned();
        repo.branches
            .insert(branch.to_owned(), Branch { sha, files });
        Ok(())
    }

    /// Makes `owner/name` show the branches and commits of the git repository at `path`,
    /// read again before every request.
    ///
    /// # Errors
    /// 404 without the repository.
    pub fn link_git(&mut self, owner: &str, name: &str, path: PathBuf) -> Result<(), Rejection> {
        self.repo_mut(owner, name)?.git = Some(path);
        self.sync_linked();
        Ok(())
    }

    /// Every comment, statuses and pull request of every repository, in id order.
    pub fn comments(&self) -> Vec<Comment> {
        let mut all: Vec<_> = self
            .repos
            .values()
            .flat_map(|r| r.comments.values().cloned())
            .collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// Every status, oldest first.
    pub fn statuses(&self) -> Vec<Status> {
        let mut all: Vec<_> = self
            .repos
            .values()
            .flat_map(|r| r.statuses.iter().cloned())
            .collect();
        all.sort_by_key(|s| s.id);
        all
    }

    /// Every pull request.
    pub fn pulls(&self) -> Vec<PullRequest> {
        let mut all: Vec<_> = self
            .repos
            .values()
            .flat_map(|r| r.pulls.values().map(|p| p.record.clone()))
            .collect();
        all.sort_by_key(|p| p.id);
        all
    }
}
