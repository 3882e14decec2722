//! The plan as a value: [`Plan`] with its [`Summary`] and [`Refusal`], its actions in execution
//! order and its content hash.

use super::safety::Refusal;
use super::{Action, Note, heal};
use crate::compute::Euros;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Counts and estimates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Servers to create.
    pub create: usize,
    /// Servers to replace.
    pub replace: usize,
    /// In-place updates (resize, relabel, power).
    pub update: usize,
    /// Servers to delete.
    pub delete: usize,
    /// Devices to delete (besides those of deleted servers).
    pub delete_devices: usize,
    /// Servers to quarantine (omitted when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub quarantine: usize,
    /// Servers to restore from quarantine (omitted when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub restore: usize,
    /// Servers in quarantine once the plan is applied: powered off, still billed (omitted
    /// when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub quarantined: usize,
    /// What the quarantined servers cost per month (omitted when nothing is quarantined).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined_monthly_cost: Option<Euros>,
    /// Change of the monthly bill.
    pub monthly_cost_delta: Euros,
    /// Estimated API requests to apply the plan.
    pub api_calls: u32,
    /// Agents disrupted (replaced, resized, powered off): the use of the disruption budget.
    pub disruptions: usize,
    /// Self-healing remedies (omitted when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub heal: usize,
    /// Runtime updates delivered in place by the on-VM agent (omitted when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub runtime_updates: usize,
    /// Servers the plan deletes: the use of the deletion budget. Replacements' old servers
    /// come on top, deleted within what is left of it (else by a later run).
    pub deletions: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A complete plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Schema version of this JSON form.
    pub version: u32,
    /// Fleet name.
    pub fleet: String,
    /// Fleet commit, when planned from git.
    pub revision: Option<String>,
    /// Servers of this fleet observed (including retired ones): the base of the deletion budget.
    pub managed_servers: usize,
    /// Servers the executor may delete in this run, replacements' old servers included: the
    /// smaller of the per-run budget and what is left of the hourly one.
    pub deletions_allowed: usize,
    /// Agents the executor may disrupt in this run: the disruption budget left after the
    /// replacements still in progress.
    pub disruptions_allowed: usize,
    /// Actions in execution order.
    pub actions: Vec<Action>,
    /// What was noticed and left alone.
    pub notes: Vec<Note>,
    /// Counts and estimates.
    pub summary: Summary,
    /// Set when safety rules refuse the plan as a whole.
    pub refusal: Option<Refusal>,
    /// `spec.suspend` is set: the plan is reported, nothing of it is applied.
    pub suspended: bool,
    /// Each unhealthy agent's self-healing record after this pass's observation (attempts
    /// are counted once applied); omitted when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub heal: BTreeMap<String, heal::Record>,
    /// SHA-256 over everything above but the revision: equal hashes mean the same actions on
    /// the same inventory under the same policy, whichever commit (a PR head or its merge
    /// commit) they were planned from.
    pub plan_hash: String,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Whether the plan may be applied.
    pub fn accepted(&self) -> bool {
        self.refusal.is_none()
    }

    /// The plan in its final form: actions in execution order (then by agent), notes sorted,
    /// the hash computed.
    pub(super) fn seal(mut self) -> Plan {
        self.actions
            .sort_by(|a, b| (a.order(), a.agent()).cmp(&(b.order(), b.agent())));
        self.notes.sort();
        self.plan_hash = self.content_hash();
        self
    }

    /// The hash of what the plan does: the plan without its revision and its own hash.
    fn content_hash(&self) -> String {
        let body = Plan {
            revision: None,
            plan_hash: String::new(),
            ..self.clone()
        };
        let json = serde_json::to_string(&body).unwrap_or_default();
        Sha256::digest(super::env::without_digests(&json).as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
