//! The JSON the emulated GitHub answers with, field for field as the REST API (version
//! 2022-11-28) sends it, including every field octocrab requires to deserialise. URLs point
//! at the emulator itself (`base`, from the request's `Host`), so they are valid and
//! followable.

use super::files::FileChange;
use super::state::{Comment, PullRequest, Rejection, Repo, Status, User};
use serde_json::{Value, json};

/// Where GitHub's error answers point.
pub const DOCS: &str = "https://docs.github.com/rest";

/// `{"message", "documentation_url", "status", "errors"?}`.
pub fn error(rejection: &Rejection) -> Value {
    let mut body = json!({
        "message": rejection.message,
        "documentation_url": DOCS,
        "status": rejection.status.to_string(),
    });
    if !rejection.errors.is_empty() {
        body["errors"] = json!(rejection.errors);
    }
    body
}

/// A login as it appears in a URL path (`github-actions%5Bbot%5D`).
fn path_login(login: &str) -> String {
    login.replace('[', "%5B").replace(']', "%5D")
}

/// A user (`simple-user`).
pub fn user(base: &str, user: &User) -> Value {
    let api = format!("{base}/users/{}", path_login(&user.login));
    json!({
        "login": user.login,
        "id": user.id,
        "node_id": format!("U_{}", user.id),
        "avatar_url": format!("{base}/_avatars/{}", user.id),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("{base}/{}", path_login(&user.login)),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": if user.bot { "Bot" } else { "User" },
        "user_view_type": "public",
        "site_admin": false,
    })
}

/// A repository (`repository`, the fields clients read).
pub(super) fn repo(base: &str, repo: &Repo, owner: &User) -> Value {
    let full = repo.full_name();
    let api = format!("{base}/repos/{full}");
    json!({
        "id": repo.id,
        "node_id": format!("R_{}", repo.id),
        "name": repo.name,
        "full_name": full,
        "owner": user(base, owner),
        "private": true,
        "html_url": format!("{base}/{full}"),
        "description": null,
        "fork": false,
        "url": api,
        "clone_url": format!("{base}/{full}.git"),
        "issues_url": format!("{api}/issues{{/number}}"),
        "pulls_url": format!("{api}/pulls{{/number}}"),
        "statuses_url": format!("{api}/statuses/{{sha}}"),
        "default_branch": repo.default_branch,
        "visibility": "private",
        "created_at": repo.created_at,
        "updated_at": repo.created_at,
        "pushed_at": repo.created_at,
    })
}

/// An issue comment.
pub fn comment(base: &str, comment: &Comment, author: &User) -> Value {
    let api = format!("{base}/repos/{}", comment.repo);
    json!({
        "id": comment.id,
        "node_id": format!("IC_{}", comment.id),
        "url": format!("{api}/issues/comments/{}", comment.id),
        "html_url": format!("{base}/{}/pull/{}#issuecomment-{}", comment.repo, comment.issue, comment.id),
        "issue_url": format!("{api}/issues/{}", comment.issue),
        "body": comment.body,
        "user": user(base, author),
        "created_at": comment.created_at,
        "updated_at": comment.updated_at,
        "author_association": "MEMBER",
        "performed_via_github_app": null,
    })
}

/// A commit status; `creator` is absent in the combined status's list, as on GitHub.
pub fn status(base: &str, status: &Status, creator: Option<&User>) -> Value {
    let mut body = json!({
        "url": format!("{base}/repos/{}/statuses/{}", status.repo, status.sha),
        "avatar_url": creator.map(|c| format!("{base}/_avatars/{}", c.id)),
        "id": status.id,
        "node_id": format!("SC_{}", status.id),
        "state": status.state,
        "description": status.description,
        "target_url": status.target_url,
        "context": status.context,
        "created_at": status.created_at,
        "updated_at": status.created_at,
    });
    if let Some(creator) = creator {
        body["creator"] = user(base, creator);
    }
    body
}

/// The combined status of `sha`: `state` over the latest status per context.
pub fn combined(
    base: &str,
    repo_json: Value,
    full: &str,
    sha: &str,
    state: &str,
    latest: &[Status],
) -> Value {
    json!({
        "state": state,
        "statuses": latest.iter().map(|s| status(base, s, None)).collect::<Vec<_>>(),
        "sha": sha,
        "total_count": latest.len(),
        "repository": repo_json,
        "commit_url": format!("{base}/repos/{full}/commits/{sha}"),
        "url": format!("{base}/repos/{full}/commits/{sha}/status"),
    })
}

