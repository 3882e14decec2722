//! The one user-facing error type and the exit codes, mapped in one place.

use std::fmt;
use std::process::ExitCode;

/// Exit code of a command line that could not be understood.
pub const EXIT_USAGE: u8 = 2;

/// How a command that ran to completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Everything is as it should be (exit 0).
    Success,
    /// The command worked and found a problem the user must fix, e.g. an invalid fleet (exit 1).
    Problems,
    /// The command worked and found changes to make (exit 2, `--detailed-exitcode`).
    Changes,
    /// Ctrl-C or SIGTERM stopped the command early, after an orderly wind-down (exit 130).
    Interrupted,
}

impl Outcome {
    /// The process exit code.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Problems => ExitCode::from(1),
            Outcome::Changes => ExitCode::from(2),
            Outcome::Interrupted => ExitCode::from(130),
        }
    }
}

/// What kind of failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The arguments do not make sense together (exit 2).
    Usage,
    /// The command could not do its job (exit 1).
    Failed,
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
}

impl CliError {
    /// A command line that does not make sense, with a hint.
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError {
            kind: ErrorKind::Usage,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A failure with a hint.
    pub fn failed(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError {
            kind: ErrorKind::Failed,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self.kind {
            ErrorKind::Usage => ExitCode::from(EXIT_USAGE),
            ErrorKind::Failed => ExitCode::from(1),
        }
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
        let hint = match &e {
            PassError::Load(_) => {
                "run `tether validate` for every problem with its location; nothing was read or changed"
            }
            PassError::Observe(_) => "check the API endpoints and credentials; nothing was changed",
            PassError::NotOffered(_) => {
                "pick what Hetzner offers (listed above) and allow it in fleet.yaml's spec.catalog"
            }
            PassError::PlanChanged { .. } => {
                "re-run `tether plan`, review it, and apply the new hash"
            }
            PassError::Refused(_) => "see `tether plan` for the refused actions and what to do",
            PassError::Ledger(_) => {
                "check that the status branch can be fetched from the fleet repository (network, credentials); tether acts only with its records"
            }
            PassError::Status(_) => {
                "the changes were applied; the status branch can be written on the next run"
            }
        };
        CliError::failed(e.to_string(), hint)
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
