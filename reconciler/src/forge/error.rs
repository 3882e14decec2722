//! Forge errors, each carrying the repository and the pull request or commit it concerns, and
//! the classifier deciding which are worth retrying.

use super::guard::Finding;
use crate::cloud::retry::Retry;
use std::fmt;
use std::time::SystemTime;

/// What a request was about, inside the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The repository itself (e.g. opening a pull request, reading the token's identity).
    Repository,
    /// A pull request.
    Pr(u64),
    /// A commit, by sha.
    Commit(String),
}

/// Where a failure happened: repository, target and what tether was doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `owner/name`.
    pub repo: String,
    /// The pull request or commit.
    pub target: Target,
    /// What tether was doing, e.g. `update plan comment`.
    pub operation: &'static str,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "github {}", self.repo)?;
        match &self.target {
            Target::Repository => {}
            Target::Pr(n) => write!(f, " PR #{n}")?,
            Target::Commit(sha) => write!(f, " commit {}", &sha[..sha.len().min(12)])?,
        }
        write!(f, ": {}", self.operation)
    }
}

/// An error answer from the GitHub API.
#[derive(Debug, thiserror::Error)]
#[error("{scope}: HTTP {status}: {message}{}", details(errors))]
pub struct ApiError {
    /// Where.
    pub scope: Scope,
    /// HTTP status.
    pub status: u16,
    /// GitHub's `message`, e.g. `Validation Failed`.
    pub message: String,
    /// GitHub's `errors[]`, each rendered as one line (`resource.field code: message`).
    pub errors: Vec<String>,
    /// The response said the rate limit is used up (`x-ratelimit-remaining: 0`, a 429, or a
    /// secondary-limit message).
    pub rate_limited: bool,
    /// When trying again makes sense (`retry-after` or `x-ratelimit-reset`).
    pub retry_at: Option<SystemTime>,
}

fn details(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(" ({})", errors.join("; "))
    }
}

/// A forge failure. Never contains the token: messages are scrubbed of it before they are
/// stored, and requests' headers are never kept.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// GitHub answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// No answer arrived (connection refused or broken, timeout).
    #[error("{scope}: no answer: {message}")]
    Transport {
        /// Where.
        scope: Scope,
        /// The transport's message.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("{scope}: unexpected response: {message}")]
    Decode {
        /// Where.
        scope: Scope,
        /// What did not parse.
        message: String,
    },
    /// A text to send contained secret-looking material; nothing was sent.
    #[error("{scope}: refused to send a {field} containing {finding}")]
    SecretRefused {
        /// Where.
        scope: Scope,
        /// Which text: `comment body`, `status description`, `pull request body`, ….
        field: &'static str,
        /// What was found (kind and offset, never the material).
        finding: Finding,
    },
    /// The client could not be configured.
    #[error("github client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The HTTP status, when GitHub answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            _ => None,
        }
    }

    /// Should the same request be sent again?
    ///
    /// Throttled: 429, and 403 when the rate limit is used up (primary or secondary), until
    /// `retry-after` or `x-ratelimit-reset`. Transient: every 5xx, and requests that got no
    /// answer. Terminal: every other 4xx (401 bad credentials, 403 forbidden, 404, 422
    /// validation), undecodable answers, refused texts and configuration errors.
    pub fn retry(&self) -> Retry {
        match self {
            Error::Api(e) if e.status == 429 || (e.status == 403 && e.rate_limited) => {
                Retry::Throttled {
                    reason: format!("HTTP {} {}", e.status, e.message),
                    until: e.retry_at,
                }
            }
            Error::Api(e) if e.status >= 500 => {
                Retry::Transient(format!("HTTP {} {}", e.status, e.message))
            }
            Error::Transport { message, .. } => Retry::Transient(message.clone()),
            Error::Api(_)
            | Error::Decode { .. }
            | Error::SecretRefused { .. }
            | Error::Config(_) => Retry::Terminal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, rate_limited: bool) -> Error {
        Error::Api(Box::new(ApiError {
            scope: Scope {
                repo: "acme/fleet".into(),
                target: Target::Pr(7),
                operation: "update plan comment",
            },
            status,
            message: "m".into(),
            errors: vec!["IssueComment.body custom: body is too long".into()],
            rate_limited,
            retry_at: None,
        }))
    }

    #[test]
    fn server_errors_are_transient_limits_throttle_and_other_client_errors_are_terminal() {
        for status in [500, 502, 503, 504] {
            assert!(matches!(api(status, false).retry(), Retry::Transient(_)));
        }
        assert!(matches!(api(429, false).retry(), Retry::Throttled { .. }));
        assert!(matches!(api(403, true).retry(), Retry::Throttled { .. }));
        for status in [400, 401, 403, 404, 422] {
            assert_eq!(api(status, false).retry(), Retry::Terminal, "{status}");
        }
    }

    #[test]
    fn errors_name_the_repository_the_target_and_github_s_message() {
        assert_eq!(
            api(422, false).to_string(),
            "github acme/fleet PR #7: update plan comment: HTTP 422: m (IssueComment.body custom: body is too long)"
        );
        let scope = Scope {
            repo: "acme/fleet".into(),
            target: Target::Commit("0123456789abcdef0123456789abcdef01234567".into()),
            operation: "set status",
        };
        assert_eq!(
            scope.to_string(),
            "github acme/fleet commit 0123456789ab: set status"
        );
    }
}
