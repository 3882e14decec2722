//! Human rendering of diagnostics, in the style of rustc: location, message, the offending
//! source line with a caret under the column, and the hint.

use crate::diagnostic::Diagnostic;
use crate::text::{self, BOM};
use std::fmt::Write as _;

/// `c`, or U+FFFD when showing it could hide or reorder text on the terminal (a source line is
/// shown exactly where such a character is reported).
fn visible(c: char) -> char {
    if c == '\r' || text::forbidden(c).is_some() {
        char::REPLACEMENT_CHARACTER
    } else {
        c
    }
}

/// Renders `diagnostics` for a terminal. `source` returns a file's text, when available, so the
/// offending line can be shown.
pub fn human<'s>(diagnostics: &[Diagnostic], source: impl Fn(&str) -> Option<&'s str>) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let _ = writeln!(out, "error[{}]: {}", d.code.as_str(), d.message);
        let location = match d.span {
            Some(s) => format!("{}:{}:{}", d.file, s.line, s.column),
            None => d.file.clone(),
        };
        let gutter = d.span.map_or(1, |s| s.line.to_string().len());
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{pad}--> {location}");
        if !d.path.is_empty() {
            let _ = writeln!(out, "{pad} = field: {}", d.path);
        }
        if let (Some(span), Some(text)) = (d.span, source(&d.file))
            && let Some(line) = text
                .strip_prefix(BOM)
                .unwrap_or(text)
                .lines()
                .nth(span.line - 1)
        {
            let shown: String = line.chars().take(120).map(visible).collect();
            let caret = " ".repeat(span.column.saturating_sub(1).min(120));
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{} | {shown}", span.line);
            let _ = writeln!(out, "{pad} | {caret}^");
        }
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "{pad} = hint: {hint}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::{Code, Span};

    #[test]
    fn source_lines_are_shown_without_invisible_characters_or_the_bom() {
        let d = Diagnostic::new(
            "a.yaml",
            Some(Span { line: 1, column: 4 }),
            Code::ForbiddenCharacter,
            "m",
        );
        let out = human(&[d], |_| Some("\u{feff}a: \u{202e}x\u{2028}y\n"));
        assert!(out.contains("1 | a: \u{fffd}x\u{fffd}y\n"), "{out}");
        assert!(out.contains("  |    ^\n"), "{out}");
    }
}
