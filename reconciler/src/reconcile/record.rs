//! The record step: one status commit for every ending of a pass, written by [`write`] from
//! what the pass knew when it ended ([`Ending`]).
//!
//! - Stopped before applying: `lastError` in `status/fleet.yaml`, every other document as the
//!   branch holds it. When the branch itself could not be read, the record is written over
//!   its local copy, if that reads.
//! - Refused: the agents' documents from the inventory, `lastError` with the reasons.
//! - Applied: every document from the inventory after the apply (or, when it could not be
//!   read again, from before it, with `lastError` saying so), the invariants checked at the
//!   end, and the apply report with its provider action ids in the commit message.
//!
//! Reports of earlier passes whose record failed ([`PassOptions::unrecorded`]) are added to
//! the commit message.

use super::steps::{After, Ending, Known, Planned};
use super::{PassError, PassOptions, PassOutcome};
use crate::apply::ApplyReport;
use crate::audit::commit::{self, CommitError};
use crate::audit::invariants::{self, Breach};
use crate::audit::ledger::{self, Ledger};
use crate::audit::message;
use crate::audit::status::{self, Checks, Inputs, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use time::format_description::well_known::Rfc3339;

/// Writes the record of a pass that ended as `ending`, and says how the pass ended.
///
/// # Errors
/// The pass's own error; [`PassError::Refresh`] carrying the recorded outcome; or
/// [`PassError::Unrecorded`] carrying how the pass ended when the status commit failed.
pub(super) fn write(
    known: Known,
    ending: Ending,
    options: &PassOptions<'_>,
) -> Result<PassOutcome, PassError> {
    let now = known.now.format(&Rfc3339).unwrap_or_default();
    let (planned, ended) = match ending {
        Ending::Stopped(error) => return stopped(known, &now, error, options),
        Ending::Refused { planned, error } => (planned, Err(error)),
        Ending::Applied {
            planned,
            report,
            after,
        } => (planned, Ok((report, after))),
    };
    let pass = Record {
        now: &now,
        at: known.now,
        options,
    };
    match ended {
        Err(error) => {
            let empty = ApplyReport {
                plan_hash: planned.plan.plan_hash.clone(),
                revision: planned.plan.revision.clone(),
                actions: Vec::new(),
            };
            let (files, _) = pass.files(&planned, &planned.observed, &empty, None, None);
            let text = message::refusal_message(&planned.plan, options.run);
            match pass.commit(&planned.ledger, files, &text) {
                Ok(_) => Err(error.into()),
                Err(source) => Err(unrecorded(source, Err(error.into()))),
            }
        }
        Ok((report, after)) => pass.applied(*planned, report, after),
    }
}

/// The record of a pass that stopped before it applied: `lastError` over the branch as read,
/// or, when the branch could not be fetched or read, over its local copy if that reads.
fn stopped(
    known: Known,
    now: &str,
    error: PassError,
    options: &PassOptions<'_>,
) -> Result<PassOutcome, PassError> {
    let Some(target) = &options.status else {
        return Err(error);
    };
    let ledger = match known.ledger {
        Some(ledger) => ledger,
        None => match Ledger::read(target.repo, target.branch) {
            Ok(ledger) => ledger,
            Err(e) => {
                let source = CommitError::Git {
                    repo: target.repo.display().to_string(),
                    branch: target.branch.to_owned(),
                    message: format!("nothing to write the record over: {e}"),
                };
                return Err(unrecorded(source, Err(error)));
            }
        },
    };
    let pass = Record {
        now,
        at: known.now,
        options,
    };
    let files = status::failure_files(&ledger, &error.to_string(), now, options.run);
    let text = message::failure_message(&error.to_string(), known.commit.as_deref(), options.run);
    match pass.commit(&ledger, files, &text) {
        Ok(_) => Err(error),
        Err(source) => Err(unrecorded(source, Err(error))),
    }
}

fn unrecorded(source: CommitError, pass: Result<PassOutcome, PassError>) -> PassError {
    tracing::error!(error = %source, "the pass's status record could not be written");
    PassError::Unrecorded {
        source,
        pass: Box::new(pass),
    }
}

/// One pass's record: its time and where it goes.
struct Record<'a> {
    now: &'a str,
    at: time::OffsetDateTime,
    options: &'a PassOptions<'a>,
}

