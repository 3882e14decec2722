//! One daemon pass and its account: read the fleet (fetching a remote first), plan, apply and
//! record ([`pass`]); then metrics, readiness and one info line saying what it did
//! ([`Health::record`]).

use super::config::DaemonConfig;
use super::metrics::{Metrics, ReconcileOutcome};
use super::readiness::Readiness;
use crate::apply::{ApplyReport, Options, Outcome};
use crate::audit::invariants::Invariant;
use crate::audit::ledgers::LedgerCache;
use crate::audit::{STATUS_BRANCH, commit::Identity};
use crate::cloud::Compute;
use crate::cloud::projects::tokens::Registry;
use crate::cloud::retry::{Clock, TokioClock};
use crate::cloud::tailscale::Tailnet;
use crate::plan::Note;
use crate::reconcile::{self, PassError, PassOptions, PassOutcome, StatusTarget};
use crate::source::remote::RepoCache;
use crate::source::{self, fleets::FleetCache, fleets::Loaded};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Where the fleet comes from, resolved.
pub(super) enum Source {
    /// A git remote, mirrored locally.
    Remote {
        cache: RepoCache,
        branch: String,
        url: String,
    },
    /// A git work tree on this machine, watched for edits; status commits go to the
    /// repository's own status branch.
    Directory {
        path: PathBuf,
        /// The checked-out branch, which status never writes.
        branch: String,
        _watcher: super::watch::FleetWatcher,
    },
}

/// What a pass is given besides its clients: the daemon's source, the fleets already loaded
/// from it, the status branch as last read, and the reports of earlier passes whose record could not be written.
#[derive(Clone, Copy)]
pub(super) struct FleetInput<'a> {
    pub(super) source: &'a Source,
    pub(super) fleets: &'a FleetCache,
    pub(super) ledgers: &'a LedgerCache,
    pub(super) unrecorded: &'a [ApplyReport],
}

/// One pass against `compute` and `tailnet` (fenced by the lease); `stop` turns `true` on
/// shutdown or when the lease is lost, and the apply then starts no new action. Fleets loaded
/// from git are kept in `fleets` across passes; a folder's is loaded every pass. The daemon
/// supplies only what differs: where the fleet and status branch are, its projects and agent
/// API; the pass itself is [`reconcile::run`]'s.
pub(super) async fn pass<C: Compute, T: Tailnet>(
    config: &DaemonConfig,
    FleetInput {
        source,
        fleets,
        ledgers,
        unrecorded,
    }: FleetInput<'_>,
    projects: &Registry,
    compute: &C,
    tailnet: &T,
    runtime: Option<&crate::runtime::Service>,
    stop: watch::Receiver<bool>,
) -> (Option<String>, Result<PassOutcome, PassError>) {
    let loaded = read(source, fleets).await.unwrap_or_else(|message| {
        let diagnostic =
            tether_schema::Diagnostic::new("", None, tether_schema::Code::Unreadable, message);
        Loaded {
            commit: None,
            fleet: Err(tether_schema::LoadError {
                diagnostics: vec![diagnostic],
            }),
        }
    });
    let identity = Identity {
        name: "tether".into(),
        email: format!("tether@{}", config.fleet),
        signer: config.signer.clone(),
    };
    let run = format!(
        "{}-{}",
        config.lock_holder,
        time::OffsetDateTime::from(TokioClock.now()).unix_timestamp()
    );
    let status = match source {
        Source::Remote { cache, branch, url } => StatusTarget {
            repo: cache.path(),
            remote: Some(url.as_str()),
            branch: STATUS_BRANCH,
            source_branch: branch,
            identity: &identity,
        },
        Source::Directory { path, branch, .. } => StatusTarget {
            repo: path,
            remote: None,
            branch: STATUS_BRANCH,
            source_branch: branch,
            identity: &identity,
        },
    };
    let options = PassOptions {
        apply: Options {
            concurrency: config.concurrency,
            ..Options::default()
        },
        status: Some(status),
        runtime,
        fleets: Some(fleets),
        ledgers: Some(ledgers),
        projects: Some(projects),
        unrecorded,
        ..PassOptions::new(&run)
    };
    let commit = loaded.commit.clone();
    let outcome = reconcile::run(loaded, compute, tailnet, &TokioClock, &options, stop).await;
    (commit, outcome)
}

