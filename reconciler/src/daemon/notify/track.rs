//! The open conditions and what a pass changes about them: [`Tracker::observe`] takes what one
//! pass saw ([`Observation`]) and returns the announcements and recoveries due, so that each
//! distinct condition is announced once and recovered once however many passes it lasts.
//! [`Tracker::seeded`] starts from what the status branch records, so a restart does not
//! announce again what the last daemon announced. Pure: the time is passed in.

use super::event::{Change, Condition, Key};
use crate::audit::ledger::FLEET_FILE;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};
use yaml_rust2::YamlLoader;

/// What one pass saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// The conditions this pass could judge: an open condition of one of these kinds that is
    /// not in `holding` has recovered. A pass that failed early judges none of the agents.
    pub judged: BTreeSet<Condition>,
    /// The conditions that hold, each with its reason.
    pub holding: BTreeMap<Key, String>,
}

/// A change due: announce `key` or its recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Began or ended.
    pub change: Change,
    /// The condition.
    pub key: Key,
    /// Why it holds or held (the reason first seen).
    pub reason: String,
    /// When it was first seen.
    pub since: SystemTime,
}

#[derive(Debug, Clone)]
struct Open {
    since: SystemTime,
    reason: String,
    announced: bool,
}

/// The open conditions, in memory.
#[derive(Debug, Clone)]
pub struct Tracker {
    open: BTreeMap<Key, Open>,
    unhealthy_after: Duration,
}

impl Tracker {
    /// No open condition; an agent is announced unhealthy once it has been for `unhealthy_after`.
    pub fn new(unhealthy_after: Duration) -> Tracker {
        Tracker {
            open: BTreeMap::new(),
            unhealthy_after,
        }
    }

    /// The conditions the status branch's documents (`status/` file name → text) record as
    /// holding, taken as already announced at `now`: the last pass's `lastError` in
    /// `fleet.yaml` (a refusal, or a failed pass) and every agent in phase `Failed`. An
    /// unhealthy agent is not seeded: its clock starts again at the first pass.
    pub fn seeded(
        unhealthy_after: Duration,
        files: &BTreeMap<String, String>,
        now: SystemTime,
    ) -> Tracker {
        let mut tracker = Tracker::new(unhealthy_after);
        let mut seed = |key: Key, reason: String| {
            tracker.open.insert(
                key,
                Open {
                    since: now,
                    reason,
                    announced: true,
                },
            );
        };
        for (name, text) in files {
            let Some(doc) = YamlLoader::load_from_str(text)
                .ok()
                .and_then(|docs| docs.into_iter().next())
            else {
                continue;
            };
            let last_error = doc["lastError"].as_str().map(str::to_owned);
            if name == FLEET_FILE {
                match last_error {
                    Some(e) if e.contains(" refused, nothing changed") => {
                        seed(Key::fleet(Condition::Refused), e);
                    }
                    Some(e) if !e.contains(" action(s) failed: ") => {
                        seed(Key::fleet(Condition::Failed), e);
                    }
                    _ => {}
                }
            } else if doc["phase"].as_str() == Some("Failed")
                && let Some(agent) = doc["agent"].as_str()
            {
                let reason = last_error.unwrap_or_else(|| "the last action failed".to_owned());
                seed(Key::agent(Condition::Failed, agent), reason);
            }
        }
        tracker
    }

    /// Folds one pass's observation in at `now` and returns what is due, in key order.
    ///
    /// # Guarantees
    /// - A condition is announced at most once while it stays open, whatever its reason
    ///   becomes; its recovery is sent only if it was announced.
    /// - An agent unhealthy for less than the threshold is never announced, and its recovery
    ///   is not sent either: flapping inside the threshold is silent.
    pub fn observe(&mut self, seen: Observation, now: SystemTime) -> Vec<Due> {
        let mut due = Vec::new();
        let ended: Vec<Key> = self
            .open
            .keys()
            .filter(|k| seen.judged.contains(&k.condition) && !seen.holding.contains_key(k))
            .cloned()
            .collect();
        for key in ended {
            if let Some(open) = self.open.remove(&key)
                && open.announced
            {
                due.push(Due {
                    change: Change::Recovered,
                    key,
                    reason: open.reason,
                    since: open.since,
                });
            }
        }
        for (key, reason) in seen.holding {
            self.open.entry(key).or_insert(Open {
                since: now,
                reason,
                announced: false,
            });
        }
        for (key, open) in &mut self.open {
            let threshold = match key.condition {
                Condition::Unhealthy => self.unhealthy_after,
                Condition::Failed | Condition::Refused | Condition::Invariant => Duration::ZERO,
            };
            let held = now.duration_since(open.since).unwrap_or(Duration::ZERO);
            if !open.announced && held >= threshold {
                open.announced = true;
                due.push(Due {
                    change: Change::Opened,
                    key: key.clone(),
                    reason: open.reason.clone(),
                    since: open.since,
                });
            }
        }
        due.sort_by(|a, b| a.key.cmp(&b.key));
        due
    }

