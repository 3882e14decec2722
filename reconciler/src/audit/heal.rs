//! Self-healing on the status branch: each unhealthy agent's [`Record`] (`heal:` in
//! `status/<agent>.yaml`), read back before planning ([`records`]) and advanced after the pass
//! ([`next`]): the plan's observation, plus one attempt per remedy carried out (or tried and
//! failed); cleared once the agent is `Ready`. An agent whose attempts are used up is `Failed`
//! with the reason.

use super::status::{AgentStatus, Inputs, Phase, Verdict};
use crate::apply::{Kind, Outcome};
use crate::plan::Action;
use crate::plan::heal::{Record, Remedy};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use yaml_rust2::{Yaml, YamlLoader};

/// Every agent's record, from the `heal:` key of the `status/<agent>.yaml` files. A record
/// that does not parse reads as none.
pub fn records(files: &BTreeMap<String, String>) -> BTreeMap<String, Record> {
    files
        .iter()
        .filter(|(name, _)| {
            ![
                super::ledger::FLEET_FILE,
                super::ledger::DEVICES_FILE,
                super::ledger::DELETIONS_FILE,
            ]
            .contains(&name.as_str())
        })
        // A document without the word has no record: skip parsing it.
        .filter(|(_, text)| text.contains("heal"))
        .filter_map(|(_, text)| {
            let doc = YamlLoader::load_from_str(text).ok()?.into_iter().next()?;
            let agent = doc["agent"].as_str()?.to_owned();
            let record = record(&doc["heal"])?;
            (!record.is_clear()).then_some((agent, record))
        })
        .collect()
}

fn record(y: &Yaml) -> Option<Record> {
    y.as_hash()?;
    let count = |key: &str| u32::try_from(y[key].as_i64().unwrap_or(0)).unwrap_or(0);
    Some(Record {
        observations: count("observations"),
        attempts: count("attempts"),
        last_attempt: y["lastAttempt"].as_str().map(str::to_owned),
        last_remedy: y["lastRemedy"].as_str().and_then(Remedy::parse),
        failed: y["failed"].as_str().map(str::to_owned),
    })
}

/// The records after this pass, and `agents` updated: an agent whose record says it failed is
/// [`Phase::Failed`] with the reason as its last error. A refused or suspended pass keeps the
/// ledger's records.
pub fn next(input: &Inputs<'_>, agents: &mut [AgentStatus]) -> BTreeMap<String, Record> {
    let mut records = match input.verdict {
        Verdict::Applied(plan) => plan.heal.clone(),
        Verdict::Refused(_) | Verdict::Suspended(_) => input.ledger.heal.clone(),
    };
    if let Verdict::Applied(plan) = input.verdict {
        let mut remedies: BTreeMap<&str, Remedy> = BTreeMap::new();
        for a in &plan.actions {
            if let Action::Heal { agent, remedy, .. } = a {
                remedies.entry(agent.as_str()).or_insert(*remedy);
            }
        }
        for done in input.report.actions.iter().filter(|a| a.kind == "heal") {
            if matches!(done.outcome, Outcome::Skipped { .. }) {
                continue;
            }
            let remedy = remedies.get(done.agent.as_str()).copied();
            let record = records.entry(done.agent.clone()).or_default();
            record.attempts += 1;
            record.observations = 0;
            record.last_attempt = Some(input.now.to_owned());
            record.last_remedy = remedy;
        }
    }
    for status in agents.iter_mut() {
        if status.phase == Phase::Ready {
            records.remove(&status.agent);
        } else if let Some(reason) = records.get(&status.agent).and_then(|r| r.failed.clone()) {
            status.phase = Phase::Failed;
            status.last_error = Some(reason);
            status.last_error_kind = Some(Kind::Terminal);
        }
    }
    let listed: BTreeSet<&str> = agents.iter().map(|s| s.agent.as_str()).collect();
    records.retain(|agent, _| listed.contains(agent.as_str()));
    records
}

/// `status/<agent>.yaml`: the agent's status with its record, when it has one.
pub fn to_yaml(status: &AgentStatus, record: Option<&Record>) -> String {
    #[derive(Serialize)]
    struct WithHeal<'a> {
        #[serde(flatten)]
        status: &'a AgentStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        heal: Option<&'a Record>,
    }
    super::status::to_yaml(&WithHeal {
        status,
        heal: record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_back_from_the_agent_documents() {
        let files: BTreeMap<String, String> = [
            (
                "a.yaml".to_owned(),
                "agent: a\nphase: Degraded\nheal:\n  observations: 2\n  attempts: 1\n  lastAttempt: \"2026-11-29T10:00:00Z\"\n  lastRemedy: rekey\n".to_owned(),
            ),
            ("b.yaml".to_owned(), "agent: b\nphase: Ready\n".to_owned()),
            ("fleet.yaml".to_owned(), "agents: 2\n".to_owned()),
        ]
        .into();
        let read = records(&files);
        assert_eq!(read.len(), 1);
        assert_eq!(
            read["a"],
            Record {
                observations: 2,
                attempts: 1,
                last_attempt: Some("2026-11-29T10:00:00Z".into()),
                last_remedy: Some(Remedy::Rekey),
                failed: None,
            }
        );
    }
}
