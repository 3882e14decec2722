//! Hetzner client errors, and the classifier deciding which are worth retrying.

use crate::cloud::retry::Retry;
use std::time::{Duration, SystemTime};

/// `d` to the second, e.g. `10m 1s` or `45s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m {s}s"),
    }
}

/// How a request failed before an API answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection could be made: the request was certainly not applied.
    Connect,
    /// No answer in time: the request may or may not have been applied.
    Timeout,
    /// The connection broke after the request was sent: it may have been applied.
    Interrupted,
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "not sent",
            TransportKind::Timeout => "outcome unknown",
            TransportKind::Interrupted => "connection broken",
        })
    }
}

/// An error answer from the API.
#[derive(Debug, thiserror::Error)]
#[error("hetzner {operation}: HTTP {status} {code}: {message}{}", correlation_id.as_deref().map(|c| format!(" (correlation id {c})")).unwrap_or_default())]
pub struct ApiError {
    /// What tether was doing, e.g. `create server acme-prod`.
    pub operation: String,
    /// HTTP status.
    pub status: u16,
    /// API error code, e.g. `uniqueness_error`.
    pub code: String,
    /// API error message.
    pub message: String,
    /// Code-specific details.
    pub details: serde_json::Value,
    /// `X-Correlation-Id` of the response, for Hetzner support.
    pub correlation_id: Option<String>,
    /// When the rate limit allows the next request, for `rate_limit_exceeded`.
    pub retry_at: Option<SystemTime>,
}

/// A Hetzner API failure. Never contains the API token or request bodies (user_data carries
/// an auth key).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error envelope (or a bare error status).
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The request did not get an answer.
    #[error("hetzner {operation}: {message}")]
    Transport {
        /// What tether was doing.
        operation: String,
        /// How it failed.
        kind: TransportKind,
        /// The failure in words, with the endpoint and the root cause
        /// ([`crate::cloud::transport::describe`]).
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("hetzner {operation}: unexpected response: {message}")]
    Decode {
        /// What tether was doing.
        operation: String,
        /// What did not parse.
        message: String,
    },
    /// An action a caller waited for was not found.
    #[error("hetzner action {id} not found while waiting for it")]
    ActionMissing {
        /// The action id.
        id: u64,
    },
    /// An action was still `running` when tether's deadline for it passed.
    #[error(
        "hetzner action {id} ({command}) still running after {}; tether stopped waiting for it",
        human(*waited)
    )]
    ActionTimedOut {
        /// The action id.
        id: u64,
        /// Its command, e.g. `create_server`.
        command: String,
        /// How long tether waited.
        waited: Duration,
    },
    /// A server with the requested name exists but is not the one tether asked for.
    #[error(
        "hetzner: a server named `{name}` (id {id}) already exists with other labels; tether does not own it"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// The existing server's id.
        id: u64,
    },
    /// tether did not send the request: it no longer holds the fleet's single-writer lease
    /// ([`crate::cloud::fence`]).
    #[error("hetzner {operation}: not sent: {reason}")]
    Fenced {
        /// The call that was refused.
        operation: String,
        /// Why, naming the lease.
        reason: String,
    },
    /// The client could not be configured.
    #[error("hetzner client configuration: {0}")]
    Config(String),
    /// tether did not send the request: it cannot tell which of the fleet's projects
    /// ([`crate::cloud::projects`]) the server or action belongs to.
    #[error("hetzner {operation}: not sent: {reason}")]
    Unplaced {
        /// The call that was refused.
        operation: String,
        /// Why, naming the server, action or project.
        reason: String,
    },
}

impl Error {
    /// The API error code, when the API answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api(e) => Some(&e.code),
            _ => None,
        }
    }

    /// Whether the API said the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api(e) if e.status == 404)
    }

    /// Whether the request may have been applied even though no success answer arrived.
    pub fn outcome_unclear(&self) -> bool {
        match self {
            Error::Transport { kind, .. } => *kind != TransportKind::Connect,
            Error::Api(e) => e.status >= 500,
            Error::Decode { .. } => true,
            _ => false,
        }
    }

    /// Should the same request be sent again?
    ///
    /// Retried: `conflict`, `locked` (another action will finish), `rate_limit_exceeded`
    /// (throttled until the bucket allows), every 5xx, timeouts and broken connections.
    /// Never: `invalid_input`, `uniqueness_error`, `protected`, `not_found`,
    /// `resource_limit_exceeded`, 401/403 and every other 4xx.
    pub fn retry(&self) -> Retry {
        match self {
            Error::Api(e) => match (e.code.as_str(), e.status) {
                ("rate_limit_exceeded" | "limit_reached", _) | (_, 429) => Retry::Throttled {
                    reason: format!("HTTP {} {}", e.status, e.code),
                    until: e.retry_at,
                },
                ("conflict" | "locked", _) | (_, 500..) => {
                    Retry::Transient(format!("HTTP {} {}", e.status, e.code))
                }
                _ => Retry::Terminal,
            },
            Error::Transport {
                kind: TransportKind::Connect,
                message,
                ..
            } => Retry::Unreachable(message.clone()),
            Error::Transport { kind, message, .. } => {
                Retry::Transient(format!("{kind}: {message}"))
            }
            Error::Decode { .. }
            | Error::ActionMissing { .. }
            | Error::ActionTimedOut { .. }
            | Error::Fenced { .. }
            | Error::NameTaken { .. }
            | Error::Unplaced { .. }
            | Error::Config(_) => Retry::Terminal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> Error {
        Error::Api(Box::new(ApiError {
            operation: "test".into(),
            status,
            code: code.into(),
            message: String::new(),
            details: serde_json::Value::Null,
            correlation_id: None,
            retry_at: None,
        }))
    }

    #[test]
    fn classification_follows_the_documented_policy() {
        for (status, code) in [
            (409, "conflict"),
            (423, "locked"),
            (502, "bad_gateway"),
            (504, "timeout"),
            (500, "server_error"),
            (503, "unavailable"),
        ] {
            assert!(
                matches!(api(status, code).retry(), Retry::Transient(_)),
                "{code}"
            );
        }
        assert!(matches!(
            api(429, "rate_limit_exceeded").retry(),
            Retry::Throttled { .. }
        ));
        for (status, code) in [
            (400, "invalid_input"),
            (409, "uniqueness_error"),
            (423, "protected"),
            (401, "unauthorized"),
            (403, "forbidden"),
            (404, "not_found"),
            (403, "resource_limit_exceeded"),
        ] {
            assert_eq!(api(status, code).retry(), Retry::Terminal, "{code}");
        }
        let timeout = Error::Transport {
            operation: "x".into(),
            kind: TransportKind::Timeout,
            message: "t".into(),
        };
        assert!(matches!(timeout.retry(), Retry::Transient(_)));
        assert!(timeout.outcome_unclear());
        let refused = Error::Transport {
            operation: "x".into(),
            kind: TransportKind::Connect,
            message: "r".into(),
        };
        assert!(!refused.outcome_unclear());
        assert_eq!(refused.retry(), Retry::Unreachable("r".into()));
    }
}
