//! Pull requests: open (201, with GitHub's checks: branches exist, differ, no open duplicate),
//! get, list (filtered by `state`, `head`, `base`; newest first) and files (the branch diff or
//! files set out of band; paginated, at most 3000).

use super::files::FileChange;
use super::gate::Caller;
use super::routes::{
    App, Reply, base_url, body_json, json, number, paged, required_field, string_field,
};
use super::state::{PullRequest, Rejection, State, now};
use super::wire::{self, PullParts};
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State as Axum};
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;

/// Most files GitHub lists for one pull request.
pub const MAX_FILES: usize = 3000;

/// A pull request to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPull {
    /// Title.
    pub title: String,
    /// Head branch, `branch` or `owner:branch`.
    pub head: String,
    /// Base branch.
    pub base: String,
    /// Body.
    pub body: Option<String>,
    /// Draft.
    pub draft: bool,
}

impl NewPull {
    /// A ready-for-review pull request without a body.
    pub fn new(title: &str, head: &str, base: &str) -> Self {
        NewPull {
            title: title.to_owned(),
            head: head.to_owned(),
            base: base.to_owned(),
            body: None,
            draft: false,
        }
    }
}

impl State {
    /// Opens a pull request by `author`.
    ///
    /// # Errors
    /// 404 without the repository; 422 for a blank title, a missing head or base branch (or a
    /// head in another owner's fork), branches without a difference, or an open pull request
    /// with the same head and base.
    pub fn open_pull(
        &mut self,
        owner: &str,
        name: &str,
        new: &NewPull,
        author: &str,
    ) -> Result<PullRequest, Rejection> {
        let repo = self.repo(owner, name)?;
        if new.title.trim().is_empty() {
            return Err(Rejection::validation(
                "PullRequest",
                "title",
                "missing_field",
                None,
            ));
        }
        let head = match new.head.split_once(':') {
            Some((o, branch)) if o.eq_ignore_ascii_case(&repo.owner) => branch,
            Some(_) => {
                return Err(Rejection::validation(
                    "PullRequest",
                    "head",
                    "invalid",
                    None,
                ));
            }
            None => new.head.as_str(),
        };
        let (Some(head_branch), Some(base_branch)) = (repo.branch(head), repo.branch(&new.base))
        else {
            let field = if repo.branch(head).is_none() {
                "head"
            } else {
                "base"
            };
            return Err(Rejection::validation("PullRequest", field, "invalid", None));
        };
        if head_branch.sha == base_branch.sha || head_branch.files == base_branch.files {
            let message = format!("No commits between {} and {head}", new.base);
            return Err(Rejection::custom("PullRequest", &message));
        }
        if repo
            .pulls
            .values()
            .any(|p| p.record.head == head && p.record.base == new.base)
        {
            let message = format!("A pull request already exists for {}:{head}.", repo.owner);
            return Err(Rejection::custom("PullRequest", &message));
        }
        let head = head.to_owned();
        let id = self.next_id();
        self.user(author);
        let repo = self.repo_mut(owner, name)?;
        let record = PullRequest {
            repo: repo.full_name(),
            number: repo.next_number,
            id,
            title: new.title.clone(),
            body: new.body.clone(),
            author: author.to_owned(),
            head,
            base: new.base.clone(),
            draft: new.draft,
            created_at: now(),
        };
        repo.next_number += 1;
        let pull = super::state::Pull {
            record: record.clone(),
            files: None,
        };
        repo.pulls.insert(record.number, pull);
        Ok(record)
    }

    /// Makes pull request `number` list `files`.
    ///
    /// # Errors
    /// 404 without the repository or pull request.
    pub fn set_pull_files(
        &mut self,
        owner: &str,
        name: &str,
        number: u64,
        files: Vec<FileChange>,
    ) -> Result<(), Rejection> {
        let repo = self.repo_mut(owner, name)?;
        let pull = repo
            .pulls
            .get_mut(&number)
            .ok_or_else(Rejection::not_found)?;
        pull.files = Some(files);
        Ok(())
    }

    /// The JSON of pull request `number`.
    fn pull_json(
        &mut self,
        base: &str,
        owner: &str,
        name: &str,
        number: u64,
    ) -> Result<Value, Rejection> {
        let repo = self.repo(owner, name)?;
        let (pr_author, repo_owner) =
            (repo.pull(number)?.record.author.clone(), repo.owner.clone());
        let author = self.user(&pr_author);
        let owner_user = self.user(&repo_owner);
        let repo = self.repo(owner, name)?;
        let pull = repo.pull(number)?;
        let sha = |branch: &str| {
            repo.branch(branch)
                .map(|b| b.sha.clone())
                .unwrap_or_default()
        };
        let files = repo.pull_files(pull);
        let parts = PullParts {
            pr: &pull.record,
            author: &author,
            repo: wire::repo(base, repo, &owner_user),
            head_sha: sha(&pull.record.head),
            base_sha: sha(&pull.record.base),
            files: &files,
            comments: repo.comments.values().filter(|c| c.issue == number).count(),
        };
        Ok(wire::pull(base, &parts))
    }
}

