//! The positioned YAML tree: built from `yaml-rust2` parser events, with the limits that keep
//! hostile input harmless (no aliases, no explicit tags, bounded depth and node count, one
//! document, unique keys).

use crate::diagnostic::{Code, Span};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest nesting of mappings and sequences accepted in a spec file.
pub const MAX_DEPTH: usize = 32;
/// Most nodes (scalars, mappings, sequences) accepted in one spec file.
pub const MAX_NODES: usize = 20_000;

/// A YAML value with the position where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Where the value starts.
    pub span: Span,
    /// The value.
    pub kind: NodeKind,
}

/// The shapes a YAML value can take in a spec file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A scalar; `plain` is false for quoted and block scalars, which are always strings.
    Scalar {
        /// The scalar's text.
        text: String,
        /// Whether the scalar was written without quotes.
        plain: bool,
    },
    /// A sequence.
    Sequence(Vec<Node>),
    /// A mapping with string keys, in document order.
    Mapping(Vec<(Key, Node)>),
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The key's text.
    pub text: String,
    /// Where the key starts.
    pub span: Span,
}

impl Node {
    /// Whether this is a plain `null`, `~` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A short description of the value's shape, for error messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null".to_owned(),
            NodeKind::Scalar { text, .. } => format!("`{}`", truncate(text, 40)),
            NodeKind::Sequence(_) => "a list".to_owned(),
            NodeKind::Mapping(_) => "a mapping".to_owned(),
        }
    }

    /// The value under `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Mapping(entries) => {
                entries.iter().find(|(k, _)| k.text == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Why a document could not be turned into a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeError {
    /// What kind of problem.
    pub code: Code,
    /// Where.
    pub span: Span,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

impl TreeError {
    fn new(code: Code, span: Span, message: impl Into<String>, hint: Option<&str>) -> Self {
        TreeError {
            code,
            span,
            message: message.into(),
            hint: hint.map(str::to_owned),
        }
    }
}

fn span(mark: &Marker) -> Span {
    Span {
        line: mark.line().max(1),
        column: mark.col() + 1,
    }
}

enum Frame {
    Sequence(Span, Vec<Node>),
    Mapping(Span, Vec<(Key, Node)>, Option<Key>),
}

/// Parses `text` as exactly one YAML document.
///
/// # Errors
/// Returns the first problem found: a syntax error, an empty stream, a second document, an
/// alias, an explicit tag, nesting deeper than [`MAX_DEPTH`], more than [`MAX_NODES`] nodes, a
/// non-scalar or duplicate mapping key.
pub fn parse(text: &str) -> Result<Node, TreeError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut nodes = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            TreeError::new(
                Code::Syntax,
                span(e.marker()),
                format!("YAML syntax error: {}", e.info()),
                Some("check the indentation and quoting around this position"),
            )
        })?;
        let at = span(&mark);
        let node = match event {
            Event::StreamEnd => {
                reject_early_end(text, &mark)?;
                break;
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => continue,
            Event::DocumentStart => {
                if root.is_some() {
                    return Err(TreeError::new(
                        Code::MultipleDocuments,
                        at,
                        "a second YAML document in one file",
                        Some("put each agent in its own file; remove the `---` separator"),
                    ));
                }
                continue;
            }
            Event::Alias(_) => {
                return Err(TreeError::new(
                    Code::UnsupportedYaml,
                    at,
                    "YAML aliases (`*name`) are not supported in fleet specs",
                    Some("write the value out in full"),
                ));
            }
            Event::Scalar(text, style, _, tag) => {
                reject_tag(tag.is_some(), at)?;
                Node {
                    span: at,
                    kind: NodeKind::Scalar {
                        text,
                        plain: style == TScalarStyle::Plain,
                    },
                }
            }
            Event::SequenceStart(_, ref tag) | Event::MappingStart(_, ref tag) => {
                reject_tag(tag.is_some(), at)?;
                if stack.len() >= MAX_DEPTH {
                    return Err(TreeError::new(
                        Code::UnsupportedYaml,
                        at,
                        format!("nesting deeper than {MAX_DEPTH} levels"),
                        Some("fleet specs are shallow; check for a runaway structure"),
                    ));
                }
                count(&mut nodes, at)?;
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Sequence(at, Vec::new())
                } else {
                    Frame::Mapping(at, Vec::new(), None)
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Sequence(s, items)) => Node {
                    span: items.first().map_or(s, |first| first.span.min(s)),
                    kind: NodeKind::Sequence(items),
                },
                _ => unreachable_structure(at)?,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Mapping(s, entries, _)) => Node {
                    span: entries.first().map_or(s, |(key, _)| key.span.min(s)),
                    kind: NodeKind::Mapping(entries),
                },
                _ => unreachable_structure(at)?,
            },
        };
        count(&mut nodes, at)?;
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Sequence(_, items)) => items.push(node),
            Some(Frame::Mapping(_, entries, pending)) => match pending.take() {
                Some(key) => entries.push((key, node)),
                None => *pending = Some(key_of(node, entries)?),
            },
        }
    }
    root.ok_or_else(|| {
        TreeError::new(
            Code::Empty,
            Span::START,
            "the file holds no YAML document",
            Some("write a spec here or delete the file"),
        )
    })
}

