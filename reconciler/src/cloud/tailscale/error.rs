//! [`Error`]: what a Tailscale call can fail with, and [`Error::retry`], the classifier the one
//! retry policy in [`crate::cloud::retry`] asks before trying again.
//!
//! No variant holds a token, a client secret or an auth key: API messages come from the
//! `{"message": …}` body, transport errors name the URL (which never carries credentials).

use super::wire;
use crate::cloud::retry::Retry;
use http::StatusCode;
use std::time::{Duration, SystemTime};

/// A failed Tailscale API call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error status.
    #[error("{operation}: Tailscale answered {status}: {message}")]
    Api {
        /// The call, e.g. `GET /api/v2/device/n1CNTRL`.
        operation: String,
        /// HTTP status.
        status: u16,
        /// The `message` of the error body (or the start of a non-JSON body).
        message: String,
        /// When a 429 may be retried, from `Retry-After`.
        retry_at: Option<SystemTime>,
    },
    /// The request did not complete: connection refused or reset, timeout, unreadable body.
    #[error("{operation}: {}", crate::cloud::transport::describe(source))]
    Transport {
        /// The call.
        operation: String,
        /// What went wrong.
        #[source]
        source: reqwest::Error,
    },
    /// The API answered success with a body tether cannot read.
    #[error("{operation}: unexpected response: {message}")]
    Decode {
        /// The call.
        operation: String,
        /// What did not parse.
        message: String,
    },
    /// tether did not send the request: it no longer holds the fleet's single-writer lease
    /// ([`crate::cloud::fence`]).
    #[error("{operation}: not sent: {reason}")]
    Fenced {
        /// The call that was refused.
        operation: String,
        /// Why, naming the lease.
        reason: String,
    },
}

impl Error {
    /// Whether and how to retry: 429 is throttled, 5xx (but 501) and transport failures are
    /// transient, everything else (4xx, 501 "not in your tailnet", decoding) is terminal.
    pub fn retry(&self) -> Retry {
        match self {
            Error::Api {
                status: 429,
                message,
                retry_at,
                ..
            } => Retry::Throttled {
                reason: format!("429 {message}"),
                until: *retry_at,
            },
            Error::Api { status: 501, .. } => Retry::Terminal,
            Error::Api {
                status, message, ..
            } if *status >= 500 => Retry::Transient(format!("{status} {message}")),
            Error::Api { .. } | Error::Decode { .. } | Error::Fenced { .. } => Retry::Terminal,
            Error::Transport { source, .. } if source.is_builder() => Retry::Terminal,
            Error::Transport { source, .. } if source.is_connect() => {
                Retry::Unreachable(crate::cloud::transport::describe(source))
            }
            Error::Transport { source, .. } => Retry::Transient(transport_reason(source)),
        }
    }

    /// The classifier for creates, which are never repeated blindly: only failures where the
    /// request certainly created nothing are retried (429, connection not established). Any
    /// other failure is returned at once, for the caller to look for what may have been
    /// created (see [`Error::may_have_applied`]).
    pub fn retry_create(&self) -> Retry {
        match self {
            Error::Api { status: 429, .. } => self.retry(),
            Error::Transport { source, .. } if source.is_connect() => self.retry(),
            Error::Api { .. }
            | Error::Transport { .. }
            | Error::Decode { .. }
            | Error::Fenced { .. } => Retry::Terminal,
        }
    }

    /// Whether the request may have taken effect although the call failed: a 5xx, a transport
    /// failure after the connection was made (reset, timeout, a lost response), or a success
    /// whose body could not be read. A 4xx or 501 (the API refused) or a refused connection is
    /// a clear "nothing happened".
    pub fn may_have_applied(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status >= 500 && *status != 501,
            Error::Transport { source, .. } => !source.is_connect() && !source.is_builder(),
            Error::Decode { .. } => true,
            // Refused before any request was sent.
            Error::Fenced { .. } => false,
        }
    }

    /// The HTTP status, when the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::Transport { .. } | Error::Decode { .. } | Error::Fenced { .. } => None,
        }
    }

    /// Whether the API said 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

fn transport_reason(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    format!("transport ({kind})")
}

/// A secret-free description of a JSON error: its category and position, never the values.
pub(super) fn json_problem(e: &serde_json::Error) -> String {
    let category = match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{category} at line {} column {}", e.line(), e.column())
}

/// The [`Error::Api`] for an error response: its `{"message": …}`, or the start of the body.
pub(super) fn api_error(
    operation: String,
    status: StatusCode,
    body: &[u8],
    retry_at: Option<SystemTime>,
) -> Error {
    let message = match serde_json::from_slice::<wire::ErrorBody>(body) {
        Ok(e) => e.message,
        Err(_) => String::from_utf8_lossy(body).chars().take(200).collect(),
    };
    Error::Api {
        operation,
        status: status.as_u16(),
        message,
        retry_at,
    }
}

/// When a throttled response may be retried, from its `Retry-After` seconds.
pub(super) fn retry_at(response: &reqwest::Response, now: SystemTime) -> Option<SystemTime> {
    let seconds: u64 = response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(now + Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> Error {
        Error::Api {
            operation: "GET /x".into(),
            status,
            message: "m".into(),
            retry_at: None,
        }
    }

    #[test]
    fn server_errors_retry_and_client_errors_do_not() {
        assert!(matches!(api(500).retry(), Retry::Transient(_)));
        assert!(matches!(api(504).retry(), Retry::Transient(_)));
        assert!(matches!(api(429).retry(), Retry::Throttled { .. }));
        for status in [400, 401, 403, 404, 409, 501] {
            assert_eq!(api(status).retry(), Retry::Terminal, "{status}");
        }
        let decode = Error::Decode {
            operation: "x".into(),
            message: "y".into(),
        };
        assert_eq!(decode.retry(), Retry::Terminal);
    }

    #[test]
    fn creates_retry_only_when_nothing_can_have_been_created() {
        assert!(matches!(api(429).retry_create(), Retry::Throttled { .. }));
        for status in [500, 502, 503, 504, 400, 409] {
            assert_eq!(api(status).retry_create(), Retry::Terminal, "{status}");
        }
        for status in [500, 502, 503, 504] {
            assert!(api(status).may_have_applied(), "{status}");
        }
        for status in [400, 403, 404, 429, 501] {
            assert!(!api(status).may_have_applied(), "{status}");
        }
    }
}
