//! The multi-step operations tether records on a server while it carries them out: which one
//! is under way and the step it reached, in the server's `tether/operation` label
//! (`docs/decisions/030-operation-intent-on-the-server.md`).
//!
//! The executor writes the label before the operation's first mutation and before each later
//! step, and removes it in its last call; every step is idempotent. The planner reads it: a
//! server that still carries it is planned the same operation again (or its compensation, a
//! restore, when the spec came back half way through a quarantine), and an agent whose server
//! carries it is not Ready.

use crate::compute::Server;
use std::collections::BTreeMap;
use std::fmt;
use tether_schema::labels;

/// An operation recorded on its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Power off, change type, power on.
    Resize,
    /// Stop, deauthorize the devices, rename aside and label.
    Quarantine,
    /// Re-authorize the devices, rename back, power on, wait for a device online.
    Restore,
}

impl Operation {
    /// The label value's first part.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Resize => "resize",
            Operation::Quarantine => "quarantine",
            Operation::Restore => "restore",
        }
    }

    fn parse(text: &str) -> Option<Operation> {
        match text {
            "resize" => Some(Operation::Resize),
            "quarantine" => Some(Operation::Quarantine),
            "restore" => Some(Operation::Restore),
            _ => None,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operation `server` records as under way, with the step it reached. A label tether
/// cannot read counts as a quarantine begun: the step a pass resumes with care (a restore when
/// the spec is back, the quarantine again when it is not), never one that is skipped.
pub fn pending(server: &Server) -> Option<(Operation, &str)> {
    let value = server.labels.get(labels::OPERATION)?;
    let (op, step) = value.split_once('.').unwrap_or((value, ""));
    Some((Operation::parse(op).unwrap_or(Operation::Quarantine), step))
}

/// `labels` with `op` recorded at `step` (`quarantine.stopping`).
pub fn at_step(
    labels: &BTreeMap<String, String>,
    op: Operation,
    step: &str,
) -> BTreeMap<String, String> {
    let mut labels = labels.clone();
    labels.insert(labels::OPERATION.to_owned(), format!("{op}.{step}"));
    labels
}

/// `labels` without a recorded operation.
pub fn done(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels = labels.clone();
    labels.remove(labels::OPERATION);
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::{ServerId, ServerStatus};

    fn server(labels: BTreeMap<String, String>) -> Server {
        Server {
            id: ServerId(1),
            name: "acme".to_owned(),
            status: ServerStatus::Off,
            server_type: "cpx21".to_owned(),
            location: "fsn1".to_owned(),
            image: None,
            labels,
            ipv4: None,
            ipv6: None,
            created: "2026-11-23T10:00:00Z".to_owned(),
            delete_protected: false,
            rebuild_protected: false,
            disk_gb: None,
            project: None,
        }
    }

    #[test]
    fn a_recorded_step_reads_back_and_done_removes_it() {
        let labelled = at_step(&BTreeMap::new(), Operation::Quarantine, "deauthorizing");
        assert_eq!(labelled[labels::OPERATION], "quarantine.deauthorizing");
        let s = server(labelled.clone());
        assert_eq!(pending(&s), Some((Operation::Quarantine, "deauthorizing")));
        assert_eq!(pending(&server(done(&labelled))), None);
    }

    #[test]
    fn an_unreadable_operation_counts_as_a_quarantine_begun() {
        let s = server([(labels::OPERATION.to_owned(), "reshape".to_owned())].into());
        assert_eq!(pending(&s), Some((Operation::Quarantine, "")));
    }
}
