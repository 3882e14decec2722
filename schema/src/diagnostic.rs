//! Diagnostics: one problem in a fleet spec, located by file, line, column and field path.
//!
//! Every check in this crate reports through [`Diagnostic`]; rendering for people lives in
//! [`crate::render`].

use serde::Serialize;
use std::fmt;

/// A 1-based position in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Span {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Span {
    /// The start of a file.
    pub const START: Span = Span { line: 1, column: 1 };
}

/// A stable, machine-readable name for a kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// The file could not be read.
    Unreadable,
    /// The file is larger than [`crate::MAX_SPEC_BYTES`].
    TooLarge,
    /// The file is not valid UTF-8.
    InvalidUtf8,
    /// NUL, a control, a line break other than LF/CRLF, a bidi control or an invisible
    /// character, in the file or (through an escape) in a value.
    ForbiddenCharacter,
    /// A file under `agents/` that is not a `.yaml`/`.yml` file.
    NotYaml,
    /// A symbolic link where a spec file was expected.
    Symlink,
    /// `fleet.yaml` is missing from the repository root.
    MissingFleet,
    /// The YAML could not be parsed.
    Syntax,
    /// The file holds no document.
    Empty,
    /// The file holds more than one document.
    MultipleDocuments,
    /// YAML anchors/aliases, explicit tags or nesting beyond the limit.
    UnsupportedYaml,
    /// The same key twice in one mapping.
    DuplicateKey,
    /// A field the spec does not define.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A value of the wrong shape (a list where a string belongs, …).
    InvalidType,
    /// A value of the right shape that breaks a rule.
    InvalidValue,
    /// `apiVersion` or `kind` is not what this file must hold.
    WrongKind,
    /// Two agents share a name.
    DuplicateName,
    /// Two agents share a subscription.
    DuplicateSubscription,
    /// A server type, location or image outside the fleet catalog.
    NotInCatalog,
    /// A Tailscale tag the fleet does not allow.
    TagNotAllowed,
    /// The rendered cloud-init exceeds Hetzner's user_data limit.
    UserDataTooLarge,
}

impl Code {
    /// The kebab-case name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unreadable => "unreadable",
            Code::TooLarge => "too-large",
            Code::InvalidUtf8 => "invalid-utf8",
            Code::ForbiddenCharacter => "forbidden-character",
            Code::NotYaml => "not-yaml",
            Code::Symlink => "symlink",
            Code::MissingFleet => "missing-fleet",
            Code::Syntax => "syntax",
            Code::Empty => "empty",
            Code::MultipleDocuments => "multiple-documents",
            Code::UnsupportedYaml => "unsupported-yaml",
            Code::DuplicateKey => "duplicate-key",
            Code::UnknownField => "unknown-field",
            Code::MissingField => "missing-field",
            Code::InvalidType => "invalid-type",
            Code::InvalidValue => "invalid-value",
            Code::WrongKind => "wrong-kind",
            Code::DuplicateName => "duplicate-name",
            Code::DuplicateSubscription => "duplicate-subscription",
            Code::NotInCatalog => "not-in-catalog",
            Code::TagNotAllowed => "tag-not-allowed",
            Code::UserDataTooLarge => "user-data-too-large",
        }
    }
}

/// One problem found while loading a fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Repository-relative path of the file, with `/` separators.
    pub file: String,
    /// Where in the file, when the problem has a position.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// Dotted field path inside the document (`spec.server.type`), empty for whole-file problems.
    pub path: String,
    /// What kind of problem this is.
    pub code: Code,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A problem at `span` in `file`.
    pub fn new(file: &str, span: Option<Span>, code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_owned(),
            span,
            path: String::new(),
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Sets the field path.
    #[must_use]
    pub fn at_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets the hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn sort_key(&self) -> (&str, Span, &str) {
        (
            &self.file,
            self.span.unwrap_or(Span { line: 0, column: 0 }),
            &self.message,
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(span) = self.span {
            write!(f, ":{}:{}", span.line, span.column)?;
        }
        if !self.path.is_empty() {
            write!(f, " ({})", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Sorts diagnostics by file, position and message, and drops exact repeats.
pub fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    diagnostics.dedup();
}

/// The byte offset of `span` turned from a byte index in `text`.
pub(crate) fn span_of_byte(text: &[u8], byte: usize) -> Span {
    let before = &text[..byte.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Span { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_of_byte_counts_lines_and_characters() {
        let text = "ab\nçd\nx".as_bytes();
        assert_eq!(span_of_byte(text, 0), Span { line: 1, column: 1 });
        assert_eq!(span_of_byte(text, 3), Span { line: 2, column: 1 });
        assert_eq!(span_of_byte(text, 5), Span { line: 2, column: 2 });
        assert_eq!(span_of_byte(text, 7), Span { line: 3, column: 1 });
    }
}
