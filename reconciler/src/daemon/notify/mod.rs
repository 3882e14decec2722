//! Notifications from `tether run`: a failed pass or failed actions, a refused plan, an agent
//! unhealthy for longer than `notify.unhealthyAfter`, an invariant broken at the end of a pass,
//! and the recovery of each, sent to a
//! generic JSON webhook and/or a Slack-compatible webhook (`notify` in the daemon
//! configuration). Start at [`Notifier::observe`], called once after every pass.
//!
//! - [`event`]: the conditions, one notification and its JSON and Slack renderings;
//! - [`track`]: the open conditions, so that each is announced once and recovered once;
//! - [`sink`]: one delivery with timeout and retries.
//!
//! # Guarantees
//! - One message per distinct condition (kind and agent), not per pass; see
//!   `docs/decisions/019-notifications.md`.
//! - Delivery never delays or fails a pass: messages go through a queue to a background task,
//!   and a failed delivery is logged, never raised.
//! - No message carries a token, an auth key or a sink's URL; a reason that looks like a secret
//!   is withheld ([`event::scrubbed`]).

pub mod event;
pub mod sink;
pub mod track;

use super::config::{DaemonConfig, NotifyConfig};
use super::pass::Source;
use crate::apply::{ApplyError, Outcome};
use crate::audit::STATUS_BRANCH;
use crate::audit::ledger::Ledger;
use crate::plan::Note;
use crate::reconcile::{PassError, PassOutcome};
use event::{Condition, Event, Key};
use sink::Sink;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;
use tokio::sync::mpsc;
use track::{Due, Observation, Tracker};

/// The daemon's notifier: the open conditions and the queue to the sinks.
#[derive(Debug)]
pub struct Notifier {
    fleet: String,
    tracker: Mutex<Tracker>,
    queue: Option<mpsc::UnboundedSender<Event>>,
}

impl Notifier {
    /// A notifier for `config` that starts from the conditions recorded in `status_files`
    /// (the status branch's `status/` documents) and delivers from a background task. Without
    /// a sink it only keeps count.
    pub fn start(config: &DaemonConfig, status_files: &BTreeMap<String, String>) -> Notifier {
        let NotifyConfig {
            unhealthy_after,
            timeout,
            retries,
            sinks,
        } = &config.notify;
        let tracker = Tracker::seeded(*unhealthy_after, status_files, SystemTime::now());
        let mut ready = Vec::new();
        for s in sinks {
            match Sink::new(s, *timeout, *retries) {
                Ok(sink) => ready.push(sink),
                Err(e) => {
                    tracing::error!(error = %e.without_url(), "cannot build a notification sink's HTTP client; it is left out")
                }
            }
        }
        let queue = (!ready.is_empty()).then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(deliver_all(ready, rx));
            tx
        });
        let open = tracker.open().count();
        if queue.is_some() {
            tracing::info!(
                sinks = sinks.len(),
                open,
                "notifications on; {open} condition(s) already recorded on the status branch"
            );
        }
        Notifier {
            fleet: config.fleet.clone(),
            tracker: Mutex::new(tracker),
            queue,
        }
    }

    /// Folds one pass's outcome in and queues the notifications it makes due.
    pub fn observe(&self, commit: Option<&str>, outcome: &Result<PassOutcome, PassError>) {
        let now = SystemTime::now();
        let due = match self.tracker.lock() {
            Ok(mut tracker) => tracker.observe(observation(outcome), now),
            Err(poisoned) => poisoned.into_inner().observe(observation(outcome), now),
        };
        for d in due {
            let event = self.event(d, commit, now);
            tracing::info!(
                event = event.name(),
                agent = event.key.agent.as_deref().unwrap_or("-"),
                "notify: {}",
                event.summary()
            );
            if let Some(queue) = &self.queue
                && queue.send(event).is_err()
            {
                tracing::error!("the notification task has stopped; notification dropped");
            }
        }
    }

    fn event(&self, due: Due, commit: Option<&str>, now: SystemTime) -> Event {
        Event {
            change: due.change,
            key: due.key,
            reason: event::scrubbed(&due.reason),
            since: rfc3339(due.since),
            fleet: self.fleet.clone(),
            revision: commit.map(str::to_owned),
            time: rfc3339(now),
        }
    }
}

/// The `status/` documents at the tip of the status branch (fetched first from a remote), for
/// [`Notifier::start`]; none when the branch cannot be read yet (logged).
pub(super) async fn status_files(source: &Source) -> BTreeMap<String, String> {
    let (repo, remote) = match source {
        Source::Remote { cache, url, .. } => (cache.path().to_owned(), Some(url.clone())),
        Source::Directory { path, .. } => (path.clone(), None),
    };
    let read = tokio::task::spawn_blocking(move || {
        if let Some(remote) = remote {
            let fetched = git2::Repository::open(&repo).and_then(|r| {
                crate::source::publish::fetch_branch(&r, &remote, STATUS_BRANCH)
            });
            if let Err(e) = fetched {
                tracing::warn!(error = %e.message(), "cannot fetch the status branch; notifications start with no open condition");
            }
        }
        Ledger::read(&repo, STATUS_BRANCH)
    })
    .await;
    match read {
        Ok(Ok(ledger)) => ledger.files,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the status branch; notifications start with no open condition");
            BTreeMap::new()
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the status branch failed; notifications start with no open condition");
            BTreeMap::new()
        }
    }
}

