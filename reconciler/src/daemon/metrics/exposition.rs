//! A strict reader of the Prometheus text exposition format (version 0.0.4), for tests: it
//! checks every line's shape and reads the families back as values, so two expositions compare
//! equal whatever the order of their series or the spelling of their numbers (`1` or `1.0`).

use std::collections::BTreeMap;

/// One metric family as exposed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FamilyText {
    /// The `# HELP` text.
    pub help: String,
    /// The `# TYPE`: `counter`, `gauge`, `histogram`, …
    pub kind: String,
    /// Each sample's value by its sample name and label pairs (unescaped, in written order).
    pub samples: BTreeMap<(String, Vec<(String, String)>), f64>,
}

/// The families of `text` by name, in the order they appear; a malformed line is an error naming
/// its number.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, FamilyText)>, String> {
    let mut families: Vec<(String, FamilyText)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest
                .split_once(' ')
                .ok_or(format!("line {n}: HELP without text"))?;
            families.push((
                name.to_owned(),
                FamilyText {
                    help: help.to_owned(),
                    kind: String::new(),
                    samples: BTreeMap::new(),
                },
            ));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or(format!("line {n}: TYPE without type"))?;
            match families.last_mut() {
                Some((family, text)) if family == name && text.kind.is_empty() => {
                    text.kind = kind.to_owned();
                }
                _ => return Err(format!("line {n}: TYPE {name} not right after its HELP")),
            }
        } else {
            let (sample, labels, value) = sample(line).map_err(|e| format!("line {n}: {e}"))?;
            let Some((family, text)) = families.last_mut() else {
                return Err(format!("line {n}: sample before any HELP"));
            };
            if !sample.starts_with(family.as_str()) || text.kind.is_empty() {
                return Err(format!(
                    "line {n}: sample {sample} outside its family {family}"
                ));
            }
            if text.samples.insert((sample, labels), value).is_some() {
                return Err(format!("line {n}: the same series twice"));
            }
        }
    }
    Ok(families)
}

type Sample = (String, Vec<(String, String)>, f64);

fn sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .ok_or("a sample without a value")?;
    let (name, mut rest) = line.split_at(name_end);
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut key = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '}' if key.is_empty() => {
                    end = Some(i + 1);
                    break;
                }
                ',' if key.is_empty() => {}
                '=' => {
                    if chars.next().map(|(_, c)| c) != Some('"') {
                        return Err(format!("label {key} without a quoted value"));
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next().map(|(_, c)| c) {
                            Some('"') => break,
                            Some('\\') => match chars.next().map(|(_, c)| c) {
                                Some('n') => value.push('\n'),
                                Some(e @ ('\\' | '"')) => value.push(e),
                                other => return Err(format!("bad escape {other:?}")),
                            },
                            Some(c) => value.push(c),
                            None => return Err("unterminated label value".to_owned()),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c if c.is_ascii_alphanumeric() || c == '_' => key.push(c),
                c => return Err(format!("unexpected {c:?} in labels")),
            }
        }
        let end = end.ok_or("labels without a closing brace")?;
        rest = &inner[end..];
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .map_err(|_| format!("value {v:?} is not a number"))?,
    };
    Ok((name.to_owned(), labels, value))
}
