//! A remedy's durable state on its server: the attempt it is, its remedy and when it started
//! ([`labels::HEAL_ATTEMPT`], [`labels::HEAL_REMEDY`], [`labels::HEAL_AT`]). The executor writes
//! it in one Hetzner call before the remedy's first mutation; the planner reads it back from the
//! agent's servers, current and retired, so a kill before the status commit never makes an
//! attempt a free retry. Decision `docs/decisions/032-remedy-attempts-on-the-server.md`.
//!
//! # Guarantees
//! - An attempt read from a server counts like one the status branch records: the larger
//!   count wins ([`Journal::merge_into`]), so the cap holds whether or not the pass that made
//!   the attempt lived to commit.
//! - A journal ends by observation, not by a second write: once a device of the agent is
//!   online or was seen after the attempt started, the attempt is over ([`Journal::open`]) and
//!   its labels are history.

use super::{Record, Remedy};
use crate::compute::Server;
use crate::tailnet::Device;
use std::collections::BTreeMap;
use tether_schema::labels;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One attempt, as its server's labels record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Journal {
    /// Which attempt (1-based).
    pub attempt: u32,
    /// Its remedy.
    pub remedy: Remedy,
    /// When it started.
    pub at: OffsetDateTime,
}

impl Journal {
    /// The labels that record this attempt (values fit Hetzner's label rules).
    pub fn labels(&self) -> [(String, String); 3] {
        [
            (labels::HEAL_ATTEMPT.to_owned(), self.attempt.to_string()),
            (
                labels::HEAL_REMEDY.to_owned(),
                self.remedy.as_str().to_owned(),
            ),
            (
                labels::HEAL_AT.to_owned(),
                self.at.unix_timestamp().to_string(),
            ),
        ]
    }

    /// `labels` with this attempt written over any earlier one.
    pub fn stamp(&self, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut stamped = labels.clone();
        stamped.extend(self.labels());
        stamped
    }

    /// The attempt `server`'s labels record, if they record a whole one.
    pub fn read(server: &Server) -> Option<Journal> {
        let get = |key: &str| server.labels.get(key).map(String::as_str);
        Some(Journal {
            attempt: get(labels::HEAL_ATTEMPT)?.parse().ok()?,
            remedy: Remedy::parse(get(labels::HEAL_REMEDY)?)?,
            at: OffsetDateTime::from_unix_timestamp(get(labels::HEAL_AT)?.parse().ok()?).ok()?,
        })
    }

    /// Whether the attempt is still the agent's current episode: no device of the agent is
    /// online or was seen after the attempt started. A device seen since means the remedy
    /// worked (or the problem went away), and a later problem starts counting from zero.
    /// The label keeps whole seconds, so "after" means a second or more after.
    pub fn open(&self, devices: &[&Device]) -> bool {
        let after = self.at + time::Duration::SECOND;
        !devices.iter().any(|d| {
            d.online
                || d.last_seen
                    .as_deref()
                    .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                    .is_some_and(|seen| seen >= after)
        })
    }

    /// `record` with this attempt counted, when it is further along than the record: the
    /// status commit of the pass that made it may never have been written.
    pub fn merge_into(&self, mut record: Record) -> Record {
        if self.attempt > record.attempts {
            record.attempts = self.attempt;
            record.observations = 0;
            record.last_attempt = self.at.format(&Rfc3339).ok();
            record.last_remedy = Some(self.remedy);
        }
        record
    }
}

