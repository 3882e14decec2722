//! `/etc/tether/agent.env`: one `NAME="value"` assignment per variable, in the double-quoted
//! form that both systemd's `EnvironmentFile=` and a POSIX shell read back verbatim.
//!
//! Inside the quotes `\`, `"`, `$` and `` ` `` are backslash-escaped and everything else
//! (newlines included) is kept as is; systemd and `sh` both turn these four escapes back into
//! the character and do no expansion. NUL, U+FEFF and Unicode noncharacters cannot appear in
//! a systemd environment file (nor NUL in any process environment); validation refuses them,
//! and should one reach here anyway it is written as U+FFFD REPLACEMENT CHARACTER.

/// The file for `vars`, in the order given; names are [`crate::names::EnvName`]s or tether's own.
pub fn render(vars: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (name, value) in vars {
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' | '"' | '$' | '`' => {
                    out.push('\\');
                    out.push(c);
                }
                c if unrepresentable(c) => out.push(char::REPLACEMENT_CHARACTER),
                c => out.push(c),
            }
        }
        out.push_str("\"\n");
    }
    out
}

/// Whether systemd refuses `c` in an environment file: NUL, U+FEFF and noncharacters.
pub fn unrepresentable(c: char) -> bool {
    let n = c as u32;
    c == '\0' || c == '\u{FEFF}' || (0xFDD0..=0xFDEF).contains(&n) || n & 0xFFFE == 0xFFFE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_with_the_four_special_characters_escaped() {
        assert_eq!(
            render(&[("A", "x"), ("B", "a\"b\\c$d`e\nf"), ("C", "\0")]),
            "A=\"x\"\nB=\"a\\\"b\\\\c\\$d\\`e\nf\"\nC=\"\u{FFFD}\"\n"
        );
    }
}
