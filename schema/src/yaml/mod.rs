//! A small, strict YAML front end: a positioned tree ([`node`]) and a serde deserializer over it
//! ([`de`]) that reports every unknown field at once.
//!
//! Why not a general YAML library's serde support: see `docs/decisions/001-yaml-parser.md`.

pub mod de;
pub mod node;