/// One entry of a pull request's files (`diff-entry`).
pub fn diff_entry(base: &str, full: &str, head_sha: &str, file: &FileChange) -> Value {
    let changes = file.additions + file.deletions;
    let mut body = json!({
        "sha": file.sha,
        "filename": file.filename,
        "status": file.status,
        "additions": file.additions,
        "deletions": file.deletions,
        "changes": changes,
        "blob_url": format!("{base}/{full}/blob/{head_sha}/{}", file.filename),
        "raw_url": format!("{base}/{full}/raw/{head_sha}/{}", file.filename),
        "contents_url": format!("{base}/repos/{full}/contents/{}?ref={head_sha}", file.filename),
    });
    if let Some(patch) = &file.patch {
        body["patch"] = json!(patch);
    }
    if let Some(previous) = &file.previous_filename {
        body["previous_filename"] = json!(previous);
    }
    body
}

/// Everything one pull request's JSON is made of.
#[derive(Debug)]
pub struct PullParts<'a> {
    /// The pull request.
    pub pr: &'a PullRequest,
    /// Its author.
    pub author: &'a User,
    /// The repository's JSON (head and base live in it).
    pub repo: Value,
    /// Head and base shas.
    pub head_sha: String,
    /// Base sha.
    pub base_sha: String,
    /// Its files (for the counts).
    pub files: &'a [FileChange],
    /// Its number of issue comments.
    pub comments: usize,
}

/// A pull request (`pull-request`).
pub fn pull(base: &str, p: &PullParts<'_>) -> Value {
    let pr = p.pr;
    let api = format!("{base}/repos/{}", pr.repo);
    let html = format!("{base}/{}/pull/{}", pr.repo, pr.number);
    let owner = p.repo["owner"].clone();
    let owner_login = owner["login"].as_str().unwrap_or_default().to_owned();
    let branch = |name: &str, sha: &str| {
        json!({"label": format!("{owner_login}:{name}"), "ref": name, "sha": sha,
               "user": owner, "repo": p.repo})
    };
    let link = |href: String| json!({ "href": href });
    let links = json!({
        "self": link(format!("{api}/pulls/{}", pr.number)),
        "html": link(html.clone()),
        "issue": link(format!("{api}/issues/{}", pr.number)),
        "comments": link(format!("{api}/issues/{}/comments", pr.number)),
        "review_comments": link(format!("{api}/pulls/{}/comments", pr.number)),
        "review_comment": link(format!("{api}/pulls/comments{{/number}}")),
        "commits": link(format!("{api}/pulls/{}/commits", pr.number)),
        "statuses": link(format!("{api}/statuses/{}", p.head_sha)),
    });
    let counts = json!({
        "comments": p.comments,
        "review_comments": 0,
        "maintainer_can_modify": false,
        "commits": 1,
        "additions": p.files.iter().map(|f| f.additions).sum::<u64>(),
        "deletions": p.files.iter().map(|f| f.deletions).sum::<u64>(),
        "changed_files": p.files.len(),
    });
    let mut body = json!({
        "url": format!("{api}/pulls/{}", pr.number),
        "id": pr.id,
        "node_id": format!("PR_{}", pr.id),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": format!("{api}/issues/{}", pr.number),
        "commits_url": format!("{api}/pulls/{}/commits", pr.number),
        "review_comments_url": format!("{api}/pulls/{}/comments", pr.number),
        "review_comment_url": format!("{api}/pulls/comments{{/number}}"),
        "comments_url": format!("{api}/issues/{}/comments", pr.number),
        "statuses_url": format!("{api}/statuses/{}", p.head_sha),
        "number": pr.number,
        "state": "open",
        "locked": false,
        "title": pr.title,
        "user": user(base, p.author),
        "body": pr.body,
        "labels": [],
        "milestone": null,
        "active_lock_reason": null,
        "created_at": pr.created_at,
        "updated_at": pr.created_at,
        "closed_at": null,
        "merged_at": null,
        "merge_commit_sha": null,
        "assignee": null,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": branch(&pr.head, &p.head_sha),
        "base": branch(&pr.base, &p.base_sha),
        "author_association": "MEMBER",
        "auto_merge": null,
        "draft": pr.draft,
        "merged": false,
        "mergeable": null,
        "rebaseable": null,
        "mergeable_state": "unknown",
        "merged_by": null,
        "_links": links,
    });
    if let (Value::Object(body), Value::Object(counts)) = (&mut body, counts) {
        body.extend(counts);
    }
    body
}
