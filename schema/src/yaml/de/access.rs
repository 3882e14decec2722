//! The serde access types of [`super::NodeDeserializer`]: sequences, mappings, and the three
//! fields of a `Spanned<T>`.

use super::{Error, NodeDeserializer, join};
use crate::diagnostic::Code;
use crate::spanned;
use crate::yaml::node::{Node, NodeKind};
use serde::de::value::UsizeDeserializer;
use serde::de::{DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess};

/// A sequence's items, each deserialized with its index in the path.
pub(super) struct Seq<'p, 'a, I> {
    pub(super) parent: &'p NodeDeserializer<'a>,
    pub(super) items: I,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Node)>> SeqAccess<'de> for Seq<'_, 'a, I> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => {
                let path = format!("{}[{i}]", self.parent.path);
                seed.deserialize(self.parent.child(node, path)).map(Some)
            }
        }
    }
}

/// A mapping's entries, each key and value deserialized with the key in the path.
pub(super) struct Map<'p, 'a, I> {
    pub(super) parent: &'p NodeDeserializer<'a>,
    pub(super) entries: I,
    pub(super) value: Option<(&'a Node, String)>,
}

impl<'de, 'a, I> MapAccess<'de> for Map<'_, 'a, I>
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
        let path = join(&self.parent.path, &key.text);
        let key_node = Node {
            span: key.span,
            kind: NodeKind::Scalar {
                text: key.text.clone(),
                plain: false,
            },
        };
        let k = seed.deserialize(NodeDeserializer {
            node: &key_node,
            path: path.clone(),
            unknown: self.parent.unknown,
        })?;
        self.value = Some((value, path));
        Ok(Some(k))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (node, path) = self
            .value
            .take()
            .ok_or_else(|| Error::new(Code::InvalidValue, "value requested before key"))?;
        seed.deserialize(self.parent.child(node, path))
    }
}

/// A value read as `Spanned<T>`: its line, its column, then the value itself.
pub(super) struct SpannedAccess<'a> {
    pub(super) inner: NodeDeserializer<'a>,
    pub(super) step: usize,
}

impl<'de> MapAccess<'de> for SpannedAccess<'_> {
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
                path: self.inner.path.clone(),
                unknown: self.inner.unknown,
            }),
        }
    }
}
