//! Commit-message trailers read with git's own rules ([`parse`]), the one place tether reads
//! `Tether-*` trailers back from ([`block`] flags conflicting ones), and [`body_line`], which
//! turns untrusted text into one body line that can never read as a trailer or a subject.
//!
//! The rules are `git interpret-trailers --parse`'s (trailer.c): the message ends at a `---`
//! divider (a line of `---` alone or followed by white space); trailing blank and `#` comment lines are ignored; the first paragraph is the
//! subject and never trailers; the trailer block is the last paragraph when every line in it
//! is a `Token: value` line (or a continuation line, starting with white space, of one), or when
//! it holds a `Signed-off-by: ` or `(cherry picked from commit ` line and at least a quarter of
//! its lines are trailers. A token is ASCII letters, digits and `-`, optionally followed by
//! white space before the `:`. A test checks this against the real `git` over many messages.

use std::collections::BTreeMap;

/// The prefixes git itself writes, which let a block with other lines count as trailers.
const GIT_GENERATED: [&str; 2] = ["Signed-off-by: ", "(cherry picked from commit "];

/// The trailers of `message` as git reads them: `(token, value)` in order, continuation lines
/// unfolded into their value with one space, both sides trimmed. Empty when the message has no
/// trailer block.
pub fn parse(message: &str) -> Vec<(String, String)> {
    let lines = log_lines(message);
    let Some(start) = block_start(&lines) else {
        return Vec::new();
    };
    // git joins a continuation line to the trailer before it, then unfolds the joined value.
    let mut raw: Vec<(String, bool)> = Vec::new();
    for line in &lines[start..] {
        if starts_with_space(line)
            && let Some((last, true)) = raw.last_mut()
        {
            last.push('\n');
            last.push_str(line);
            continue;
        }
        let trailer = !line.starts_with('#') && separator(line).is_some();
        raw.push(((*line).to_owned(), trailer));
    }
    raw.into_iter()
        .filter(|(_, trailer)| *trailer)
        .filter_map(|(line, _)| {
            let at = separator(&line)?;
            let token = trim(&line[..at]).to_owned();
            Some((token, unfold(trim(&line[at + 1..]))))
        })
        .collect()
}

/// git's `unfold_value`: each line break and the white space after it become one space.
fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            while chars.next_if(|c| is_space(*c)).is_some() {}
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    trim(&out).to_owned()
}

fn trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// A message's trailers as tether reads them: each token's values, and the tokens given more
/// than one different value (a conflict: such a message is not trusted for that token).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Block {
    values: BTreeMap<String, Vec<String>>,
}

impl Block {
    /// The one value of `token`, or `None` when it is missing or conflicts.
    pub fn get(&self, token: &str) -> Option<&str> {
        let values = self.values.get(token)?;
        let first = values.first()?;
        values.iter().all(|v| v == first).then_some(first.as_str())
    }

    /// Every value of `token`, in order.
    pub fn all(&self, token: &str) -> &[String] {
        self.values.get(token).map_or(&[], Vec::as_slice)
    }

    /// The tokens with more than one different value.
    pub fn conflicts(&self) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(_, v)| v.iter().any(|x| x != &v[0]))
            .map(|(k, _)| k.as_str())
            .collect()
    }
}

/// The trailer block of `message` ([`parse`]), by token.
pub fn block(message: &str) -> Block {
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (token, value) in parse(message) {
        values.entry(token).or_default().push(value);
    }
    Block { values }
}

/// Untrusted text (a VM's error, a reason quoting input) as one body line: control characters,
/// line breaks included, written as `\n`, `\t` or `\u{..}`, bidirectional and invisible
/// characters ([`tether_schema::text::forbidden`]) as `\u{..}`, and the line indented by two spaces, so it can neither start a paragraph, nor be a
/// trailer (a token never starts with a space) nor a subject.
pub fn body_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push_str("  ");
    out.push_str(&escape(text));
    out
}

/// `text` on one printable line: control characters and bidirectional controls escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || tether_schema::text::forbidden(c).is_some() => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// The message's lines up to a `---` divider, without its trailing blank and comment lines.
fn log_lines(message: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = Vec::new();
    for line in message.split_inclusive('\n') {
        if line.starts_with("---") && line[3..].chars().next().is_none_or(is_space) {
            break;
        }
        lines.push(line.strip_suffix('\n').unwrap_or(line));
    }
    while lines
        .last()
        .is_some_and(|l| l.starts_with('#') || l.is_empty())
    {
        lines.pop();
    }
    lines
}

/// Where the trailer block starts in `lines`, if it has one (git's `find_trailer_block_start`).
fn block_start(lines: &[&str]) -> Option<usize> {
    let title_end = lines
        .iter()
        .position(|l| !l.starts_with('#') && is_blank(l))
        .unwrap_or(lines.len());
    let (mut trailers, mut others, mut continuations) = (0usize, 0usize, 0usize);
    let (mut recognized, mut only_spaces) = (false, true);
    for i in (title_end..lines.len()).rev() {
        let line = lines[i];
        if line.starts_with('#') {
            others += continuations;
            continuations = 0;
            continue;
        }
        if is_blank(line) {
            if only_spaces {
                continue;
            }
            others += continuations;
            let found = (recognized && trailers * 3 >= others) || (trailers > 0 && others == 0);
            return found.then_some(i + 1);
        }
        only_spaces = false;
        if GIT_GENERATED.iter().any(|p| line.starts_with(p)) {
            trailers += 1;
            continuations = 0;
            recognized = true;
        } else if separator(line).is_some() {
            trailers += 1;
            continuations = 0;
        } else if starts_with_space(line) {
            continuations += 1;
        } else {
            others += 1 + continuations;
            continuations = 0;
        }
    }
    None
}

/// The position of the `:` after a token (git's `find_separator` with the default `:`).
fn separator(line: &str) -> Option<usize> {
    let mut spaced = false;
    for (i, c) in line.char_indices() {
        if c == ':' {
            return (i >= 1).then_some(i);
        }
        if !spaced && (c.is_ascii_alphanumeric() || c == '-') {
            continue;
        }
        if i != 0 && (c == ' ' || c == '\t') {
            spaced = true;
            continue;
        }
        return None;
    }
    None
}

/// git's `isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

fn starts_with_space(line: &str) -> bool {
    line.chars().next().is_some_and(is_space)
}

fn is_blank(line: &str) -> bool {
    line.chars().all(is_space)
}

#[cfg(test)]
mod tests;
