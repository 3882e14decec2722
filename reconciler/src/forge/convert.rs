//! Between octocrab's models and errors and tether's plain data: status states, changed
//! files, and [`error`], which types every failure and scrubs the token from its messages.

use super::error::{ApiError, Error, Scope};
use super::{ChangedFile, FileStatus, StatusState};
use octocrab::models::repos::{DiffEntry, DiffEntryStatus};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// octocrab's status state for `state`.
pub fn status_state(state: StatusState) -> octocrab::models::StatusState {
    use octocrab::models::StatusState as Wire;
    match state {
        StatusState::Pending => Wire::Pending,
        StatusState::Success => Wire::Success,
        StatusState::Failure => Wire::Failure,
        StatusState::Error => Wire::Error,
    }
}

/// tether's view of one entry of a pull request's files.
pub fn changed_file(entry: DiffEntry) -> ChangedFile {
    let status = match entry.status {
        DiffEntryStatus::Added => FileStatus::Added,
        DiffEntryStatus::Removed => FileStatus::Removed,
        DiffEntryStatus::Modified => FileStatus::Modified,
        DiffEntryStatus::Renamed => FileStatus::Renamed,
        DiffEntryStatus::Copied => FileStatus::Copied,
        DiffEntryStatus::Unchanged => FileStatus::Unchanged,
        _ => FileStatus::Changed,
    };
    ChangedFile {
        filename: entry.filename,
        status,
        previous_filename: entry.previous_filename,
    }
}

/// Types an octocrab error for `scope`; `token` is scrubbed from every message kept, `now`
/// turns a `retry-after` into a time.
pub fn error(scope: &Scope, err: octocrab::Error, token: &str, now: SystemTime) -> Error {
    let scope = scope.clone();
    let scrub = |text: String| {
        if token.is_empty() {
            text
        } else {
            text.replace(token, "[redacted]")
        }
    };
    match err {
        octocrab::Error::GitHub { source, .. } => {
            let header = |name: &str| {
                source
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .and_then(|v| v.to_str().ok())
            };
            let exhausted = header("x-ratelimit-remaining") == Some("0");
            let retry_after = header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| now + Duration::from_secs(s));
            let reset = source
                .rate_limit_reset
                .filter(|_| exhausted)
                .map(|s| UNIX_EPOCH + Duration::from_secs(s));
            let message = scrub(source.message.clone());
            let rate_limited = exhausted
                || retry_after.is_some()
                || message.to_ascii_lowercase().contains("rate limit");
            let errors = source.errors.iter().flatten();
            Error::Api(Box::new(ApiError {
                scope,
                status: source.status_code.as_u16(),
                errors: errors.map(|e| scrub(field_error(e))).collect(),
                message,
                rate_limited,
                retry_at: retry_after.or(reset),
            }))
        }
        e @ (octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. }) => Error::Transport {
            scope,
            message: scrub(chain(&e)),
        },
        e => Error::Decode {
            scope,
            message: scrub(chain(&e)),
        },
    }
}

/// One of GitHub's `errors[]` as a line: `resource.field code: message`, or the value itself.
fn field_error(error: &serde_json::Value) -> String {
    let text = |key| error.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    match error {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(_) => {
            let place = [text("resource"), text("field")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(".");
            format!("{place} {}: {}", text("code"), text("message"))
                .trim()
                .to_owned()
        }
        other => other.to_string(),
    }
}

/// An error and its sources, joined by `: `.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn github_field_errors_read_as_one_line_each() {
        let e = json!({"resource": "Status", "code": "custom", "field": "description",
            "message": "description is too long (maximum is 140 characters)"});
        assert_eq!(
            field_error(&e),
            "Status.description custom: description is too long (maximum is 140 characters)"
        );
        assert_eq!(field_error(&json!("plain")), "plain");
    }
}
