//! Commit statuses: create (201; state, 140-character description, known commit and 1000 per
//! sha and context checked), list for a ref (newest first, paginated) and the combined status.

use super::gate::Caller;
use super::routes::{App, Reply, base_url, body_json, json, paged, required_field, string_field};
use super::state::{Rejection, STATUS_DESCRIPTION_LIMIT, STATUSES_PER_CONTEXT, State, Status, now};
use super::wire;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State as Axum};
use http::{HeaderMap, StatusCode};
use std::collections::BTreeMap;

const STATES: [&str; 4] = ["error", "failure", "pending", "success"];

/// A status to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStatus {
    /// `error`, `failure`, `pending` or `success`.
    pub state: String,
    /// Context (`default` when absent).
    pub context: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Link to details.
    pub target_url: Option<String>,
}

impl State {
    /// Records a status on commit `sha` by `creator`.
    ///
    /// # Errors
    /// 404 without the repository; 422 for an unknown state, a description over 140
    /// characters, a commit the repository does not have, or a 1001st status for the sha and
    /// context.
    pub fn add_status(
        &mut self,
        owner: &str,
        name: &str,
        sha: &str,
        new: &NewStatus,
        creator: &str,
    ) -> Result<Status, Rejection> {
        if !STATES.contains(&new.state.as_str()) {
            let message = "state is not included in the list";
            return Err(Rejection::validation(
                "Status",
                "state",
                "custom",
                Some(message),
            ));
        }
        if let Some(d) = &new.description
            && d.chars().count() > STATUS_DESCRIPTION_LIMIT
        {
            let message = "description is too long (maximum is 140 characters)";
            return Err(Rejection::validation(
                "Status",
                "description",
                "custom",
                Some(message),
            ));
        }
        if !self.repo(owner, name)?.commits.contains(sha) {
            return Err(Rejection::new(
                422,
                format!("No commit found for SHA: {sha}"),
            ));
        }
        let context = new.context.clone().unwrap_or_else(|| "default".into());
        let id = self.next_id();
        self.user(creator);
        let repo = self.repo_mut(owner, name)?;
        let same = repo
            .statuses
            .iter()
            .filter(|s| s.sha == sha && s.context.eq_ignore_ascii_case(&context))
            .count();
        if same >= STATUSES_PER_CONTEXT {
            return Err(Rejection::custom(
                "Status",
                "This SHA and context has reached the maximum number of statuses.",
            ));
        }
        let status = Status {
            id,
            repo: repo.full_name(),
            sha: sha.to_owned(),
            state: new.state.clone(),
            context,
            description: new.description.clone(),
            target_url: new.target_url.clone(),
            creator: creator.to_owned(),
            created_at: now(),
        };
        repo.statuses.push(status.clone());
        Ok(status)
    }

    /// The commit `reference` names (a known sha, a branch, `heads/<branch>`) and its
    /// statuses, newest first.
    ///
    /// # Errors
    /// 404 without the repository or the commit.
    pub fn statuses_for(
        &self,
        owner: &str,
        name: &str,
        reference: &str,
    ) -> Result<(String, Vec<Status>), Rejection> {
        let repo = self.repo(owner, name)?;
        let sha = repo
            .resolve(reference)
            .ok_or_else(|| Rejection::new(404, format!("No commit found for SHA: {reference}")))?;
        let mut statuses: Vec<Status> = repo
            .statuses
            .iter()
            .filter(|s| s.sha == sha)
            .cloned()
            .collect();
        statuses.reverse();
        Ok((sha, statuses))
    }
}

/// The latest status per context (case-insensitive), from a newest-first list.
pub fn latest_per_context(newest_first: &[Status]) -> Vec<Status> {
    let mut seen = std::collections::BTreeSet::new();
    newest_first
        .iter()
        .filter(|s| seen.insert(s.context.to_ascii_lowercase()))
        .cloned()
        .collect()
}

/// GitHub's combined state: `failure` if any latest status is `error` or `failure`, `pending`
/// if there is none or any is `pending`, `success` otherwise.
pub fn combined_state(latest: &[Status]) -> &'static str {
    if latest
        .iter()
        .any(|s| s.state == "error" || s.state == "failure")
    {
        "failure"
    } else if latest.is_empty() || latest.iter().any(|s| s.state == "pending") {
        "pending"
    } else {
        "success"
    }
}

