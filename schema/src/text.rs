//! Characters a spec may not hold: NUL, controls, line breaks other than LF/CRLF, bidi
//! controls and invisible format characters. Each of them can make a file mean something
//! other than what an editor or a reviewer shows (a truncated file, a hidden line, reordered
//! text, a value that breaks out of the YAML tether renders).
//!
//! Start at [`forbidden`]; [`scan_file`] locates them in a whole file and [`scan_values`] in the
//! parsed scalars, where escapes (`"\u2028"`, `"\0"`) can still produce them.

use crate::diagnostic::Span;
use crate::yaml::node::{Node, NodeKind};
use std::fmt::Write;

/// The UTF-8 byte order mark, accepted (and skipped) at the very start of a file only.
pub const BOM: char = '\u{FEFF}';

/// Why `c` is refused, or `None` when it may appear. Tab, LF and CR are allowed here; where
/// they change meaning (a lone CR in a file, a newline in an env value) the caller decides.
pub fn forbidden(c: char) -> Option<&'static str> {
    let why = match c {
        '\t' | '\n' | '\r' => return None,
        '\0' => "which YAML parsers read as the end of the file",
        '\0'..='\u{1F}' | '\u{7F}' => "a control character",
        '\u{80}'..='\u{9F}' => "a C1 control character",
        '\u{2028}' | '\u{2029}' => "a line break that YAML 1.1 (cloud-init) honours",
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => "a bidirectional control that reorders how text is shown",
        '\u{00AD}'
        | '\u{034F}'
        | '\u{0600}'..='\u{0605}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08E2}'
        | '\u{115F}'..='\u{1160}'
        | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200D}'
        | '\u{2060}'..='\u{2064}'
        | '\u{206A}'..='\u{206F}'
        | '\u{3164}'
        | '\u{FEFF}'
        | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E007F}' => "an invisible character",
        '\u{FDD0}'..='\u{FDEF}' => "a Unicode noncharacter",
        c if (c as u32) & 0xFFFE == 0xFFFE => "a Unicode noncharacter",
        _ => return None,
    };
    Some(why)
}

/// `U+2028 LINE SEPARATOR`: the code point and, where known, its name.
pub fn describe(c: char) -> String {
    let code = format!("U+{:04X}", c as u32);
    match name(c) {
        Some(name) => format!("{code} {name}"),
        None => code,
    }
}

fn name(c: char) -> Option<&'static str> {
    const C0: [&str; 32] = [
        "NULL",
        "START OF HEADING",
        "START OF TEXT",
        "END OF TEXT",
        "END OF TRANSMISSION",
        "ENQUIRY",
        "ACKNOWLEDGE",
        "BELL",
        "BACKSPACE",
        "CHARACTER TABULATION",
        "LINE FEED",
        "LINE TABULATION",
        "FORM FEED",
        "CARRIAGE RETURN",
        "SHIFT OUT",
        "SHIFT IN",
        "DATA LINK ESCAPE",
        "DEVICE CONTROL ONE",
        "DEVICE CONTROL TWO",
        "DEVICE CONTROL THREE",
        "DEVICE CONTROL FOUR",
        "NEGATIVE ACKNOWLEDGE",
        "SYNCHRONOUS IDLE",
        "END OF TRANSMISSION BLOCK",
        "CANCEL",
        "END OF MEDIUM",
        "SUBSTITUTE",
        "ESCAPE",
        "INFORMATION SEPARATOR FOUR",
        "INFORMATION SEPARATOR THREE",
        "INFORMATION SEPARATOR TWO",
        "INFORMATION SEPARATOR ONE",
    ];
    if let Some(n) = C0.get(c as usize) {
        return Some(n);
    }
    Some(match c {
        '\u{7F}' => "DELETE",
        '\u{85}' => "NEXT LINE",
        '\u{AD}' => "SOFT HYPHEN",
        '\u{034F}' => "COMBINING GRAPHEME JOINER",
        '\u{061C}' => "ARABIC LETTER MARK",
        '\u{115F}' => "HANGUL CHOSEONG FILLER",
        '\u{1160}' => "HANGUL JUNGSEONG FILLER",
        '\u{180E}' => "MONGOLIAN VOWEL SEPARATOR",
        '\u{200B}' => "ZERO WIDTH SPACE",
        '\u{200C}' => "ZERO WIDTH NON-JOINER",
        '\u{200D}' => "ZERO WIDTH JOINER",
        '\u{200E}' => "LEFT-TO-RIGHT MARK",
        '\u{200F}' => "RIGHT-TO-LEFT MARK",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2060}' => "WORD JOINER",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        '\u{3164}' => "HANGUL FILLER",
        '\u{FEFF}' => "ZERO WIDTH NO-BREAK SPACE (byte order mark)",
        _ => return None,
    })
}

/// One refused character: where it is and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where the character is (for a scalar: where the scalar starts).
    pub span: Span,
    /// Dotted field path of the scalar, empty for a whole-file scan.
    pub path: String,
    /// The character.
    pub c: char,
    /// Why it is refused.
    pub why: &'static str,
}

