//! Issue comments on pull requests: create (201), list (paginated, `since`), get, update (PATCH,
//! and POST as octocrab sends it), delete (204); bodies over 65,536 characters are refused
//! with GitHub's 422.

use super::gate::Caller;
use super::routes::{App, Reply, body_json, json, number, paged, required_field};
use super::state::{COMMENT_BODY_LIMIT, Comment, Rejection, State, now};
use super::wire;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State as Axum};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn check_body(body: &str) -> Result<(), Rejection> {
    if body.trim().is_empty() {
        return Err(Rejection::validation(
            "IssueComment",
            "body",
            "missing_field",
            None,
        ));
    }
    if body.chars().count() > COMMENT_BODY_LIMIT {
        return Err(Rejection::validation(
            "IssueComment",
            "body",
            "custom",
            Some("body is too long (maximum is 65536 characters)"),
        ));
    }
    Ok(())
}

impl State {
    /// Adds a comment by `author` on pull request `issue`.
    ///
    /// # Errors
    /// 404 without such a repository or pull request; 422 for a blank or too long body.
    pub fn add_comment(
        &mut self,
        owner: &str,
        name: &str,
        issue: u64,
        author: &str,
        body: &str,
    ) -> Result<Comment, Rejection> {
        check_body(body)?;
        self.repo(owner, name)?.pull(issue)?;
        let id = self.next_id();
        self.user(author);
        let repo = self.repo_mut(owner, name)?;
        let at = now();
        let comment = Comment {
            id,
            repo: repo.full_name(),
            issue,
            author: author.to_owned(),
            body: body.to_owned(),
            created_at: at.clone(),
            updated_at: at,
        };
        repo.comments.insert(id, comment.clone());
        Ok(comment)
    }

    /// The comments on `issue`, oldest first; with `since`, only those updated at or after it.
    ///
    /// # Errors
    /// 404 without such a repository or pull request; 422 for a `since` that is not ISO 8601.
    pub fn list_comments(
        &self,
        owner: &str,
        name: &str,
        issue: u64,
        since: Option<&str>,
    ) -> Result<Vec<Comment>, Rejection> {
        let repo = self.repo(owner, name)?;
        repo.pull(issue)?;
        let since = since
            .map(|s| {
                OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                    Rejection::invalid_request(&format!("`since` {s} is not a timestamp"))
                })
            })
            .transpose()?;
        Ok(repo
            .comments
            .values()
            .filter(|c| c.issue == issue)
            .filter(|c| {
                since.is_none_or(|since| {
                    OffsetDateTime::parse(&c.updated_at, &Rfc3339).is_ok_and(|at| at >= since)
                })
            })
            .cloned()
            .collect())
    }

    /// The comment `id` of the repository.
    ///
    /// # Errors
    /// 404.
    pub fn comment(&self, owner: &str, name: &str, id: u64) -> Result<Comment, Rejection> {
        let repo = self.repo(owner, name)?;
        repo.comments
            .get(&id)
            .cloned()
            .ok_or_else(Rejection::not_found)
    }

    /// Replaces the body of comment `id`.
    ///
    /// # Errors
    /// 404; 422 for a blank or too long body.
    pub fn update_comment(
        &mut self,
        owner: &str,
        name: &str,
        id: u64,
        body: &str,
    ) -> Result<Comment, Rejection> {
        check_body(body)?;
        let repo = self.repo_mut(owner, name)?;
        let comment = repo
            .comments
            .get_mut(&id)
            .ok_or_else(Rejection::not_found)?;
        comment.body = body.to_owned();
        comment.updated_at = now();
        Ok(comment.clone())
    }

    /// Deletes comment `id`.
    ///
    /// # Errors
    /// 404.
    pub fn delete_comment(&mut self, owner: &str, name: &str, id: u64) -> Result<(), Rejection> {
        let repo = self.repo_mut(owner, name)?;
        repo.comments
            .remove(&id)
            .map(drop)
            .ok_or_else(Rejection::not_found)
    }
}

fn render(
    state: &mut State,
    headers: &HeaderMap,
    status: StatusCode,
    comment: &Comment,
) -> Response {
    let author = state.user(&comment.author);
    json(
        status,
        &wire::comment(&super::routes::base_url(headers), comment, &author),
    )
}

/// `GET /repos/{owner}/{repo}/issues/{number}/comments`.
pub async fn list(
    Axum(app): Axum<App>,
    Path((owner, name, issue)): Path<(String, String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let issue = number(&issue)?;
    let mut state = app.state();
    let comments =
        state.list_comments(&owner, &name, issue, query.get("since").map(String::as_str))?;
    let base = super::routes::base_url(&headers);
    let items = comments
        .iter()
        .map(|c| {
            let author = state.user(&c.author);
            wire::comment(&base, c, &author)
        })
        .collect();
    let path = format!("/repos/{owner}/{name}/issues/{issue}/comments");
    Ok(paged(&headers, &path, &query, items))
}

/// `POST /repos/{owner}/{repo}/issues/{number}/comments`.
pub async fn create(
    Axum(app): Axum<App>,
    Extension(caller): Extension<Caller>,
    Path((owner, name, issue)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let issue = number(&issue)?;
    let text = required_field(&body_json(&body)?, "body")?;
    let mut state = app.state();
    let comment = state.add_comment(&owner, &name, issue, &caller.login, &text)?;
    Ok(render(&mut state, &headers, StatusCode::CREATED, &comment))
}

/// `GET /repos/{owner}/{repo}/issues/comments/{id}`.
pub async fn get(
    Axum(app): Axum<App>,
    Path((owner, name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Reply {
    let mut state = app.state();
    let comment = state.comment(&owner, &name, number(&id)?)?;
    Ok(render(&mut state, &headers, StatusCode::OK, &comment))
}

/// `PATCH` `/repos/{owner}/{repo}/issues/comments/{id}`, and `POST` there as GitHub answers
/// it: its REST API takes POST wherever it takes PATCH (octocrab's `update_comment` relies
/// on it).
pub async fn update(
    Axum(app): Axum<App>,
    Path((owner, name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let id = number(&id)?;
    let text = required_field(&body_json(&body)?, "body")?;
    let mut state = app.state();
    let comment = state.update_comment(&owner, &name, id, &text)?;
    Ok(render(&mut state, &headers, StatusCode::OK, &comment))
}

/// `DELETE /repos/{owner}/{repo}/issues/comments/{id}`: 204.
pub async fn delete(
    Axum(app): Axum<App>,
    Path((owner, name, id)): Path<(String, String, String)>,
) -> Reply {
    app.state().delete_comment(&owner, &name, number(&id)?)?;
    let mut response = Response::default();
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}
