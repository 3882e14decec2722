//! The one user-facing error type and the exit codes, mapped in one place. The table of exit
//! codes is in docs/operations.md ("Exit codes"); decision 014 says why these numbers.

use super::style::{Style, Tone};
use serde_json::json;
use std::fmt;
use std::process::ExitCode;
use tether_schema::Diagnostic;

/// Exit code: the command did its job, and there is nothing to report.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command could not do its job, or found the fleet invalid.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the plan has changes (only with `--detailed-exitcode`).
pub const EXIT_CHANGES: u8 = 2;
/// Exit code: refused by policy (safety rules, a changed plan hash, a suspended fleet with
/// changes); nothing was changed, and running again will refuse again until someone acts.
pub const EXIT_REFUSED: u8 = 3;
/// Exit code: an outside failure that retrying later may cure (an API unreachable, 5xx,
/// rate limited, timed out) or the fleet's lease held by another tether; nothing is wrong with
/// the fleet or the command line.
pub const EXIT_TRANSIENT: u8 = 4;
/// Exit code: the command line cannot be understood (`EX_USAGE` of sysexits.h).
pub const EXIT_USAGE: u8 = 64;
/// Exit code: Ctrl-C or SIGTERM stopped the command (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// How a command that ran to completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Everything is as it should be (exit 0).
    Success,
    /// The command worked and found a problem the user must fix, e.g. an invalid fleet, or
    /// actions that failed (exit 1).
    Problems,
    /// The command worked and found changes to make (exit 2, `--detailed-exitcode`).
    Changes,
    /// The fleet's policy refused the plan; nothing was changed (exit 3).
    Refused,
    /// Ctrl-C or SIGTERM stopped the command early, after an orderly wind-down (exit 130).
    Interrupted,
}

impl Outcome {
    /// The process exit code as a number.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => EXIT_OK,
            Outcome::Problems => EXIT_FAILED,
            Outcome::Changes => EXIT_CHANGES,
            Outcome::Refused => EXIT_REFUSED,
            Outcome::Interrupted => EXIT_INTERRUPTED,
        }
    }

    /// The process exit code.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

/// What kind of failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The arguments do not make sense together (exit 64).
    Usage,
    /// The command could not do its job (exit 1).
    Failed,
    /// The fleet's policy refused to act; nothing was changed (exit 3).
    Refused,
    /// An outside failure that may pass: retrying later may succeed (exit 4).
    Transient,
}

impl ErrorKind {
    /// The exit code of this kind.
    pub fn code(self) -> u8 {
        match self {
            ErrorKind::Usage => EXIT_USAGE,
            ErrorKind::Failed => EXIT_FAILED,
            ErrorKind::Refused => EXIT_REFUSED,
            ErrorKind::Transient => EXIT_TRANSIENT,
        }
    }

    /// The kind's name in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Failed => "failed",
            ErrorKind::Refused => "refused",
            ErrorKind::Transient => "transient",
        }
    }
}

/// An error for people: what happened, and what to do.
#[derive(Debug)]
pub struct CliError {
    /// Decides the exit code.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// For an invalid fleet: every problem, with file, line and field.
    pub diagnostics: Vec<Diagnostic>,
}

impl CliError {
    fn new(kind: ErrorKind, message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError {
            kind,
            message: message.into(),
            hint: Some(hint.into()),
            diagnostics: Vec::new(),
        }
    }

    /// A command line that does not make sense, with a hint.
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError::new(ErrorKind::Usage, message, hint)
    }

    /// This error and `other` as one, for problems found together (every missing credential
    /// in one run): both messages on their own lines, both hints, and `self`'s kind.
    pub fn and(mut self, other: CliError) -> Self {
        self.message = format!("{}\n{}", self.message, other.message);
        self.hint = match (self.hint, other.hint) {
            (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
            (a, b) => a.or(b),
        };
        self.diagnostics.extend(other.diagnostics);
        self
    }

    /// A failure with a hint.
    pub fn failed(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError::new(ErrorKind::Failed, message, hint)
    }

    /// A change the approval or the fleet's policy does not allow, with a hint.
    pub fn refused(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError::new(ErrorKind::Refused, message, hint)
    }

    /// A failure that retrying later may cure, with a hint.
    pub fn transient(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError::new(ErrorKind::Transient, message, hint)
    }

    /// clap's account of a command line it could not parse: its first line, without the
    /// `error: ` prefix.
    pub fn from_clap(e: &clap::Error) -> Self {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        CliError::usage(
            first.strip_prefix("error: ").unwrap_or(first),
            "run the command with --help for its usage",
        )
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.code())
    }

    /// The error as the one JSON document `--format json` prints on stdout.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "error": {
                "kind": self.kind.name(),
                "message": self.message,
                "hint": self.hint,
                "exit_code": self.kind.code(),
                "diagnostics": self.diagnostics,
            }
        })
    }
}