impl Record<'_> {
    /// The record of an applied plan.
    fn applied(
        &self,
        planned: Planned,
        report: ApplyReport,
        after: Result<After, crate::observe::ObserveError>,
    ) -> Result<PassOutcome, PassError> {
        let (observed, keys, refresh) = match after {
            Ok(After { observed, keys }) => (observed, keys, None),
            Err(e) => (None, None, Some(e)),
        };
        let observed = observed.as_ref().unwrap_or(&planned.observed);
        let stopped = refresh.as_ref().map(|e| {
            format!("the inventory could not be read again after applying ({e}); this record shows it as it was before")
        });
        let pending = if refresh.is_none() {
            invariants::pending_in_inventory(&planned.fleet, observed, self.at)
        } else {
            Vec::new()
        };
        let checks = refresh.is_none().then_some(Checks {
            keys: keys.as_deref(),
            pending: &pending,
            now: self.at,
        });
        let (files, breaches) = self.files(&planned, observed, &report, stopped.as_deref(), checks);
        for breach in &breaches {
            tracing::error!(
                invariant = breach.invariant().as_str(),
                agent = breach.agent().unwrap_or("-"),
                "invariant broken at the end of the pass: {breach}"
            );
        }
        let text = message::commit_message(&report, self.options.run);
        let committed = self.commit(&planned.ledger, files, &text);
        let outcome = PassOutcome {
            fleet: planned.fleet,
            plan: planned.plan,
            report,
            status_commit: committed.as_ref().ok().cloned().flatten(),
            breaches,
        };
        let ended = match refresh {
            None => Ok(outcome),
            Some(source) => Err(PassError::Refresh {
                source,
                outcome: Box::new(outcome),
            }),
        };
        match committed {
            Ok(_) => ended,
            Err(source) => Err(unrecorded(source, ended)),
        }
    }

    /// The status documents of a pass that planned, and the invariants broken.
    fn files(
        &self,
        planned: &Planned,
        observed: &crate::plan::Observed,
        report: &ApplyReport,
        stopped: Option<&str>,
        checks: Option<Checks<'_>>,
    ) -> (BTreeMap<String, String>, Vec<Breach>) {
        let verdict = match () {
            _ if report.actions.is_empty() && planned.plan.refusal.is_some() => {
                Verdict::Refused(&planned.plan)
            }
            _ if planned.plan.suspended => Verdict::Suspended(&planned.plan),
            _ => Verdict::Applied(&planned.plan),
        };
        let inputs = Inputs {
            fleet: &planned.fleet,
            observed,
            report,
            ledger: &planned.ledger,
            verdict,
            now: self.now,
            run: self.options.run,
            stopped,
            checks,
        };
        let (mut files, breaches) = status::files(&inputs);
        crate::audit::runtime::add(
            &mut files,
            self.options.runtime,
            &planned.fleet,
            &planned.ledger,
        );
        (files, breaches)
    }

    /// Commits `files` with `message` (and the accounts of earlier unrecorded passes) when they
    /// differ materially from what the branch holds ([`ledger::settle`]).
    fn commit(
        &self,
        ledger: &Ledger,
        files: BTreeMap<String, String>,
        message: &str,
    ) -> Result<Option<String>, CommitError> {
        let Some(target) = &self.options.status else {
            return Ok(None);
        };
        let Some(files) = ledger::settle(&ledger.files, files) else {
            return Ok(None);
        };
        let message = with_unrecorded(message, self.options.unrecorded);
        Ok(commit::write(target, &files, &message)?.map(|oid| oid.to_string()))
    }
}

/// `message` with the accounts of earlier passes whose record could not be written, before
/// its trailers.
fn with_unrecorded(message: &str, unrecorded: &[ApplyReport]) -> String {
    if unrecorded.is_empty() {
        return message.to_owned();
    }
    let (body, trailers) = message
        .trim_end()
        .rsplit_once("\n\n")
        .unwrap_or((message.trim_end(), ""));
    let mut text = format!("{body}\n\nEarlier passes whose status record could not be written:\n");
    for report in unrecorded {
        let _ = write!(text, "\n{}\n{report}\n", message::summary_line(report));
    }
    let _ = write!(text, "\n{trailers}\n");
    text
}