/// `POST /repos/{owner}/{repo}/pulls`.
pub async fn create(
    Axum(app): Axum<App>,
    Extension(caller): Extension<Caller>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let body = body_json(&body)?;
    let new = NewPull {
        title: required_field(&body, "title")?,
        head: required_field(&body, "head")?,
        base: required_field(&body, "base")?,
        body: string_field(&body, "body")?,
        draft: body.get("draft").and_then(Value::as_bool).unwrap_or(false),
    };
    let mut state = app.state();
    let pr = state.open_pull(&owner, &name, &new, &caller.login)?;
    let value = state.pull_json(&base_url(&headers), &owner, &name, pr.number)?;
    Ok(json(StatusCode::CREATED, &value))
}

/// `GET /repos/{owner}/{repo}/pulls/{number}`.
pub async fn get(
    Axum(app): Axum<App>,
    Path((owner, name, n)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Reply {
    let value = app
        .state()
        .pull_json(&base_url(&headers), &owner, &name, number(&n)?)?;
    Ok(json(StatusCode::OK, &value))
}

/// `GET /repos/{owner}/{repo}/pulls?state=&head=owner:branch&base=`: every emulated pull
/// request is open.
pub async fn list(
    Axum(app): Axum<App>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let mut state = app.state();
    let repo = state.repo(&owner, &name)?;
    let wanted_state = query.get("state").map_or("open", String::as_str);
    let head = query.get("head").map(|h| match h.split_once(':') {
        Some((o, branch)) if o.eq_ignore_ascii_case(&repo.owner) => Some(branch.to_owned()),
        Some(_) => None,
        None => Some(h.clone()),
    });
    let mut numbers: Vec<u64> = repo
        .pulls
        .values()
        .filter(|_| matches!(wanted_state, "open" | "all"))
        .filter(|p| {
            head.as_ref()
                .is_none_or(|h| h.as_deref() == Some(p.record.head.as_str()))
        })
        .filter(|p| query.get("base").is_none_or(|b| *b == p.record.base))
        .map(|p| p.record.number)
        .collect();
    numbers.reverse();
    let base = base_url(&headers);
    let items = numbers
        .into_iter()
        .map(|n| state.pull_json(&base, &owner, &name, n))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(paged(
        &headers,
        &format!("/repos/{owner}/{name}/pulls"),
        &query,
        items,
    ))
}

/// `GET /repos/{owner}/{repo}/pulls/{number}/files`.
pub async fn files(
    Axum(app): Axum<App>,
    Path((owner, name, n)): Path<(String, String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let number = number(&n)?;
    let state = app.state();
    let repo = state.repo(&owner, &name)?;
    let pull = repo.pull(number)?;
    let head_sha = repo
        .branch(&pull.record.head)
        .map(|b| b.sha.clone())
        .unwrap_or_default();
    let base = base_url(&headers);
    let full = repo.full_name();
    let items = repo
        .pull_files(pull)
        .iter()
        .take(MAX_FILES)
        .map(|f| wire::diff_entry(&base, &full, &head_sha, f))
        .collect();
    Ok(paged(
        &headers,
        &format!("/repos/{owner}/{name}/pulls/{number}/files"),
        &query,
        items,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_requests_need_two_different_branches_and_no_open_duplicate() {
        let mut state = State::default();
        state.create_repo("acme", "fleet").expect("repo");
        state
            .push(
                "acme",
                "fleet",
                "main",
                [("a".to_owned(), "1".to_owned())].into(),
            )
            .expect("push");
        state
            .push(
                "acme",
                "fleet",
                "same",
                [("a".to_owned(), "1".to_owned())].into(),
            )
            .expect("push");
        state
            .push(
                "acme",
                "fleet",
                "change",
                [("a".to_owned(), "2".to_owned())].into(),
            )
            .expect("push");
        let open = |state: &mut State, head: &str| {
            state.open_pull("acme", "fleet", &NewPull::new("t", head, "main"), "alice")
        };
        let message = |r: Result<PullRequest, Rejection>| {
            r.expect_err("refused").errors[0]["message"].clone()
        };
        assert_eq!(
            message(open(&mut state, "same")),
            "No commits between main and same"
        );
        assert_eq!(
            open(&mut state, "missing").expect_err("no branch").errors[0]["field"],
            "head"
        );
        assert_eq!(
            open(&mut state, "other:change").expect_err("fork").errors[0]["field"],
            "head"
        );
        assert_eq!(open(&mut state, "acme:change").expect("opened").number, 1);
        assert_eq!(
            message(open(&mut state, "change")),
            "A pull request already exists for acme:change."
        );
    }
}
