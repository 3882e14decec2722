//! The agent API's JSON, shared by the daemon ([`super::api`]) and `tether-agent`
//! ([`crate::agent_client`]).

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