/// What one pass says about the conditions: a pass that ran judges all of them; a refused one
/// only the refusal; one that failed before it could plan judges none (it holds a failure).
fn observation(outcome: &Result<PassOutcome, PassError>) -> Observation {
    let mut holding = BTreeMap::new();
    let judged = match outcome {
        Ok(o) => {
            for a in &o.report.actions {
                if let Outcome::Failed { reason, kind } = &a.outcome {
                    holding
                        .entry(Key::agent(Condition::Failed, &a.agent))
                        .or_insert_with(|| format!("{} {} ({kind}): {reason}", a.kind, a.agent));
                }
            }
            for note in &o.plan.notes {
                if let Note::Unhealthy { agent, server_id } = note {
                    holding.insert(
                        Key::agent(Condition::Unhealthy, agent),
                        format!("server {server_id} runs but no Tailscale device of it is online"),
                    );
                }
            }
            for breach in &o.breaches {
                let key = match breach.agent() {
                    Some(agent) => Key::agent(Condition::Invariant, agent),
                    None => Key::fleet(Condition::Invariant),
                };
                holding
                    .entry(key)
                    .and_modify(|reason: &mut String| {
                        reason.push_str("; ");
                        reason.push_str(&breach.to_string());
                    })
                    .or_insert_with(|| breach.to_string());
            }
            [
                Condition::Failed,
                Condition::Refused,
                Condition::Unhealthy,
                Condition::Invariant,
            ]
            .into()
        }
        Err(PassError::Refused(ApplyError::Refused { reasons })) => {
            holding.insert(Key::fleet(Condition::Refused), reasons.join("; "));
            [Condition::Refused].into()
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or(&text).to_owned();
            holding.insert(Key::fleet(Condition::Failed), first);
            Default::default()
        }
    };
    Observation { judged, holding }
}

async fn deliver_all(sinks: Vec<Sink>, mut queue: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = queue.recv().await {
        let sends = sinks.iter().map(|sink| async {
            match sink.deliver(&event).await {
                Ok(attempts) => tracing::info!(sink = %sink.describe(), event = event.name(), attempts, "notification delivered"),
                Err(e) => tracing::warn!(error = %e, "notification not delivered"),
            }
        });
        futures_util::future::join_all(sends).await;
    }
}

fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_pass_judges_only_the_refusal_and_an_early_failure_judges_nothing() {
        let refused = observation(&Err(PassError::Refused(ApplyError::Refused {
            reasons: vec!["shrank from 6 agents to none".into(), "budget".into()],
        })));
        assert_eq!(refused.judged, [Condition::Refused].into());
        assert_eq!(
            refused.holding,
            [(
                Key::fleet(Condition::Refused),
                "shrank from 6 agents to none; budget".to_owned()
            )]
            .into()
        );
        let invalid = observation(&Err(PassError::Load(tether_schema::LoadError {
            diagnostics: vec![tether_schema::Diagnostic::new(
                "fleet.yaml",
                None,
                tether_schema::Code::Unreadable,
                "cannot parse".to_owned(),
            )],
        })));
        assert!(invalid.judged.is_empty());
        let (key, reason) = invalid.holding.iter().next().expect("a failure");
        assert_eq!(key, &Key::fleet(Condition::Failed));
        assert!(reason.contains("cannot parse"), "{reason}");
    }

    #[test]
    fn broken_invariants_hold_one_condition_per_agent_with_every_reason() {
        use crate::audit::invariants::Breach;
        use crate::cloud::ServerId;
        use crate::cloud::tailscale::AuthKeyId;
        let files = [tether_schema::SourceFile {
            path: "fleet.yaml".into(),
            content: tether_schema::Content::Bytes(
                b"apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: n}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  catalog: {serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}\n".to_vec(),
            ),
        }];
        let fleet = tether_schema::load_fleet(&files).expect("fleet");
        let plan = crate::plan::plan(
            &fleet,
            &crate::plan::Observed::default(),
            &crate::plan::Context::default(),
        );
        let outcome = PassOutcome {
            report: crate::apply::ApplyReport {
                plan_hash: plan.plan_hash.clone(),
                revision: None,
                actions: Vec::new(),
            },
            fleet,
            plan,
            status_commit: None,
            breaches: vec![
                Breach::ServerOff {
                    agent: "a".into(),
                    server: ServerId(7),
                },
                Breach::Overdue {
                    agent: "a".into(),
                    operation: "deleting quarantined server 7".into(),
                    deadline: "2026-11-30T18:00:00Z".into(),
                },
                Breach::LiveKey {
                    key: AuthKeyId("k1".into()),
                    agent: None,
                },
            ],
        };
        let seen = observation(&Ok(outcome));
        assert!(seen.judged.contains(&Condition::Invariant));
        let a = &seen.holding[&Key::agent(Condition::Invariant, "a")];
        assert!(
            a.contains("server 7 is off") && a.contains("still pending"),
            "{a}"
        );
        let fleet = &seen.holding[&Key::fleet(Condition::Invariant)];
        assert!(fleet.contains("auth key k1"), "{fleet}");
    }
}