/// The scanner ends the stream at a NUL as if it were the end of input; refuse any stream
/// that ends before the text does, so no byte is ever silently ignored.
fn reject_early_end(text: &str, end: &Marker) -> Result<(), TreeError> {
    if end.index() >= text.chars().count() {
        return Ok(());
    }
    Err(TreeError::new(
        Code::Syntax,
        span(end),
        "the YAML parser stopped here, before the end of the file",
        Some(
            "remove what follows this position or the character that ends the document here (such as a NUL byte)",
        ),
    ))
}

fn count(nodes: &mut usize, at: Span) -> Result<(), TreeError> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(TreeError::new(
            Code::UnsupportedYaml,
            at,
            format!("more than {MAX_NODES} YAML values in one file"),
            Some("fleet specs are small; split or shrink this file"),
        ));
    }
    Ok(())
}

fn reject_tag(tagged: bool, at: Span) -> Result<(), TreeError> {
    if tagged {
        return Err(TreeError::new(
            Code::UnsupportedYaml,
            at,
            "explicit YAML tags (`!tag`) are not supported in fleet specs",
            Some("remove the tag; values are typed by the field they fill"),
        ));
    }
    Ok(())
}

fn unreachable_structure(at: Span) -> Result<Node, TreeError> {
    Err(TreeError::new(
        Code::Syntax,
        at,
        "unbalanced YAML structure",
        None,
    ))
}

fn key_of(node: Node, entries: &[(Key, Node)]) -> Result<Key, TreeError> {
    let NodeKind::Scalar { text, .. } = node.kind else {
        return Err(TreeError::new(
            Code::UnsupportedYaml,
            node.span,
            "mapping keys must be plain strings",
            Some("use a simple `name: value` key"),
        ));
    };
    if let Some((first, _)) = entries.iter().find(|(k, _)| k.text == text) {
        return Err(TreeError::new(
            Code::DuplicateKey,
            node.span,
            format!(
                "duplicate key `{text}` (first at line {}, column {})",
                first.span.line, first.span.column
            ),
            Some("keep one of the two entries"),
        ));
    }
    Ok(Key {
        text,
        span: node.span,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_builds_positioned_mapping() {
        let node = parse("a: 1\nb:\n  - x\n").expect("valid yaml");
        let b = node.get("b").expect("b present");
        assert_eq!(b.span, Span { line: 3, column: 3 });
        let NodeKind::Sequence(items) = &b.kind else {
            panic!("b is a sequence")
        };
        assert_eq!(items[0].span, Span { line: 3, column: 5 });
    }

    #[test]
    fn parse_rejects_aliases_duplicates_tags_and_second_documents() {
        let cases = [
            ("a: &x 1\nb: *x\n", Code::UnsupportedYaml),
            ("a: 1\na: 2\n", Code::DuplicateKey),
            ("a: !!binary aGk=\n", Code::UnsupportedYaml),
            ("a: 1\n---\nb: 2\n", Code::MultipleDocuments),
            ("", Code::Empty),
            ("# only a comment\n", Code::Empty),
            ("a: [1, 2\n", Code::Syntax),
            ("? [a]\n: b\n", Code::UnsupportedYaml),
            ("a: 1\n\0b: 2\n", Code::Syntax),
        ];
        for (text, code) in cases {
            let err = parse(text).expect_err(text);
            assert_eq!(err.code, code, "{text:?}: {err:?}");
        }
    }

    #[test]
    fn every_ordinary_file_end_is_reached() {
        for text in [
            "a: 1",
            "a: 1   ",
            "a: 1\n# trailing comment",
            "a: 1\n\n\n",
            "a: 1\r\n",
            "---\na: 1\n...\n",
            "a: 1\n...\n# after the end marker\n",
            "a: |\n  text\n\n",
            "a: [1,\n  2]\t\n",
        ] {
            assert!(parse(text).is_ok(), "{text:?}: {:?}", parse(text));
        }
    }

    #[test]
    fn parse_rejects_deep_nesting_without_overflowing() {
        let deeper_than_ours = "[".repeat(MAX_DEPTH + 8);
        assert_eq!(
            parse(&deeper_than_ours).expect_err("too deep").code,
            Code::UnsupportedYaml
        );
        assert!(parse(&"[".repeat(100_000)).is_err());
        assert!(parse(&"{a: ".repeat(100_000)).is_err());
    }
}