/// `POST /repos/{owner}/{repo}/statuses/{sha}`.
pub async fn create(
    Axum(app): Axum<App>,
    Extension(caller): Extension<Caller>,
    Path((owner, name, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let body = body_json(&body)?;
    let new = NewStatus {
        state: required_field(&body, "state")?,
        context: string_field(&body, "context")?,
        description: string_field(&body, "description")?,
        target_url: string_field(&body, "target_url")?,
    };
    let mut state = app.state();
    let status = state.add_status(&owner, &name, &sha, &new, &caller.login)?;
    let creator = state.user(&caller.login);
    Ok(json(
        StatusCode::CREATED,
        &wire::status(&base_url(&headers), &status, Some(&creator)),
    ))
}

/// `GET /repos/{owner}/{repo}/commits/{ref}/statuses` and `…/commits/{ref}/status`.
pub async fn read(
    Axum(app): Axum<App>,
    Path((owner, name, rest)): Path<(String, String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let (reference, what) = rest.rsplit_once('/').ok_or_else(Rejection::not_found)?;
    let mut state = app.state();
    let (sha, statuses) = state.statuses_for(&owner, &name, reference)?;
    let base = base_url(&headers);
    match what {
        "statuses" => {
            let items = statuses
                .iter()
                .map(|s| {
                    let creator = state.user(&s.creator);
                    wire::status(&base, s, Some(&creator))
                })
                .collect();
            let path = format!("/repos/{owner}/{name}/commits/{reference}/statuses");
            Ok(paged(&headers, &path, &query, items))
        }
        "status" => {
            let latest = latest_per_context(&statuses);
            let repo = state.repo(&owner, &name)?;
            let (full, repo_owner) = (repo.full_name(), repo.owner.clone());
            let owner_user = state.user(&repo_owner);
            let repo_json = wire::repo(&base, state.repo(&owner, &name)?, &owner_user);
            let body = wire::combined(
                &base,
                repo_json,
                &full,
                &sha,
                combined_state(&latest),
                &latest,
            );
            Ok(json(StatusCode::OK, &body))
        }
        _ => Err(Rejection::not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sha_and_context_keep_at_most_a_thousand_statuses() {
        let mut state = State::default();
        state.create_repo("acme", "fleet").expect("repo");
        let sha = state
            .push("acme", "fleet", "main", Default::default())
            .expect("push");
        let new = NewStatus {
            state: "pending".into(),
            context: Some("tether/prod".into()),
            description: None,
            target_url: None,
        };
        for _ in 0..1000 {
            state
                .add_status("acme", "fleet", &sha, &new, "bot")
                .expect("status");
        }
        let err = state
            .add_status("acme", "fleet", &sha, &new, "bot")
            .expect_err("full");
        assert_eq!(
            err.errors[0]["message"],
            "This SHA and context has reached the maximum number of statuses."
        );
        let other = NewStatus {
            context: Some("TETHER/staging".into()),
            ..new
        };
        state
            .add_status("acme", "fleet", &sha, &other, "bot")
            .expect("other context");
    }

    #[test]
    fn the_combined_state_follows_the_latest_status_per_context() {
        let status = |id, context: &str, state: &str| Status {
            id,
            repo: "acme/fleet".into(),
            sha: "s".into(),
            state: state.into(),
            context: context.into(),
            description: None,
            target_url: None,
            creator: "bot".into(),
            created_at: String::new(),
        };
        assert_eq!(combined_state(&[]), "pending");
        let newest_first = [
            status(3, "a", "success"),
            status(2, "A", "failure"),
            status(1, "b", "success"),
        ];
        let latest = latest_per_context(&newest_first);
        assert_eq!(latest.iter().map(|s| s.id).collect::<Vec<_>>(), [3, 1]);
        assert_eq!(combined_state(&latest), "success");
        assert_eq!(
            combined_state(&[status(1, "a", "error"), status(2, "b", "pending")]),
            "failure"
        );
        assert_eq!(
            combined_state(&[status(1, "a", "success"), status(2, "b", "pending")]),
            "pending"
        );
    }
}
