//! A serde [`Deserializer`] over the positioned tree.
//!
//! Differences from a general YAML deserializer, all deliberate:
//! - scalars are typed by the field they fill, never by their looks: `power: on` is the string
//!   `on`, `version: 1.10` is the string `1.10` (no "Norway problem");
//! - an unknown field does not stop deserialisation: every unknown field of every mapping is
//!   recorded with a "did you mean" suggestion, and the known fields are still read;
//! - every error carries the position and dotted field path of the value that caused it.

mod access;

use crate::diagnostic::{Code, Span};
use crate::spanned;
use crate::yaml::node::{Node, NodeKind};
use access::{Map, Seq, SpannedAccess};
use serde::de::value::StrDeserializer;
use serde::de::{self, Deserializer, Visitor};
use std::cell::RefCell;
use std::fmt;

/// A field the target type does not define.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// Dotted path of the unknown key.
    pub path: String,
    /// Where the key is.
    pub span: Span,
    /// The key as written.
    pub key: String,
    /// The closest known field name, when one is close.
    pub suggestion: Option<&'static str>,
    /// The fields the mapping may hold.
    pub expected: &'static [&'static str],
}

/// A deserialisation failure with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What kind of problem.
    pub code: Code,
    /// Where, once known.
    pub span: Option<Span>,
    /// Dotted path, once known.
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
    missing_field: Option<&'static str>,
}

impl Error {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            span: None,
            path: None,
            message: message.into(),
            hint: None,
            missing_field: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        let mut e = Error::new(Code::InvalidValue, msg.to_string());
        e.hint = Some("docs/spec.md describes every field".to_owned());
        e
    }

    fn missing_field(field: &'static str) -> Self {
        let mut e = Error::new(
            Code::MissingField,
            format!("missing required field `{field}`"),
        );
        e.missing_field = Some(field);
        e.hint = Some(format!("add `{field}:` here; see docs/spec.md"));
        e
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Error::new(
            Code::InvalidValue,
            format!("`{variant}` is not one of {}", one_of(expected)),
        );
        e.hint = Some(match closest(variant, expected) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("use one of {}", one_of(expected)),
        });
        e
    }
}

fn one_of(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub fn closest(word: &str, candidates: &[&'static str]) -> Option<&'static str> {
    candidates
        .iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&word.to_lowercase(), &c.to_lowercase()),
                *c,
            )
        })
        .filter(|(d, c)| *d <= (c.len().max(3) / 3).max(1))
        .min()
        .map(|(_, c)| c)
}

/// Reads `T` from `node`, returning it with every unknown field found on the way.
///
/// # Errors
/// The first value that does not fit `T`; unknown fields found before it are still returned.
pub fn from_node<T: de::DeserializeOwned>(node: &Node) -> (Result<T, Error>, Vec<UnknownField>) {
    let unknown = RefCell::new(Vec::new());
    let result = T::deserialize(NodeDeserializer {
        node,
        path: Path::Root,
        unknown: &unknown,
    });
    let mut unknown = unknown.into_inner();
    unknown.sort_by_key(|u| u.span);
    (result, unknown)
}

/// The dotted path of a value, as a chain through its parents on the stack: spelt out only
/// for an error or an unknown field, never for the values that read fine.
#[derive(Clone, Copy)]
enum Path<'p> {
    /// The document.
    Root,
    /// A field of a mapping.
    Field(&'p Path<'p>, &'p str),
    /// An item of a list.
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Field(parent, field) => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(field);
            }
            Path::Index(parent, i) => {
                parent.write(out);
                out.push_str(&format!("[{i}]"));
            }
        }
    }
}

struct NodeDeserializer<'a, 'p> {
    node: &'a Node,
    path: Path<'p>,
    unknown: &'a RefCell<Vec<UnknownField>>,
}

impl<'a> NodeDeserializer<'a, '_> {
    fn locate<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|mut e| {
            if e.span.is_none() {
                e.span = Some(self.node.span);
                e.path = Some(match e.missing_field.take() {
                    Some(field) => Path::Field(&self.path, field).render(),
                    None => self.path.render(),
                });
            }
            e
        })
    }

    fn mismatch(&self, expected: &str) -> Error {
        let mut e = Error::new(
            Code::InvalidType,
            format!("expected {expected}, found {}", self.node.describe()),
        );
        e.span = Some(self.node.span);
        e.path = Some(self.path.render());
        e.hint = Some(format!(
            "write {expected} here; docs/spec.md describes every field"
        ));
        e
    }

    /// The text of a scalar; `plain_only` refuses quoted scalars (for numbers and booleans).
    fn scalar(&self, expected: &str, plain_only: bool) -> Result<&'a str, Error> {
        match &self.node.kind {
            NodeKind::Scalar { text, plain } if *plain || !plain_only => Ok(text),
            _ => Err(self.mismatch(expected)),
        }
    }

    fn parse_number<T: std::str::FromStr>(&self, expected: &str) -> Result<T, Error> {
        let text = self.scalar(expected, true)?;
        text.parse().map_err(|_| self.mismatch(expected))
    }
}

