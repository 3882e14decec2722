//! The account of an apply run: per action what happened, with the provider ids auditors need.

use super::error::{Kind, StepError};
use crate::cloud::tailscale::{AuthKeyId, DeviceId};
use crate::cloud::{ActionId, ServerId};
use crate::plan::Action;
use serde::Serialize;
use std::fmt;

/// How one action ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    /// Carried out.
    Done,
    /// Attempted and failed.
    Failed {
        /// Why.
        reason: String,
        /// Transient (the next pass tries again) or terminal (it needs a person).
        kind: Kind,
    },
    /// Not attempted.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Not this run's to do: left to a process that can do it (a runtime update in a run
    /// without an agent API waits for a daemon with one, or for the server's next creation).
    /// It does not fail the run.
    Deferred {
        /// Why, and who does it.
        reason: String,
    },
}

impl Outcome {
    /// The failure `error`, its reason rendered.
    pub fn failed(error: &StepError) -> Outcome {
        Outcome::Failed {
            reason: error.to_string(),
            kind: error.kind(),
        }
    }

    /// How an action that was not done ended; `None` when it was done or deferred.
    pub fn kind(&self) -> Option<Kind> {
        match self {
            Outcome::Done | Outcome::Deferred { .. } => None,
            Outcome::Failed { kind, .. } => Some(*kind),
            Outcome::Skipped { .. } => Some(Kind::Skipped),
        }
    }
}

/// What happened to one planned action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionReport {
    /// The action kind (`create`, `delete`, …).
    pub kind: &'static str,
    /// The agent.
    pub agent: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The server acted on or created.
    pub server_id: Option<ServerId>,
    /// The server's public IPv4.
    pub ipv4: Option<String>,
    /// Hetzner action ids.
    pub action_ids: Vec<ActionId>,
    /// Tailscale devices involved (enrolled or deleted).
    pub device_ids: Vec<DeviceId>,
    /// The server this action deleted (a deletion, or a replacement's old server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_server: Option<ServerId>,
    /// The auth key minted (and revoked).
    pub key_id: Option<AuthKeyId>,
    /// Something to look at even though the action is done.
    pub warning: Option<String>,
    /// Why a server is deleted, quarantined or restored (the plan's reason), for the audit trail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip)]
    pub(crate) order: u8,
}

impl ActionReport {
    /// A report for `action` with no outcome details yet.
    pub(crate) fn new(action: &Action, outcome: Outcome) -> Self {
        ActionReport {
            kind: action.kind(),
            agent: action.agent().to_owned(),
            outcome,
            server_id: None,
            ipv4: None,
            action_ids: Vec::new(),
            device_ids: Vec::new(),
            deleted_server: None,
            key_id: None,
            warning: None,
            reason: match action {
                Action::Delete { reason, .. }
                | Action::Quarantine { reason, .. }
                | Action::Restore { reason, .. }
                | Action::Heal { reason, .. } => Some(reason.clone()),
                _ => None,
            },
            order: order(action),
        }
    }

    /// A skipped action.
    pub(crate) fn skipped(action: &Action, reason: &str) -> Self {
        ActionReport::new(
            action,
            Outcome::Skipped {
                reason: reason.to_owned(),
            },
        )
    }
}

fn order(action: &Action) -> u8 {
    match action {
        Action::Create { .. } | Action::Restore { .. } => 0,
        Action::Replace { .. } | Action::Heal { .. } => 1,
        Action::Resize { .. }
        | Action::Relabel { .. }
        | Action::PowerOn { .. }
        | Action::PowerOff { .. }
        | Action::Quarantine { .. } => 2,
        Action::Delete { .. } => 3,
        Action::DeleteDevice { .. } => 4,
        Action::UpdateRuntime { .. } => 5,
    }
}

/// The account of a whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    /// The plan executed.
    pub plan_hash: String,
    /// The fleet revision.
    pub revision: Option<String>,
    /// Every action, in plan order.
    pub actions: Vec<ActionReport>,
}

impl ApplyReport {
    /// (done, failed, skipped); deferred actions are in none of them ([`Self::deferred`]).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for a in &self.actions {
            match a.outcome {
                Outcome::Done => c.0 += 1,
                Outcome::Failed { .. } => c.1 += 1,
                Outcome::Skipped { .. } => c.2 += 1,
                Outcome::Deferred { .. } => {}
            }
        }
        c
    }

    /// Actions left to another process ([`Outcome::Deferred`]).
    pub fn deferred(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a.outcome, Outcome::Deferred { .. }))
            .count()
    }

    /// Whether every action was carried out or deferred to the process that does it.
    pub fn succeeded(&self) -> bool {
        self.counts().1 == 0 && self.counts().2 == 0
    }

    /// The one-line total: `Apply: 2 done, 0 failed, 0 skipped.`, naming deferred actions
    /// when there are any.
    pub fn totals(&self) -> String {
        let (done, failed, skipped) = self.counts();
        match self.deferred() {
            0 => format!("Apply: {done} done, {failed} failed, {skipped} skipped."),
            n => format!("Apply: {done} done, {failed} failed, {skipped} skipped, {n} deferred."),
        }
    }

    /// Done actions of `kind`.
    pub fn done(&self, kind: &str) -> usize {
        self.actions
            .iter()
            .filter(|a| a.kind == kind && a.outcome == Outcome::Done)
            .count()
    }
}

/// One line: kind, agent, outcome, the ids involved and any warning.
impl fmt::Display for ActionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = [
            self.server_id.map(|s| format!("server {s}")),
            (!self.action_ids.is_empty()).then(|| {
                format!(
                    "actions {}",
                    self.action_ids
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }),
            (!self.device_ids.is_empty()).then(|| {
                format!(
                    "devices {}",
                    self.device_ids
                        .iter()
                        .map(|d| d.0.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let outcome = match &self.outcome {
            Outcome::Done => "done".to_owned(),
            Outcome::Failed { reason, kind } => format!("FAILED ({kind}): {reason}"),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
            Outcome::Deferred { reason } => format!("deferred: {reason}"),
        };
        write!(f, "{:<14} {:<24} {outcome}", self.kind, self.agent)?;
        if !ids.is_empty() {
            write!(f, " [{ids}]")?;
        }
        if let Some(w) = &self.warning {
            write!(f, " (warning: {w})")?;
        }
        if let Some(why) = &self.reason {
            write!(f, " (why: {why})")?;
        }
        Ok(())
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.actions {
            writeln!(f, "{a}")?;
        }
        f.write_str(&self.totals())
    }
}