/// The furthest open attempt recorded on `servers` (an agent's current and retired servers).
pub fn newest<'a>(
    servers: impl IntoIterator<Item = &'a Server>,
    devices: &[&Device],
) -> Option<Journal> {
    servers
        .into_iter()
        .filter_map(Journal::read)
        .filter(|j| j.open(devices))
        .max_by_key(|j| (j.attempt, j.at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::{ServerId, ServerStatus};
    use crate::tailnet::DeviceId;

    fn server(labels: &[(&str, &str)]) -> Server {
        Server {
            id: ServerId(7),
            name: "a".into(),
            status: ServerStatus::Running,
            server_type: "cpx21".into(),
            location: "fsn1".into(),
            image: Some("ubuntu-24.04".into()),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            created: "2026-11-29T10:00:00Z".into(),
            ipv4: None,
            ipv6: None,
            delete_protected: false,
            rebuild_protected: false,
            disk_gb: Some(80),
            project: None,
        }
    }

    fn device(online: bool, last_seen: &str) -> Device {
        Device {
            id: DeviceId("n1".into()),
            legacy_id: String::new(),
            name: "a.tail".into(),
            hostname: "a".into(),
            addresses: Vec::new(),
            user: String::new(),
            tags: Vec::new(),
            authorized: true,
            online,
            last_seen: Some(last_seen.into()),
            created: "2026-11-29T10:01:00Z".into(),
            expires: None,
            ephemeral: false,
            external: false,
            os: "linux".into(),
            client_version: "1.80.3".into(),
            enabled_routes: None,
        }
    }

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).expect("time")
    }

    #[test]
    fn an_attempt_written_on_the_server_reads_back_whole() {
        let written = Journal {
            attempt: 2,
            remedy: Remedy::Replace,
            at: at("2026-11-29T11:00:00Z"),
        };
        let labels = written.stamp(&BTreeMap::new());
        let pairs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(Journal::read(&server(&pairs)), Some(written));
        assert_eq!(
            Journal::read(&server(&[(labels::HEAL_ATTEMPT, "2")])),
            None,
            "half a journal is none"
        );
    }

    #[test]
    fn an_attempt_the_status_branch_never_saw_is_counted() {
        let journal = Journal {
            attempt: 3,
            remedy: Remedy::Rekey,
            at: at("2026-11-29T11:00:00Z"),
        };
        let recorded = Record {
            observations: 2,
            attempts: 2,
            last_attempt: Some("2026-11-29T10:30:00Z".into()),
            last_remedy: Some(Remedy::Rekey),
            failed: None,
        };
        let merged = journal.merge_into(recorded.clone());
        assert_eq!(merged.attempts, 3);
        assert_eq!(merged.observations, 0);
        assert_eq!(merged.last_attempt.as_deref(), Some("2026-11-29T11:00:00Z"));
        let ahead = Record {
            attempts: 4,
            ..recorded
        };
        assert_eq!(
            journal.merge_into(ahead.clone()),
            ahead,
            "the record is ahead"
        );
    }

    #[test]
    fn a_device_seen_after_the_attempt_closes_it() {
        let journal = Journal {
            attempt: 1,
            remedy: Remedy::PowerCycle,
            at: at("2026-11-29T11:00:00Z"),
        };
        let before = device(false, "2026-11-29T10:50:00Z");
        let after = device(false, "2026-11-29T11:05:00Z");
        let online = device(true, "2026-11-29T10:50:00Z");
        assert!(journal.open(&[&before]));
        assert!(journal.open(&[]));
        assert!(!journal.open(&[&after]));
        assert!(!journal.open(&[&online]));
    }

    #[test]
    fn the_furthest_open_attempt_of_an_agents_servers_wins() {
        let retired = server(&[
            (labels::HEAL_ATTEMPT, "1"),
            (labels::HEAL_REMEDY, "replace"),
            (labels::HEAL_AT, "1764410400"),
        ]);
        let current = server(&[
            (labels::HEAL_ATTEMPT, "2"),
            (labels::HEAL_REMEDY, "replace"),
            (labels::HEAL_AT, "1764414000"),
        ]);
        let newest = newest([&retired, &current], &[]).expect("a journal");
        assert_eq!(newest.attempt, 2);
        assert_eq!(newest.remedy, Remedy::Replace);
    }
}
