//! The billing receiver's YAML files (its configuration and the price mapping): read with the
//! fleet specs' strict parser, every problem reported at once with file, line, column, key and
//! a hint, in the daemon configuration's manner.

use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};
use tether_schema::Span;
use tether_schema::yaml::{de, node};

/// One problem in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key, or the environment variable, concerned.
    pub key: String,
    /// Where in the file, when known.
    pub span: Option<Span>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// A file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It cannot be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// It holds problems, all listed.
    #[error("{}", Listed { path, problems })]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

struct Listed<'a> {
    path: &'a Path,
    problems: &'a [Problem],
}

impl fmt::Display for Listed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        let s = if n == 1 { "" } else { "s" };
        write!(f, "invalid `{}` ({n} problem{s}):", self.path.display())?;
        for p in self.problems {
            let at = match p.span {
                Some(span) => format!("{}:{}:{}", self.path.display(), span.line, span.column),
                None => self.path.display().to_string(),
            };
            write!(
                f,
                "\n  {at}: `{}`: {}\n    hint: {}",
                p.key, p.message, p.hint
            )?;
        }
        Ok(())
    }
}

/// Problems collected while checking one file.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records a problem.
    pub fn push(&mut self, key: &str, span: Option<Span>, message: String, hint: &str) {
        self.0.push(Problem {
            key: key.to_owned(),
            span,
            message,
            hint: hint.to_owned(),
        });
    }

    /// `value` when no problem was found, else every problem.
    pub fn finish<T>(self, path: &Path, value: Option<T>) -> Result<T, FileError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(FileError::Invalid {
                path: path.to_owned(),
                problems: self.0,
            }),
        }
    }
}

/// Reads `path` as YAML into `T`; unknown keys are problems (with `unknown_hint` deciding the
/// hint, e.g. refusing an inline secret).
///
/// # Errors
/// [`FileError::Read`] when the file cannot be read.
pub fn read<T: DeserializeOwned>(
    path: &Path,
    problems: &mut Problems,
    unknown_hint: impl Fn(&str) -> String,
) -> Result<Option<T>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse(&text, problems, unknown_hint))
}

/// Like [`read`], with the text given.
pub fn parse<T: DeserializeOwned>(
    text: &str,
    problems: &mut Problems,
    unknown_hint: impl Fn(&str) -> String,
) -> Option<T> {
    let tree = match node::parse(text) {
        Ok(tree) => tree,
        Err(e) => {
            let hint = e.hint.unwrap_or_else(|| "fix the YAML".to_owned());
            problems.push("(file)", Some(e.span), e.message, &hint);
            return None;
        }
    };
    let (result, unknown) = de::from_node::<T>(&tree);
    for u in unknown {
        let hint = unknown_hint(&u.path);
        let hint = match (u.suggestion, hint.is_empty()) {
            (Some(s), true) => format!("did you mean `{s}`?"),
            (None, true) => format!("known keys here: {}", u.expected.join(", ")),
            (_, false) => hint,
        };
        problems.push(&u.path, Some(u.span), "unknown key".to_owned(), &hint);
    }
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            let hint = e.hint.unwrap_or_else(|| "see docs/billing.md".to_owned());
            problems.push(
                e.path.as_deref().unwrap_or("(file)"),
                e.span,
                e.message,
                &hint,
            );
            None
        }
    }
}
