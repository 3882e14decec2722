//! [`Report`]: the problems of one file, collected as validation finds them, each at the
//! position of the value it is about.

use crate::diagnostic::{Code, Diagnostic, Span};
use crate::names::Invalid;
use crate::spanned::Text;

/// Collects the problems of one file.
pub(crate) struct Report<'a> {
    pub file: &'a str,
    pub out: &'a mut Vec<Diagnostic>,
    failed: bool,
}

impl<'a> Report<'a> {
    pub fn new(file: &'a str, out: &'a mut Vec<Diagnostic>) -> Self {
        Report {
            file,
            out,
            failed: false,
        }
    }

    pub fn push(&mut self, span: Span, path: &str, code: Code, message: String, hint: String) {
        self.failed = true;
        self.out.push(
            Diagnostic::new(self.file, Some(span), code, message)
                .at_path(path)
                .with_hint(hint),
        );
    }

    /// Parses `text` with `parse`, reporting a failure at the value's position.
    pub fn parse<T>(
        &mut self,
        path: &str,
        text: &Text,
        parse: fn(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        match parse(&text.value) {
            Ok(v) => Some(v),
            Err(Invalid { message, hint }) => {
                self.push(text.span, path, Code::InvalidValue, message, hint);
                None
            }
        }
    }

    pub fn parse_all<T>(
        &mut self,
        path: &str,
        items: &[Text],
        parse: fn(&str) -> Result<T, Invalid>,
    ) -> Vec<T> {
        items
            .iter()
            .enumerate()
            .filter_map(|(i, t)| self.parse(&format!("{path}[{i}]"), t, parse))
            .collect()
    }

    pub fn ok(&self) -> bool {
        !self.failed
    }
}