impl CliError {
    /// The error for stderr: `error: …` and `  = hint: …`, the labels coloured when stderr is.
    pub fn render(&self, style: Style) -> String {
        let mut out = format!("{} {}", style.err(Tone::Bad, "error:"), self.message);
        if let Some(hint) = &self.hint {
            out.push_str(&format!(
                "\n  {} {hint}",
                style.err(Tone::Strong, "= hint:")
            ));
        }
        out
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}

impl From<crate::source::SourceError> for CliError {
    fn from(e: crate::source::SourceError) -> Self {
        CliError::failed(e.to_string(), e.hint())
    }
}

impl From<crate::reconcile::PassError> for CliError {
    fn from(e: crate::reconcile::PassError) -> Self {
        use crate::reconcile::PassError;
        let (kind, hint) = match e.cause().unwrap_or(&e) {
            PassError::Load(_) => (
                ErrorKind::Failed,
                "run `tether validate` for every problem with its location; nothing was read or changed",
            ),
            PassError::Observe(o) if o.is_transient() => (
                ErrorKind::Transient,
                "an outside API failed in a way that may pass (unreachable, 5xx, rate limited, timed out); check the endpoint and try again later. Nothing was changed",
            ),
            PassError::Observe(_) => (
                ErrorKind::Failed,
                "check the API endpoints and credentials; nothing was changed",
            ),
            PassError::NotOffered(_) => (
                ErrorKind::Failed,
                "pick what Hetzner offers (listed above) and allow it in fleet.yaml's spec.catalog",
            ),
            PassError::PlanChanged { .. } => (
                ErrorKind::Refused,
                "re-run `tether plan`, review it, and apply the new hash",
            ),
            PassError::Refused(_) => (
                ErrorKind::Refused,
                "see `tether plan` for the refused actions and what to do",
            ),
            PassError::Ledger(_) => (
                ErrorKind::Failed,
                "check that the status branch can be fetched from the fleet repository (network, credentials); tether acts only with its records",
            ),
            PassError::Refresh { .. } => (
                ErrorKind::Failed,
                "the changes were applied and recorded (the account above); run `tether status --live` to see the inventory now",
            ),
            PassError::Unrecorded { .. } => (
                ErrorKind::Failed,
                "check that the status branch can be written (network, credentials, the branch's protection); the account above is what was done, and the next run records what it finds",
            ),
        };
        let diagnostics = match &e {
            PassError::Load(load) => load.diagnostics.clone(),
            _ => Vec::new(),
        };
        CliError {
            diagnostics,
            ..CliError::new(kind, e.to_string(), hint)
        }
    }
}

/// Why a plan or apply produced no result: a failed pass (which a GitHub report describes in
/// its own words) or a failure before the pass could start.
#[derive(Debug)]
pub enum Failure {
    /// The pass failed.
    Pass(crate::reconcile::PassError),
    /// Setting up failed (credentials, the runtime).
    Cli(CliError),
}

impl From<Failure> for CliError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Pass(e) => e.into(),
            Failure::Cli(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_and_kind_has_its_documented_exit_code() {
        let outcomes = [
            Outcome::Success,
            Outcome::Problems,
            Outcome::Changes,
            Outcome::Refused,
            Outcome::Interrupted,
        ]
        .map(Outcome::code);
        let kinds = [
            ErrorKind::Failed,
            ErrorKind::Refused,
            ErrorKind::Transient,
            ErrorKind::Usage,
        ]
        .map(ErrorKind::code);
        assert_eq!((outcomes, kinds), ([0, 1, 2, 3, 130], [1, 3, 4, 64]));
    }

    #[test]
    fn the_documented_table_lists_exactly_these_codes() {
        let doc = include_str!("../../../docs/operations.md");
        let table: Vec<u8> = doc
            .split("### Exit codes")
            .nth(1)
            .expect("docs/operations.md has an Exit codes section")
            .lines()
            .filter_map(|l| l.strip_prefix("| ")?.split(' ').next()?.parse().ok())
            .collect();
        assert_eq!(
            table,
            [
                EXIT_OK,
                EXIT_FAILED,
                EXIT_CHANGES,
                EXIT_REFUSED,
                EXIT_TRANSIENT,
                EXIT_USAGE,
                EXIT_INTERRUPTED
            ]
        );
    }

    fn hetzner_answer(status: u16, code: &str) -> crate::reconcile::PassError {
        use crate::cloud::hetzner::{ApiError, Error};
        crate::reconcile::PassError::Observe(crate::observe::ObserveError::Hetzner(Error::Api(
            Box::new(ApiError {
                operation: "list servers".into(),
                status,
                code: code.into(),
                message: String::new(),
                details: serde_json::Value::Null,
                correlation_id: None,
                retry_at: None,
            }),
        )))
    }

    #[test]
    fn an_api_outage_is_transient_and_a_refusal_of_the_request_is_not() {
        for (status, code) in [
            (503, "unavailable"),
            (500, "server_error"),
            (429, "rate_limit_exceeded"),
        ] {
            let e = CliError::from(hetzner_answer(status, code));
            assert_eq!(e.kind, ErrorKind::Transient, "{status}");
        }
        for (status, code) in [
            (401, "unauthorized"),
            (403, "forbidden"),
            (404, "not_found"),
            (422, "invalid_input"),
        ] {
            let e = CliError::from(hetzner_answer(status, code));
            assert_eq!(e.kind, ErrorKind::Failed, "{status}");
        }
    }

    #[test]
    fn an_error_in_json_carries_kind_message_hint_and_exit_code() {
        let e = CliError::transient("hetzner is unreachable", "try again later");
        assert_eq!(
            e.to_json(),
            json!({"error": {"kind": "transient", "message": "hetzner is unreachable",
                "hint": "try again later", "exit_code": 4, "diagnostics": []}})
        );
    }
}
