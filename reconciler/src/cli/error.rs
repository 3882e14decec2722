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
}

impl Outcome {
    /// The process exit code.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Problems => ExitCode::from(1),
            Outcome::Changes => ExitCode::from(2),
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