/// Every refused character in a file's text (after its leading BOM), plus each CR that does not
/// start a CRLF: YAML reads a lone CR as a line break while terminals and many diff views
/// draw the next text over the line.
pub fn scan_file(text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    if text.bytes().all(plain_byte) {
        // Printable ASCII, tabs and LFs only: nothing to refuse (the usual spec file).
        return found;
    }
    let mut line = 1;
    let mut column = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let why = match c {
            '\r' if chars.peek() != Some(&'\n') => {
                Some("a carriage return outside a CRLF line end")
            }
            c => forbidden(c),
        };
        if let Some(why) = why {
            found.push(Found {
                span: Span { line, column },
                path: String::new(),
                c,
                why,
            });
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    found
}

/// Every refused character in the keys and scalar values of a parsed tree, at most one per
/// scalar; escapes in quoted scalars can produce what [`scan_file`] cannot see.
pub fn scan_values(node: &Node) -> Vec<Found> {
    let mut found = Vec::new();
    walk(node, &mut String::new(), &mut found);
    found
}

/// A byte that is printable ASCII, a tab or a line feed: never refused, in a file or a value.
fn plain_byte(b: u8) -> bool {
    matches!(b, b' '..=b'~' | b'\t' | b'\n')
}

/// Scans the scalars under `node`, whose dotted path is `path` (extended and restored in place,
/// so no path is built per value).
fn walk(node: &Node, path: &mut String, found: &mut Vec<Found>) {
    let len = path.len();
    match &node.kind {
        NodeKind::Scalar { text, .. } => check(text, node.span, path, found),
        NodeKind::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let _ = write!(path, "[{i}]");
                walk(item, path, found);
                path.truncate(len);
            }
        }
        NodeKind::Mapping(entries) => {
            for (key, value) in entries {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.text);
                check(&key.text, key.span, path, found);
                walk(value, path, found);
                path.truncate(len);
            }
        }
    }
}

fn check(text: &str, span: Span, path: &str, found: &mut Vec<Found>) {
    if text.bytes().all(plain_byte) {
        return;
    }
    if let Some((c, why)) = text.chars().find_map(|c| forbidden(c).map(|why| (c, why))) {
        found.push(Found {
            span,
            path: printable(path),
            c,
            why,
        });
    }
}

/// `path` with refused characters shown as `\u{…}` escapes, so a diagnostic never carries them.
pub fn printable(path: &str) -> String {
    path.chars()
        .map(|c| match forbidden(c) {
            Some(_) => format!("\\u{{{:x}}}", c as u32),
            None if c == '\n' || c == '\r' || c == '\t' => c.escape_default().to_string(),
            None => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::node;

    #[test]
    fn every_named_class_is_refused_and_ordinary_text_is_not() {
        for c in [
            '\0',
            '\u{7}',
            '\u{b}',
            '\u{c}',
            '\u{1b}',
            '\u{7f}',
            '\u{85}',
            '\u{9f}',
            '\u{2028}',
            '\u{2029}',
            '\u{202e}',
            '\u{2066}',
            '\u{200e}',
            '\u{61c}',
            '\u{200b}',
            '\u{200d}',
            '\u{feff}',
            '\u{e0041}',
            '\u{fffe}',
            '\u{10ffff}',
        ] {
            assert!(forbidden(c).is_some(), "{}", describe(c));
        }
        for c in [
            '\t', '\n', '\r', 'a', ' ', 'é', 'ß', '€', '日', '😀', '\u{a0}',
        ] {
            assert_eq!(forbidden(c), None, "{}", describe(c));
        }
    }

    #[test]
    fn code_points_are_named_as_unicode_names_them() {
        assert_eq!(describe('\u{2028}'), "U+2028 LINE SEPARATOR");
        assert_eq!(describe('\0'), "U+0000 NULL");
        assert_eq!(describe('\u{85}'), "U+0085 NEXT LINE");
        assert_eq!(describe('\u{202e}'), "U+202E RIGHT-TO-LEFT OVERRIDE");
        assert_eq!(describe('\u{e0041}'), "U+E0041");
    }

    #[test]
    fn the_file_scan_locates_every_character_and_lone_carriage_returns() {
        let found = scan_file("a: 1\r\nb: x\u{2028}y\u{0}\nc: 2\rd: 3\n");
        let at: Vec<(usize, usize, char)> = found
            .iter()
            .map(|f| (f.span.line, f.span.column, f.c))
            .collect();
        assert_eq!(at, vec![(2, 5, '\u{2028}'), (2, 7, '\0'), (3, 5, '\r')]);
    }

    #[test]
    fn escaped_characters_in_values_and_keys_are_found_with_their_path() {
        let tree =
            node::parse("a:\n  b: \"x\\u2028y\"\n  \"k\\0\": [ok, \"\\x85\"]\n").expect("yaml");
        let found = scan_values(&tree);
        let got: Vec<(&str, char)> = found.iter().map(|f| (f.path.as_str(), f.c)).collect();
        assert_eq!(
            got,
            vec![
                ("a.b", '\u{2028}'),
                ("a.k\\u{0}", '\0'),
                ("a.k\\u{0}[1]", '\u{85}')
            ]
        );
    }
}
