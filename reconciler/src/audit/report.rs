//! `tether audit report`: a period's activity for a compliance review, one [`Row`] per action
//! line of the status commits in the period (creations, deletions, quarantines, restores,
//! resizes, runtime rollouts, power and label changes) and one per refused plan, each with the
//! actor behind it (the author of the agent's last spec change, its reviewer and billing event
//! from that commit's trailers), the spec commit, the plan hash, the provider ids and the time.
//! Rendered as CSV ([`csv`]) or JSON.

use super::log::{self, AgentHistory, LogError};
use super::verify::{action_ids, trailers};
use super::{TRAILER_PLAN, TRAILER_REQUESTED_BY, TRAILER_RUN, TRAILER_SOURCE};
use git2::{Oid, Repository};
use serde::Serialize;
use std::path::Path;

/// The billing trailer naming the event that caused a spec change.
const TRAILER_BILLING_EVENT: &str = "Tether-Idempotency-Key";
/// The trailer naming who reviewed a spec change.
const TRAILER_REVIEWER: &str = "Reviewed-by";

/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// When the status commit recording it was made, RFC 3339.
    pub time: String,
    /// `create`, `delete`, `quarantine`, `restore`, `resize`, `rollout`, `power-on`, …, or
    /// `refusal` for a refused plan.
    pub kind: String,
    /// The agent (`-` for a refusal).
    pub agent: String,
    /// `done`, `failed`, `skipped`, `refused`, or `requested` (a purge).
    pub outcome: String,
    /// Who asked for it: the author of the agent's last spec change at or before the spec
    /// commit (`Name <email>`); for a refusal, the spec commit's author; for a purge, who
    /// requested it.
    pub actor: String,
    /// The spec change's `Reviewed-by` trailers.
    pub reviewer: Option<String>,
    /// The billing event (the spec change's idempotency key), when billing made it.
    pub billing_event: Option<String>,
    /// The agent's spec change the actor made.
    pub spec_change: Option<String>,
    /// The fleet commit applied.
    pub spec_commit: String,
    /// The plan applied (or refused).
    pub plan_hash: Option<String>,
    /// The run.
    pub run: String,
    /// The status commit recording it.
    pub status_commit: String,
    /// The Hetzner server id.
    pub server: Option<u64>,
    /// The Hetzner action ids.
    pub actions: Vec<u64>,
    /// The Tailscale device ids.
    pub devices: Vec<String>,
}

/// The rows of the status commits reachable from `status_ref` made in `[since, until)` (Unix
/// seconds), oldest first; actors come from `fleet_branch`'s history.
///
/// # Errors
/// The repository, the fleet branch or the status ref cannot be read.
pub fn rows(
    repo_path: &Path,
    fleet_branch: &str,
    status_ref: &str,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Vec<Row>, LogError> {
    let err = |e: git2::Error| LogError {
        repo: repo_path.display().to_string(),
        message: e.message().to_owned(),
    };
    let history = log::history(repo_path, fleet_branch, &[], None, None)?;
    let repo = Repository::open(repo_path).map_err(err)?;
    let tip = repo
        .revparse_single(status_ref)
        .and_then(|o| o.peel_to_commit())
        .map_err(err)?;
    let mut walk = repo.revwalk().map_err(err)?;
    walk.push(tip.id()).map_err(err)?;
    walk.simplify_first_parent().map_err(err)?;
    let mut out = Vec::new();
    for oid in walk {
        let commit = repo.find_commit(oid.map_err(err)?).map_err(err)?;
        let time = commit.committer().when().seconds();
        if since.is_some_and(|s| time < s) {
            break;
        }
        if until.is_some_and(|u| time >= u) {
            continue;
        }
        let mut rows = commit_rows(&repo, &commit, &history).map_err(err)?;
        rows.reverse();
        out.extend(rows);
    }
    out.reverse();
    Ok(out)
}

/// The rows one status commit records.
fn commit_rows(
    repo: &Repository,
    commit: &git2::Commit<'_>,
    history: &[AgentHistory],
) -> Result<Vec<Row>, git2::Error> {
    let message = commit.message().unwrap_or("");
    let trailers = trailers(message);
    let first = |key: &str| trailers.get(key).and_then(|v| v.first()).cloned();
    let spec_commit = first(TRAILER_SOURCE).unwrap_or_else(|| "none".to_owned());
    let base = Row {
        time: rfc3339(commit.committer().when().seconds()),
        kind: String::new(),
        agent: String::new(),
        outcome: String::new(),
        actor: String::new(),
        reviewer: None,
        billing_event: None,
        spec_change: None,
        plan_hash: first(TRAILER_PLAN),
        run: first(TRAILER_RUN).unwrap_or_default(),
        spec_commit: spec_commit.clone(),
        status_commit: commit.id().to_string(),
        server: None,
        actions: Vec::new(),
        devices: Vec::new(),
    };
    if commit
        .summary()
        .is_some_and(|s| s.ends_with("refused, nothing changed"))
    {
        let actor = Oid::from_str(&spec_commit)
            .ok()
            .and_then(|id| repo.find_commit(id).ok())
            .map(|c| author(&c))
            .unwrap_or_default();
        return Ok(vec![Row {
            kind: "refusal".to_owned(),
            agent: "-".to_owned(),
            outcome: "refused".to_owned(),
            actor,
            ..base
        }]);
    }
    let requested_by = first(TRAILER_REQUESTED_BY);
    let mut rows = Vec::new();
    for line in message.lines().skip(2) {
        let Some(mut row) = action_row(line, &base) else {
            continue;
        };
        if let Some(who) = &requested_by {
            row.actor.clone_from(who);
        } else if let Some(change) = spec_change(repo, history, &row.agent, &spec_commit)? {
            let trailers = trailers_of(repo, change)?;
            row.actor = change.author.clone();
            row.reviewer = trailers.get(TRAILER_REVIEWER).map(|v| v.join(", "));
            row.billing_event = trailers
                .get(TRAILER_BILLING_EVENT)
                .and_then(|v| v.first().cloned());
            row.spec_change = Some(change.commit.clone());
        }
        rows.push(row);
    }
    Ok(rows)
}

/// A status body line `kind agent outcome [server 1, actions 2,3, devices d]` as a row.
fn action_row(line: &str, base: &Row) -> Option<Row> {
    let mut words = line.split_whitespace();
    let (kind, agent, outcome) = (words.next()?, words.next()?, words.next()?);
    let outcome = match outcome {
        "done" => "done",
        "FAILED" => "failed",
        "skipped:" => "skipped",
        "requested" => "requested",
        _ => return None,
    };
    let ids = line.rsplit_once(" [").map_or("", |(_, ids)| ids);
    let server = ids
        .trim_end_matches(']')
        .split(", ")
        .find_map(|p| p.strip_prefix("server "))
        .and_then(|s| s.parse().ok());
    let devices = ids
        .trim_end_matches(']')
        .split(", ")
        .find_map(|p| p.strip_prefix("devices "))
        .map(|d| d.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    Some(Row {
        kind: kind.to_owned(),
        agent: agent.to_owned(),
        outcome: outcome.to_owned(),
        server,
        actions: action_ids(line),
        devices,
        ..base.clone()
    })
}

/// The agent's last spec change at or before `spec_commit`.
fn spec_change<'h>(
    repo: &Repository,
    history: &'h [AgentHistory],
    agent: &str,
    spec_commit: &str,
) -> Result<Option<&'h log::SpecChange>, git2::Error> {
    let Ok(spec) = Oid::from_str(spec_commit) else {
        return Ok(None);
    };
    let Some(agent) = history.iter().find(|h| h.agent == agent) else {
        return Ok(None);
    };
    let mut found = None;
    for change in &agent.changes {
        let id = Oid::from_str(&change.commit)?;
        if id == spec || repo.graph_descendant_of(spec, id)? {
            found = Some(change);
        }
    }
    Ok(found)
}

