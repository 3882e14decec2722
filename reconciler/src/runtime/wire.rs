//! The agent API's JSON, shared by the daemon ([`super::api`]) and `tether-agent`
//! ([`crate::agent_client`]), and the bounds on what a VM may send ([`Report::checked`]).
//!
//! A VM is untrusted. A report's body is at most [`MAX_REPORT_BYTES`] (413 beyond); its
//! `version` follows the spec's runtime-version grammar and its `error` is at most
//! [`MAX_ERROR_BYTES`] (422 naming the field otherwise). An error within that is normalised,
//! never refused: line breaks, tabs and other controls become one space, invisible and
//! bidirectional characters are dropped, and it is cut to [`KEPT_ERROR_CHARS`] characters
//! ([`one_line`]). So what tether keeps, logs and commits is one printable line.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// `GET /v1/agents/<name>/runtime`: what the agent should run.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Desired {
    /// The runtime version.
    pub version: String,
    /// The runtime's environment (may hold secrets: never logged).
    pub env: BTreeMap<String, String>,
    /// How often the agent should poll, in seconds.
    pub poll_seconds: u64,
}

impl fmt::Debug for Desired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Desired")
            .field("version", &self.version)
            .field(
                "env",
                &format_args!("[{} variable(s), redacted]", self.env.len()),
            )
            .field("poll_seconds", &self.poll_seconds)
            .finish()
    }
}

/// `POST /v1/agents/<name>/report`: what the agent runs; every report is a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The version running, if any.
    pub version: Option<String>,
    /// Whether the runtime is up after the last apply.
    pub healthy: bool,
    /// Why not, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The most bytes a report's body may have.
pub const MAX_REPORT_BYTES: usize = 8 * 1024;
/// The most bytes a report's `error` may have before normalising.
pub const MAX_ERROR_BYTES: usize = 4 * 1024;
/// The most characters of an error tether keeps (an ellipsis marks a cut).
pub const KEPT_ERROR_CHARS: usize = 300;

/// A report refused for one of its fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("report field `{field}`: {message}")]
pub struct Refused {
    /// The field.
    pub field: &'static str,
    /// What is wrong, and the bound.
    pub message: String,
}

impl Report {
    /// The report as tether keeps it: `version` checked against the spec's grammar, `error`
    /// bounded and normalised to one printable line ([`one_line`]).
    ///
    /// # Errors
    /// [`Refused`] naming `version` (outside the grammar) or `error` (over
    /// [`MAX_ERROR_BYTES`]).
    pub fn checked(self) -> Result<Report, Refused> {
        if let Some(version) = &self.version
            && let Err(e) = tether_schema::names::RuntimeVersion::parse(version)
        {
            return Err(Refused {
                field: "version",
                message: format!("{}; {}", one_line(&e.message, 100), e.hint),
            });
        }
        if let Some(error) = &self.error
            && error.len() > MAX_ERROR_BYTES
        {
            return Err(Refused {
                field: "error",
                message: format!(
                    "{} bytes; at most {MAX_ERROR_BYTES} are accepted, and tether keeps the first {KEPT_ERROR_CHARS} characters on one line",
                    error.len()
                ),
            });
        }
        Ok(Report {
            error: self.error.map(|e| one_line(&e, KEPT_ERROR_CHARS)),
            ..self
        })
    }
}

/// `text` as one printable line of at most `max` characters: each run of white space and
/// control characters (line breaks included) is one space, invisible and bidirectional
/// characters are dropped, the ends are trimmed, and a cut ends in `…`.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut kept = 0;
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        if tether_schema::text::forbidden(c).is_some() {
            continue;
        }
        if kept + usize::from(space) >= max {
            out.push('…');
            return out;
        }
        if space {
            out.push(' ');
            kept += 1;
            space = false;
        }
        out.push(c);
        kept += 1;
    }
    out
}

/// `POST /v1/agents/<name>/rotate`: the agent's new credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotated {
    /// The new credential; the old one stops working at once.
    pub credential: String,
}

impl fmt::Debug for Rotated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rotated { credential: [redacted] }")
    }
}

/// An error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong and what to do.
    pub error: String,
}