    /// The open conditions, announced or not yet.
    pub fn open(&self) -> impl Iterator<Item = &Key> {
        self.open.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn at(minutes: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + MINUTE * minutes as u32
    }

    fn all_judged() -> BTreeSet<Condition> {
        [Condition::Failed, Condition::Refused, Condition::Unhealthy]
            .into_iter()
            .collect()
    }

    fn clean() -> Observation {
        Observation {
            judged: all_judged(),
            holding: BTreeMap::new(),
        }
    }

    fn refused(reason: &str) -> Observation {
        Observation {
            judged: [Condition::Refused].into_iter().collect(),
            holding: [(Key::fleet(Condition::Refused), reason.to_owned())]
                .into_iter()
                .collect(),
        }
    }

    fn unhealthy(agent: &str) -> Observation {
        Observation {
            judged: all_judged(),
            holding: [(Key::agent(Condition::Unhealthy, agent), "no device".into())]
                .into_iter()
                .collect(),
        }
    }

    fn changes(due: &[Due]) -> Vec<(Change, Key)> {
        due.iter().map(|d| (d.change, d.key.clone())).collect()
    }

    #[test]
    fn the_same_refusal_over_three_passes_is_announced_once_and_its_recovery_once() {
        let mut t = Tracker::new(10 * MINUTE);
        let mut sent = Vec::new();
        for minute in 0..3 {
            sent.extend(t.observe(refused("shrank from 6 agents to none"), at(minute)));
        }
        assert_eq!(
            changes(&sent),
            [(Change::Opened, Key::fleet(Condition::Refused))]
        );
        let recovered = t.observe(clean(), at(3));
        assert_eq!(
            changes(&recovered),
            [(Change::Recovered, Key::fleet(Condition::Refused))]
        );
        assert_eq!(recovered[0].reason, "shrank from 6 agents to none");
        assert_eq!(recovered[0].since, at(0));
        assert!(t.observe(clean(), at(4)).is_empty(), "nothing more to say");
    }

    #[test]
    fn a_refusal_whose_reason_changes_stays_one_condition() {
        let mut t = Tracker::new(10 * MINUTE);
        assert_eq!(t.observe(refused("first"), at(0)).len(), 1);
        assert!(t.observe(refused("second"), at(1)).is_empty());
    }

    #[test]
    fn an_agent_flapping_within_the_threshold_is_never_announced_nor_recovered() {
        let mut t = Tracker::new(10 * MINUTE);
        for minute in [0, 5, 9] {
            assert!(t.observe(unhealthy("acme-prod"), at(minute)).is_empty());
            assert!(t.observe(clean(), at(minute + 1)).is_empty());
        }
    }

    #[test]
    fn an_agent_unhealthy_past_the_threshold_is_announced_once_then_recovered_once() {
        let mut t = Tracker::new(10 * MINUTE);
        assert!(t.observe(unhealthy("acme-prod"), at(0)).is_empty());
        assert!(t.observe(unhealthy("acme-prod"), at(9)).is_empty());
        let key = Key::agent(Condition::Unhealthy, "acme-prod");
        assert_eq!(
            changes(&t.observe(unhealthy("acme-prod"), at(10))),
            [(Change::Opened, key.clone())]
        );
        assert!(t.observe(unhealthy("acme-prod"), at(11)).is_empty());
        assert_eq!(
            changes(&t.observe(clean(), at(12))),
            [(Change::Recovered, key)]
        );
    }

    #[test]
    fn a_pass_that_failed_early_judges_no_agent_and_recovers_nothing() {
        let mut t = Tracker::new(MINUTE);
        t.observe(unhealthy("acme-prod"), at(0));
        assert_eq!(t.observe(unhealthy("acme-prod"), at(1)).len(), 1);
        let failed = Observation {
            judged: BTreeSet::new(),
            holding: [(Key::fleet(Condition::Failed), "cannot parse".into())]
                .into_iter()
                .collect(),
        };
        assert_eq!(
            changes(&t.observe(failed.clone(), at(2))),
            [(Change::Opened, Key::fleet(Condition::Failed))]
        );
        assert!(t.observe(failed, at(3)).is_empty());
        assert_eq!(
            changes(&t.observe(clean(), at(4))),
            [
                (Change::Recovered, Key::fleet(Condition::Failed)),
                (
                    Change::Recovered,
                    Key::agent(Condition::Unhealthy, "acme-prod")
                )
            ]
        );
    }

    #[test]
    fn a_restart_does_not_announce_again_what_the_status_branch_records() {
        let files: BTreeMap<String, String> = [
            (
                "fleet.yaml".to_owned(),
                "fleet: aura-prod\nlastError: \"plan 1234567 of revision abcdef0 refused, nothing changed: shrank\"\n".to_owned(),
            ),
            (
                "acme-prod.yaml".to_owned(),
                "agent: acme-prod\nphase: Failed\nlastError: create failed\n".to_owned(),
            ),
            (
                "acme-research.yaml".to_owned(),
                "agent: acme-research\nphase: Ready\n".to_owned(),
            ),
        ]
        .into_iter()
        .collect();
        let mut t = Tracker::seeded(10 * MINUTE, &files, at(0));
        assert_eq!(
            t.open().cloned().collect::<Vec<_>>(),
            [
                Key::agent(Condition::Failed, "acme-prod"),
                Key::fleet(Condition::Refused),
            ]
        );
        assert!(t.observe(refused("shrank"), at(1)).is_empty(), "not again");
        assert_eq!(
            changes(&t.observe(clean(), at(2))),
            [
                (
                    Change::Recovered,
                    Key::agent(Condition::Failed, "acme-prod")
                ),
                (Change::Recovered, Key::fleet(Condition::Refused)),
            ]
        );
    }
}