macro_rules! deserialize_number {
    ($($method:ident => $visit:ident : $ty:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let n: $ty = self.parse_number($what)?;
            let r = visitor.$visit(n);
            self.locate(r)
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDeserializer<'_, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.kind {
            NodeKind::Mapping(_) => return self.deserialize_map(visitor),
            NodeKind::Sequence(_) => return self.deserialize_seq(visitor),
            NodeKind::Scalar { .. } if self.node.is_null() => visitor.visit_unit(),
            NodeKind::Scalar { text, plain: true } => {
                if let Some(b) = parse_bool(text) {
                    visitor.visit_bool(b)
                } else if let Ok(i) = text.parse::<i64>() {
                    visitor.visit_i64(i)
                } else if let Ok(f) = text.parse::<f64>() {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(text)
                }
            }
            NodeKind::Scalar { text, plain: false } => visitor.visit_str(text),
        };
        self.locate(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let text = self.scalar("`true` or `false`", true)?;
        let b = parse_bool(text).ok_or_else(|| self.mismatch("`true` or `false`"))?;
        let r = visitor.visit_bool(b);
        self.locate(r)
    }

    deserialize_number! {
        deserialize_i8 => visit_i8: i8, "a whole number";
        deserialize_i16 => visit_i16: i16, "a whole number";
        deserialize_i32 => visit_i32: i32, "a whole number";
        deserialize_i64 => visit_i64: i64, "a whole number";
        deserialize_u8 => visit_u8: u8, "a whole number from 0 to 255";
        deserialize_u16 => visit_u16: u16, "a whole number from 0 to 65535";
        deserialize_u32 => visit_u32: u32, "a non-negative whole number";
        deserialize_u64 => visit_u64: u64, "a non-negative whole number";
        deserialize_f32 => visit_f32: f32, "a number";
        deserialize_f64 => visit_f64: f64, "a number";
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let text = self.scalar("a string", false)?;
        let r = visitor.visit_str(text);
        self.locate(r)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(self.mismatch("bytes (not supported in fleet specs)"))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            let r = visitor.visit_none();
            self.locate(r)
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if !self.node.is_null() {
            return Err(self.mismatch("null"));
        }
        let r = visitor.visit_unit();
        self.locate(r)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let NodeKind::Sequence(items) = &self.node.kind else {
            return Err(self.mismatch("a list"));
        };
        let r = visitor.visit_seq(Seq {
            parent: &self,
            items: items.iter().enumerate(),
        });
        self.locate(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let NodeKind::Mapping(entries) = &self.node.kind else {
            return Err(self.mismatch("a mapping"));
        };
        let r = visitor.visit_map(Map {
            parent: &self,
            entries: entries.iter().collect::<Vec<_>>().into_iter(),
            value: None,
        });
        self.locate(r)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == spanned::NAME {
            return visitor.visit_map(SpannedAccess {
                inner: self,
                step: 0,
            });
        }
        let NodeKind::Mapping(entries) = &self.node.kind else {
            return Err(self.mismatch("a mapping"));
        };
        let mut known = Vec::with_capacity(entries.len());
        for entry in entries {
            if fields.contains(&entry.0.text.as_str()) {
                known.push(entry);
            } else {
                self.unknown.borrow_mut().push(UnknownField {
                    path: Path::Field(&self.path, &entry.0.text).render(),
                    span: entry.0.span,
                    key: entry.0.text.clone(),
                    suggestion: closest(&entry.0.text, fields),
                    expected: fields,
                });
            }
        }
        let r = visitor.visit_map(Map {
            parent: &self,
            entries: known.into_iter(),
            value: None,
        });
        self.locate(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let text = self.scalar(&format!("one of {}", one_of(variants)), false)?;
        let r = visitor.visit_enum(StrDeserializer::<Error>::new(text));
        self.locate(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
