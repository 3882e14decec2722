//! Why an action did not complete: [`StepError`], what a step failed with, and its [`Kind`]
//! (transient, terminal, skipped), which the report, the status record, the metrics and the
//! notifications carry.
//!
//! A step's error names the server, device or key it concerns; the action and the agent are
//! those of the [`ActionReport`](super::ActionReport) it ends in. No variant holds a token or an
//! auth key: the client errors it wraps never do.

use super::keys::KeyError;
use crate::cloud::retry::Retry;
use crate::cloud::{ActionId, ServerId, hetzner, tailscale};
use crate::runtime::rollout::RolloutError;
use serde::Serialize;

/// How an action that was not done ended, for whoever decides what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Failed on something that passes by itself (a 5xx, a timeout, a rate limit, an
    /// unreachable API, a lost lease, a device slow to enrol): the next pass tries again.
    Transient,
    /// Failed on something retrying does not fix (a refusal, a server without tether's labels,
    /// an agent missing from the fleet, a halted rollout): it needs a person or a spec change.
    Terminal,
    /// Not attempted, on purpose (ownership changed, protection, a budget used up, the server
    /// already gone, no agent API).
    Skipped,
}

impl Kind {
    /// The label and field value: `transient`, `terminal` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Transient => "transient",
            Kind::Terminal => "terminal",
            Kind::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a step failed. Its `Display` is the reason the report shows.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A Hetzner call failed; `doing` says what tether was doing, naming the server.
    #[error("{}{source}", prefix(doing.as_deref()))]
    Hetzner {
        /// What tether was doing, e.g. `retiring server 42`; `None` when the call says it.
        doing: Option<String>,
        /// The client's error (endpoint, status, Hetzner's code and message).
        #[source]
        source: hetzner::Error,
    },
    /// A Tailscale call failed; `doing` names the device.
    #[error("{}{source}", prefix(doing.as_deref()))]
    Tailscale {
        /// What tether was doing, e.g. `deleting device n1`; `None` when the call says it.
        doing: Option<String>,
        /// The client's error.
        #[source]
        source: tailscale::Error,
    },
    /// Minting the one-off auth key for the agent failed.
    #[error(transparent)]
    Key(Box<KeyError>),
    /// A Hetzner action the step waited for ended in error.
    #[error("Hetzner action {id} ({command}) failed: {code}: {message}")]
    ActionFailed {
        /// The action.
        id: ActionId,
        /// Its command, e.g. `change_type`.
        command: String,
        /// Hetzner's error code.
        code: String,
        /// Hetzner's message.
        message: String,
    },
    /// The plan names an agent that the fleet being applied does not have.
    #[error("agent `{agent}` is not in the fleet being applied")]
    NotInFleet {
        /// The agent.
        agent: String,
    },
    /// Hetzner returned a new server without tether's ownership labels, so tether cannot prove
    /// it owns it.
    #[error(
        "Hetzner returned server {server_id} ({name}) without tether's ownership labels tether/fleet={fleet} and tether/agent={agent}; tether will not manage it or create another under that name. Add the labels by hand (`hcloud server add-label`) to let tether manage it, or delete it"
    )]
    Unlabelled {
        /// The server.
        server_id: ServerId,
        /// Its name.
        name: String,
        /// The fleet.
        fleet: String,
        /// The agent.
        agent: String,
    },
    /// A replacement's device did not come online in time; the old server is kept.
    #[error(
        "the replacement is not online yet; old server {old} is kept as {retired_name} and deleted on a later run"
    )]
    ReplacementNotOnline {
        /// The old server.
        old: ServerId,
        /// The name it was renamed to.
        retired_name: String,
    },
    /// Waiting for the new server's device failed (the pass's device watch could not list the
    /// tailnet's devices, or stopped).
    #[error("{0}")]
    DeviceWatch(String),
    /// A runtime update's rollout failed or was rolled back.
    #[error(transparent)]
    Rollout(#[from] RolloutError),
    /// The server disappeared while a step was under way (deleted by hand or by another tool).
    #[error("server {server} disappeared during {during}; the next pass plans from what exists")]
    Vanished {
        /// The server.
        server: ServerId,
        /// The operation it disappeared in, e.g. `its resize`.
        during: &'static str,
    },
    /// A step failed after the server was powered off, and powering it back on failed too: the
    /// server is off against its spec, and its operation record stays on it so that the next
    /// pass powers it on again.
    #[error(
        "{first}; then powering server {server} back on failed too (the next pass retries): {then}"
    )]
    LeftOff {
        /// The server left off.
        server: ServerId,
        /// The step's failure.
        first: Box<StepError>,
        /// Why it could not be powered back on.
        then: Box<StepError>,
    },
}

fn prefix(doing: Option<&str>) -> String {
    doing.map(|d| format!("{d}: ")).unwrap_or_default()
}

