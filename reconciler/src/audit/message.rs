//! The status commits' messages: a summary line (also the description of the
//! `tether/<fleet>` commit status), one body line per action with its provider ids, and the
//! trailers auditors and `tether audit log` read.
//!
//! # Guarantees
//! tether's trailers are always the message's last paragraph, and nothing else in it can read
//! as a trailer, a subject or a paragraph break: every line that carries text from outside
//! (a VM's error, a reason, an error) is one escaped line ([`super::trailers::escape`]), and an
//! error's lines are indented ([`super::trailers::body_line`]).

use super::trailers::{body_line, escape};
use crate::apply::ApplyReport;
use std::fmt::Write as _;

/// The one-line account of an apply: `apply 3f2a1c9: +2 created, -1 deleted, 1 failed`. The
/// status commit's subject, and the description of the `tether/<fleet>` commit status.
pub fn summary_line(report: &ApplyReport) -> String {
    let short = report
        .revision
        .as_deref()
        .map_or("working-tree", |r| &r[..r.len().min(7)]);
    let created = report.done("create") + report.done("replace");
    let deleted = report.done("delete");
    let (_, failed, skipped) = report.counts();
    let mut summary = vec![format!("+{created} created"), format!("-{deleted} deleted")];
    for (kind, label) in [("quarantine", "quarantined"), ("restore", "restored")] {
        let n = report.done(kind);
        if n > 0 {
            summary.push(format!("{n} {label}"));
        }
    }
    let updated = ["resize", "relabel", "power-on", "power-off"]
        .iter()
        .map(|k| report.done(k))
        .sum::<usize>();
    if updated > 0 {
        summary.push(format!("~{updated} updated"));
    }
    if failed > 0 {
        summary.push(format!("{failed} failed"));
    }
    if skipped > 0 {
        summary.push(format!("{skipped} skipped"));
    }
    let deferred = report.deferred();
    if deferred > 0 {
        summary.push(format!("{deferred} deferred"));
    }
    format!("apply {short}: {}", summary.join(", "))
}

/// The status commit message: summary line, one body line per action with provider ids and
/// outcome, then the trailers.
pub fn commit_message(report: &ApplyReport, run: &str) -> String {
    let mut msg = format!("{}\n\n", summary_line(report));
    for action in &report.actions {
        let _ = writeln!(msg, "{}", escape(&action.to_string()));
    }
    let (done, failed, skipped) = report.counts();
    let _ = write!(
        msg,
        "Apply: {done} done, {failed} failed, {skipped} skipped."
    );
    let _ = write!(
        msg,
        "\n\n{}: {}\n{}: {}\n{}: {run}\n",
        super::TRAILER_SOURCE,
        report.revision.as_deref().unwrap_or("none"),
        super::TRAILER_PLAN,
        report.plan_hash,
        super::TRAILER_RUN
    );
    msg
}

/// The status commit message of a pass that failed before it could plan.
pub fn failure_message(error: &str, revision: Option<&str>, run: &str) -> String {
    let short = revision.map_or("working-tree", |r| &r[..r.len().min(7)]);
    format!(
        "reconcile {short}: failed, nothing changed\n\n{}\n\n{}: {}\n{}: {run}\n",
        body_lines(error),
        super::TRAILER_SOURCE,
        revision.unwrap_or("none"),
        super::TRAILER_RUN
    )
}

/// The status commit message of a refused plan.
pub fn refusal_message(plan: &crate::plan::Plan, run: &str) -> String {
    let short = plan
        .revision
        .as_deref()
        .map_or("working-tree", |r| &r[..r.len().min(7)]);
    let reasons = plan
        .refusal
        .as_ref()
        .map(|r| body_lines(&r.reasons.join("\n")))
        .unwrap_or_default();
    format!(
        "apply {short}: refused, nothing changed\n\n{reasons}\n\n{}: {}\n{}: {}\n{}: {run}\n",
        super::TRAILER_SOURCE,
        plan.revision.as_deref().unwrap_or("none"),
        super::TRAILER_PLAN,
        plan.plan_hash,
        super::TRAILER_RUN
    )
}

/// `text`'s lines, each a [`body_line`]; blank lines are dropped, so no paragraph starts.
fn body_lines(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(body_line)
        .collect();
    if lines.is_empty() {
        body_line("(no detail)")
    } else {
        lines.join("\n")
    }
}
