//! YAML scalars no value can escape: double-quoted, with `"` and `\` escaped and every
//! character outside printable ASCII written as `\xXX`, `\uXXXX` or `\UXXXXXXXX`. Both YAML 1.1
//! (cloud-init's PyYAML) and YAML 1.2 read these escapes, and the output holds no line break.
//!
//! yaml-rust2's emitter is not used: it writes strings holding U+0085, U+2028, U+2029, `\v` or
//! `\f` unquoted, which YAML 1.1 reads as line breaks.

use std::fmt::Write as _;

/// `value` as a double-quoted YAML scalar made of printable ASCII only.
pub fn scalar(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xFF => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// A one-line flow sequence of [`scalar`]s: `["a", "b"]`.
pub fn flow<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let items: Vec<String> = items.into_iter().map(|i| scalar(i.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_printable_ascii_with_every_other_character_escaped() {
        assert_eq!(scalar("plain"), "\"plain\"");
        assert_eq!(scalar("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(scalar("\0\n\u{85}é"), "\"\\x00\\x0A\\x85\\xE9\"");
        assert_eq!(scalar("x\u{2028}y"), "\"x\\u2028y\"");
        assert_eq!(scalar("😀"), "\"\\U0001F600\"");
        assert_eq!(flow(["a", "b c"]), "[\"a\", \"b c\"]");
    }
}