impl StepError {
    /// Transient or terminal (a failure is never [`Kind::Skipped`]). A client error is
    /// transient when its retry classifier would retry it (the client already did, within
    /// its budget) or when the answer is still to come (an action still running, a lost lease).
    pub fn kind(&self) -> Kind {
        match self {
            StepError::Hetzner { source, .. } => match source {
                hetzner::Error::ActionTimedOut { .. } | hetzner::Error::Fenced { .. } => {
                    Kind::Transient
                }
                e => of(e.retry()),
            },
            StepError::Tailscale { source, .. } => match source {
                tailscale::Error::Fenced { .. } => Kind::Transient,
                e => of(e.retry()),
            },
            StepError::Key(e) if matches!(**e, KeyError::Refused { .. }) => Kind::Terminal,
            StepError::Key(_) | StepError::ReplacementNotOnline { .. } => Kind::Transient,
            StepError::DeviceWatch(_) => Kind::Transient,
            StepError::Rollout(e) => match e {
                RolloutError::Read { source, .. } => of(source.retry()),
                RolloutError::Relabel { .. } => Kind::Transient,
                RolloutError::NotInFleet { .. } | RolloutError::Halted { .. } => Kind::Terminal,
            },
            StepError::Vanished { .. } => Kind::Transient,
            StepError::LeftOff { then, .. } => then.kind(),
            StepError::ActionFailed { .. }
            | StepError::NotInFleet { .. }
            | StepError::Unlabelled { .. } => Kind::Terminal,
        }
    }
}

fn of(retry: Retry) -> Kind {
    match retry {
        Retry::Terminal => Kind::Terminal,
        Retry::Transient(_) | Retry::Throttled { .. } | Retry::Unreachable(_) => Kind::Transient,
    }
}

impl From<KeyError> for StepError {
    fn from(error: KeyError) -> Self {
        StepError::Key(Box::new(error))
    }
}

impl From<hetzner::Error> for StepError {
    fn from(source: hetzner::Error) -> Self {
        StepError::Hetzner {
            doing: None,
            source,
        }
    }
}

impl From<tailscale::Error> for StepError {
    fn from(source: tailscale::Error) -> Self {
        StepError::Tailscale {
            doing: None,
            source,
        }
    }
}

/// Names what a failed client call was doing: `.doing(|| format!("retiring server {id}"))`.
pub(super) trait Doing<T> {
    /// The error, with what tether was doing.
    fn doing(self, what: impl FnOnce() -> String) -> Result<T, StepError>;
}

impl<T> Doing<T> for Result<T, hetzner::Error> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T, StepError> {
        self.map_err(|source| StepError::Hetzner {
            doing: Some(what()),
            source,
        })
    }
}

impl<T> Doing<T> for Result<T, tailscale::Error> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T, StepError> {
        self.map_err(|source| StepError::Tailscale {
            doing: Some(what()),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hetzner_api(status: u16, code: &str) -> hetzner::Error {
        hetzner::Error::Api(Box::new(hetzner::ApiError {
            operation: "change type of server 7".into(),
            status,
            code: code.into(),
            message: "refused".into(),
            details: serde_json::Value::Null,
            correlation_id: None,
            retry_at: None,
        }))
    }

    #[test]
    fn an_outage_is_transient_and_a_refusal_terminal_with_the_reason_as_before() {
        let outage = StepError::from(hetzner_api(503, "unavailable"));
        assert_eq!(outage.kind(), Kind::Transient);
        assert_eq!(
            outage.to_string(),
            "hetzner change type of server 7: HTTP 503 unavailable: refused"
        );
        let refusal: Result<(), _> = Err(hetzner_api(422, "invalid_input"));
        let refusal = refusal
            .doing(|| "retiring server 7".to_owned())
            .expect_err("failed");
        assert_eq!(refusal.kind(), Kind::Terminal);
        assert_eq!(
            refusal.to_string(),
            "retiring server 7: hetzner change type of server 7: HTTP 422 invalid_input: refused"
        );
        let throttled = StepError::from(hetzner_api(429, "rate_limit_exceeded"));
        assert_eq!(throttled.kind(), Kind::Transient);
    }

    #[test]
    fn a_lost_lease_or_an_action_still_running_is_transient_and_the_rollouts_verdicts_terminal() {
        let fenced = StepError::from(tailscale::Error::Fenced {
            operation: "DELETE /api/v2/device/n1".into(),
            reason: "the lease is lost".into(),
        });
        assert_eq!(fenced.kind(), Kind::Transient);
        let running = StepError::from(hetzner::Error::ActionTimedOut {
            id: 9,
            command: "create_server".into(),
            waited: std::time::Duration::from_secs(600),
        });
        assert_eq!(running.kind(), Kind::Transient);
        let halted = StepError::from(RolloutError::Halted {
            agent: "a1".into(),
            reason: "rollout halted: 2.0 failed on canary a1: crashed; rolled back to 1.0".into(),
        });
        assert_eq!(halted.kind(), Kind::Terminal);
        assert_eq!(
            halted.to_string(),
            "rollout halted: 2.0 failed on canary a1: crashed; rolled back to 1.0"
        );
        let missing = StepError::NotInFleet { agent: "a2".into() };
        assert_eq!(missing.kind(), Kind::Terminal);
        assert_eq!(Kind::Skipped.as_str(), "skipped");
    }
}