/// Keeps the account of a pass whose record could not be written in `unrecorded`, for the
/// next pass's record; forgets them all once a pass wrote its record.
pub(super) fn carry_unrecorded(
    unrecorded: &mut Vec<ApplyReport>,
    outcome: &Result<PassOutcome, PassError>,
) {
    match outcome {
        Err(e @ PassError::Unrecorded { .. }) => {
            unrecorded.extend(e.outcome().map(|o| o.report.clone()));
        }
        _ => unrecorded.clear(),
    }
}

async fn read(source: &Source, fleets: &FleetCache) -> Result<Loaded, String> {
    match source {
        Source::Remote { cache, branch, .. } => {
            let (cache, branch, fleets) = (cache.clone(), branch.clone(), fleets.clone());
            tokio::task::spawn_blocking(move || {
                let commit = cache.fetch(&branch).map_err(|e| e.to_string())?;
                fleets
                    .read(cache.path(), &commit)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
        }
        Source::Directory { path, .. } => source::dir::read(path)
            .map(|snapshot| Loaded::from_snapshot(&snapshot))
            .map_err(|e| e.to_string()),
    }
}

/// Readiness from the passes' outcomes: ready after a successful pass, degraded after
/// `degraded_after` failed passes in a row, ready again after the next success.
#[derive(Debug)]
pub(super) struct Health {
    readiness: Readiness,
    degraded_after: u32,
    failures_in_a_row: u32,
}

impl Health {
    pub(super) fn new(readiness: Readiness, degraded_after: u32) -> Health {
        Health {
            readiness,
            degraded_after,
            failures_in_a_row: 0,
        }
    }

    /// Counts one pass in `metrics` and readiness, and logs one info line saying what it did.
    pub(super) fn record(
        &mut self,
        metrics: &Metrics,
        commit: Option<&str>,
        outcome: &Result<PassOutcome, PassError>,
        took: Duration,
    ) {
        let now = SystemTime::now();
        let commit = commit.map_or_else(|| "(working tree)".to_owned(), short);
        let failure = match outcome {
            Ok(o) => {
                count_actions(metrics, o);
                count_breaches(metrics, o);
                let (done, failed, skipped) = o.report.counts();
                tracing::info!(
                    commit = %commit,
                    planned = o.report.actions.len(),
                    done,
                    failed,
                    skipped,
                    status_commit = o.status_commit.as_deref().unwrap_or("-"),
                    took_ms = took.as_millis() as u64,
                    "pass finished: {} planned, {done} done, {failed} failed, {skipped} skipped, at {commit} in {:.1}s",
                    o.report.actions.len(),
                    took.as_secs_f64()
                );
                (!o.report.succeeded()).then(|| format!("{failed} action(s) failed at {commit}"))
            }
            Err(e) => {
                if let Some(o) = e.outcome() {
                    count_actions(metrics, o);
                }
                tracing::error!(commit = %commit, error = %e, took_ms = took.as_millis() as u64, "pass failed at {commit}: {e}");
                Some(format!(
                    "the pass at {commit} failed: {}",
                    first_line(&e.to_string())
                ))
            }
        };
        match failure {
            None => {
                metrics.observe_reconcile(ReconcileOutcome::Success, took, now);
                self.failures_in_a_row = 0;
                self.readiness.set_ready();
            }
            Some(reason) => {
                metrics.observe_reconcile(ReconcileOutcome::Failure, took, now);
                self.failures_in_a_row += 1;
                if self.failures_in_a_row >= self.degraded_after {
                    self.readiness.set_degraded(format!(
                        "{} passes in a row failed; the last: {reason}",
                        self.failures_in_a_row
                    ));
                }
            }
        }
    }
}

fn count_actions(metrics: &Metrics, o: &PassOutcome) {
    for a in &o.report.actions {
        let result = match a.outcome {
            Outcome::Done => "done",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Deferred { .. } => "deferred",
        };
        metrics.count_action(a.kind, result);
        if let Some(error) = a.outcome.kind() {
            metrics.count_action_error(a.kind, error.as_str());
        }
    }
    let unhealthy = o
        .plan
        .notes
        .iter()
        .filter(|n| matches!(n, Note::Unhealthy { .. }))
        .count() as u64;
    let agents = o.fleet.agents.len() as u64;
    metrics.set_agents(&[
        ("healthy", agents.saturating_sub(unhealthy)),
        ("unhealthy", unhealthy),
    ]);
}

/// The invariants `o` judged, broken or not, in `metrics`.
fn count_breaches(metrics: &Metrics, o: &PassOutcome) {
    let breaches: Vec<(&str, u64)> = Invariant::ALL
        .iter()
        .map(|i| {
            let n = o.breaches.iter().filter(|b| b.invariant() == *i).count();
            (i.as_str(), n as u64)
        })
        .collect();
    metrics.set_invariant_breaches(&breaches);
}

fn short(commit: &str) -> String {
    commit.chars().take(12).collect()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pass of an empty fleet that applied `deleted` (one deletion per server id).
    fn applied(deleted: &[u64]) -> PassOutcome {
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
        let actions = deleted
            .iter()
            .map(|id| crate::apply::ActionReport {
                kind: "delete",
                agent: format!("agent-{id}"),
                outcome: Outcome::Done,
                server_id: Some(crate::cloud::ServerId(*id)),
                ipv4: None,
                action_ids: Vec::new(),
                device_ids: Vec::new(),
                deleted_server: Some(crate::cloud::ServerId(*id)),
                key_id: None,
                warning: None,
                reason: None,
                order: 0,
            })
            .collect();
        PassOutcome {
            report: crate::apply::ApplyReport {
                plan_hash: plan.plan_hash.clone(),
                revision: None,
                actions,
            },
            fleet,
            plan,
            status_commit: None,
            breaches: Vec::new(),
        }
    }

    fn unrecorded(outcome: PassOutcome) -> Result<PassOutcome, PassError> {
        Err(PassError::Unrecorded {
            source: crate::audit::commit::CommitError::Contended(STATUS_BRANCH.to_owned()),
            pass: Box::new(Ok(outcome)),
        })
    }

    #[test]
    fn reports_whose_record_failed_are_kept_until_a_pass_writes_its_record() {
        let mut carried = Vec::new();
        carry_unrecorded(&mut carried, &unrecorded(applied(&[7])));
        carry_unrecorded(&mut carried, &unrecorded(applied(&[8, 9])));
        let deleted: Vec<_> = carried
            .iter()
            .flat_map(|r| &r.actions)
            .filter_map(|a| a.deleted_server)
            .map(|id| id.0)
            .collect();
        assert_eq!(deleted, [7, 8, 9]);
        carry_unrecorded(&mut carried, &Ok(applied(&[])));
        assert!(carried.is_empty());
    }

    #[test]
    fn readiness_degrades_after_n_failed_passes_in_a_row_and_recovers_on_success() {
        let readiness = Readiness::default();
        let metrics = Metrics::new(SystemTime::now());
        let mut health = Health::new(readiness.clone(), 3);
        let failed = || {
            Err(PassError::Load(tether_schema::LoadError {
                diagnostics: vec![tether_schema::Diagnostic::new(
                    "fleet.yaml",
                    None,
                    tether_schema::Code::Unreadable,
                    "cannot parse".to_owned(),
                )],
            }))
        };
        for _ in 0..2 {
            health.record(
                &metrics,
                Some("0123456789abcdef"),
                &failed(),
                Duration::ZERO,
            );
            assert_eq!(
                readiness.check(),
                Err((
                    "not ready",
                    "waiting for the first reconcile to finish".to_owned()
                ))
            );
        }
        health.record(
            &metrics,
            Some("0123456789abcdef"),
            &failed(),
            Duration::ZERO,
        );
        let (status, reason) = readiness.check().expect_err("degraded");
        assert_eq!(status, "degraded");
        assert!(
            reason
                .starts_with("3 passes in a row failed; the last: the pass at 0123456789ab failed"),
            "{reason}"
        );
        assert!(reason.contains("cannot parse"), "{reason}");
    }
}