fn trailers_of(
    repo: &Repository,
    change: &log::SpecChange,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, git2::Error> {
    let commit = repo.find_commit(Oid::from_str(&change.commit)?)?;
    Ok(trailers(commit.message().unwrap_or("")))
}

fn author(commit: &git2::Commit<'_>) -> String {
    format!(
        "{} <{}>",
        commit.author().name().unwrap_or("?"),
        commit.author().email().unwrap_or("?")
    )
}

fn rfc3339(time: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(time)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The rows as CSV (RFC 4180), a header first. Fields a spreadsheet would read as a formula
/// (`=`, `+`, `-`, `@` first) get a leading `'`; author names are anyone's to choose.
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "time,kind,agent,outcome,actor,reviewer,billing_event,spec_change,spec_commit,plan_hash,run,status_commit,server,actions,devices\n",
    );
    for r in rows {
        let ids = |v: &[u64]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let fields = [
            r.time.clone(),
            r.kind.clone(),
            r.agent.clone(),
            r.outcome.clone(),
            r.actor.clone(),
            r.reviewer.clone().unwrap_or_default(),
            r.billing_event.clone().unwrap_or_default(),
            r.spec_change.clone().unwrap_or_default(),
            r.spec_commit.clone(),
            r.plan_hash.clone().unwrap_or_default(),
            r.run.clone(),
            r.status_commit.clone(),
            r.server.map(|s| s.to_string()).unwrap_or_default(),
            ids(&r.actions),
            r.devices.join(" "),
        ];
        let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) && text != "-" {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Row {
        Row {
            time: "2026-12-07T10:00:00Z".into(),
            kind: String::new(),
            agent: String::new(),
            outcome: String::new(),
            actor: String::new(),
            reviewer: None,
            billing_event: None,
            spec_change: None,
            spec_commit: "abc".into(),
            plan_hash: Some("h".into()),
            run: "r".into(),
            status_commit: "s".into(),
            server: None,
            actions: Vec::new(),
            devices: Vec::new(),
        }
    }

    #[test]
    fn an_action_line_becomes_a_row_with_its_provider_ids() {
        let row = action_row(
            "create         acme-prod                done [server 7, actions 11,12, devices d1]",
            &base(),
        )
        .expect("a row");
        assert_eq!(
            (row.kind.as_str(), row.agent.as_str(), row.outcome.as_str()),
            ("create", "acme-prod", "done")
        );
        assert_eq!(
            (row.server, row.actions, row.devices),
            (Some(7), vec![11, 12], vec!["d1".to_owned()])
        );
        assert_eq!(
            action_row("Apply: 1 done, 0 failed, 0 skipped.", &base()),
            None
        );
    }

    #[test]
    fn csv_quotes_separators_and_defuses_formulas() {
        let row = Row {
            actor: "=HYPERLINK(\"x\"), Eve <e@x>".into(),
            ..base()
        };
        let text = csv(&[row]);
        assert!(
            text.lines()
                .nth(1)
                .is_some_and(|l| l.contains(",\"'=HYPERLINK(\"\"x\"\"), Eve <e@x>\",")),
            "{text}"
        );
    }
}
