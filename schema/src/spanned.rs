//! [`Spanned<T>`]: a value together with where it was written, so validation can point at it.

use crate::diagnostic::Span;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// The struct name through which [`crate::yaml::de`] recognises a `Spanned` request.
pub(crate) const NAME: &str = "$tether::Spanned";
/// The three pseudo-fields a `Spanned` is deserialised from, in order.
pub(crate) const FIELDS: &[&str] = &["$line", "$column", "$value"];

/// A string value with its position.
pub type Text = Spanned<String>;

/// A value and the position of its first character in the source file.
///
/// Equality and ordering look at the value only.
#[derive(Debug, Clone, Copy)]
pub struct Spanned<T> {
    /// Where the value starts.
    pub span: Span,
    /// The value.
    pub value: T,
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<T: Eq> Eq for Spanned<T> {}
impl<T: PartialOrd> PartialOrd for Spanned<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}
impl<T: Ord> Ord for Spanned<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct(NAME, FIELDS, SpannedVisitor(PhantomData))
    }
}

struct SpannedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
    type Value = Spanned<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value with a source position")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        expect_key(&mut map, FIELDS[0])?;
        let line: usize = map.next_value()?;
        expect_key(&mut map, FIELDS[1])?;
        let column: usize = map.next_value()?;
        expect_key(&mut map, FIELDS[2])?;
        let value: T = map.next_value()?;
        Ok(Spanned {
            span: Span { line, column },
            value,
        })
    }
}

fn expect_key<'de, A: MapAccess<'de>>(map: &mut A, name: &str) -> Result<(), A::Error> {
    match map.next_key::<String>()? {
        Some(key) if key == name => Ok(()),
        _ => Err(de::Error::custom(
            "Spanned values can only be read by tether's YAML reader",
        )),
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}
