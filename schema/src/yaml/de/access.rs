//! The serde access types of [`super::NodeDeserializer`]: sequences, mappings, and the three
//! fields of a `Spanned<T>`.

use super::{Error, NodeDeserializer, Path};
use crate::diagnostic::Code;
use crate::spanned;
use crate::yaml::node::{Node, NodeKind};
use serde::de::value::UsizeDeserializer;
use serde::de::{DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess};

/// A sequence's items, each deserialized with its index in the path.
pub(super) struct Seq<'p, 'a, 'q, I> {
    pub(super) parent: &'p NodeDeserializer<'a, 'q>,
    pub(super) items: I,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Node)>> SeqAccess<'de> for Seq<'_, 'a, '_, I> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => seed
                .deserialize(NodeDeserializer {
                    node,
                    path: Path::Index(&self.parent.path, i),
                    unknown: self.parent.unknown,
                })
                .map(Some),
        }
    }
}

/// A mapping's entries, each key and value deserialized with the key in the path.
pub(super) struct Map<'p, 'a, 'q, I> {
    pub(super) parent: &'p NodeDeserializer<'a, 'q>,
    pub(super) entries: I,
    /// The value of the key just read, and that key.
    pub(super) value: Option<(&'a Node, &'a str)>,
}

impl<'de, 'a, I> MapAccess<'de> for Map<'_, 'a, '_, I>
where
    I: Iterator<Item = &'a (crate::yaml::node::Key, Node)>,
{
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let key_node = Node {
            span: key.span,
            kind: NodeKind::Scalar {
                text: key.text.clone(),
                plain: false,
            },
        };
        let k = seed.deserialize(NodeDeserializer {
            node: &key_node,
            path: Path::Field(&self.parent.path, &key.text),
            unknown: self.parent.unknown,
        })?;
        self.value = Some((value, &key.text));
        Ok(Some(k))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (node, key) = self
            .value
            .take()
            .ok_or_else(|| Error::new(Code::InvalidValue, "value requested before key"))?;
        seed.deserialize(NodeDeserializer {
            node,
            path: Path::Field(&self.parent.path, key),
            unknown: self.parent.unknown,
        })
    }
}

/// The three fields of a `Spanned<T>`: line, column and the value.
pub(super) struct SpannedAccess<'a, 'p> {
    pub(super) inner: NodeDeserializer<'a, 'p>,
    pub(super) step: usize,
}

impl<'de> MapAccess<'de> for SpannedAccess<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match spanned::FIELDS.get(self.step) {
            Some(name) => seed.deserialize(name.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let step = self.step;
        self.step += 1;
        let span = self.inner.node.span;
        match step {
            0 => seed.deserialize(UsizeDeserializer::<Error>::new(span.line)),
            1 => seed.deserialize(UsizeDeserializer::<Error>::new(span.column)),
            _ => seed.deserialize(NodeDeserializer {
                node: self.inner.node,
                path: self.inner.path,
                unknown: self.inner.unknown,
            }),
        }
    }
}
