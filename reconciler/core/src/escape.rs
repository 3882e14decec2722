//! One escaper per kind of output that untrusted text (a VM's report, a server name or label
//! from the inventory, a commit's author or subject, a reason built from them) can land in:
//! [`terminal`], [`markdown`] (GitHub comments), [`slack`] (mrkdwn) and [`html`]. Each keeps
//! the text readable and takes away what could change the output's structure: nothing escaped
//! here can start a line, a link, a mention, a tag, a table cell or reorder what is shown.
//!
//! Control, line-break, bidi and invisible characters (the ones a spec refuses,
//! [`tether_schema::text::forbidden`], plus tab, LF and CR) are shown as `\u{…}` in every
//! output, so a reader sees that they were there.

use std::fmt::Write as _;
use tether_schema::text::forbidden;

/// A zero-width space as an HTML entity: GitHub renders nothing, but a mention or an autolink
/// no longer matches across it.
const BREAK: &str = "&#8203;";

/// Whether `c` is shown as its code point rather than as itself.
fn hidden(c: char) -> bool {
    c.is_control() || forbidden(c).is_some()
}

/// Pushes `c` as `\u{…}`.
fn push_code(out: &mut String, c: char) {
    let _ = write!(out, "\\u{{{:x}}}", c as u32);
}

/// `text` for a terminal, on one line: C0 and C1 controls (ESC included), DEL, tab and line
/// breaks, U+2028/U+2029, bidi overrides and isolates and invisible characters become
/// `\u{…}`. The result holds no byte a terminal acts on.
pub fn terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if hidden(c) {
            push_code(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` for GitHub Markdown, inline: every character Markdown or GitHub's HTML reads as
/// structure backslash-escaped (`|` included, so a table cell stays one); `@` followed by an
/// invisible break (no mention); `://` and `www.` broken the same way (no autolink); line
/// breaks and the [`terminal`] characters shown as `\u{…}`.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '!'
            | '&' => {
                out.push('\\');
                out.push(c);
            }
            '@' => {
                out.push('@');
                out.push_str(BREAK);
            }
            ':' => {
                out.push(':');
                if chars.peek() == Some(&'/') {
                    out.push_str(BREAK);
                }
            }
            '.' => {
                let tail = out.get(out.len().saturating_sub(3)..).unwrap_or_default();
                if tail.eq_ignore_ascii_case("www") {
                    out.push_str(BREAK);
                }
                out.push('.');
            }
            c if hidden(c) => push_code(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// `text` for Slack mrkdwn, inline: `&`, `<` and `>` as entities (so no `<!channel>`, `<@U…>`
/// or `<url|label>`), line breaks and the [`terminal`] characters as `\u{…}`, so a quote
/// block (`>`) cannot be left.
pub fn slack(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if hidden(c) => push_code(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// `text` for HTML text and quoted attributes: `&`, `<`, `>`, `"` and `'` as entities, the
/// [`terminal`] characters as `\u{…}`.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if hidden(c) => push_code(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
