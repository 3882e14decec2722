//! JSON Schemas of the Agent and Fleet documents, for editors (yaml-language-server).

use crate::raw::{RawAgent, RawFleet};
use serde_json::{Value, json};

/// The JSON Schema of an Agent document.
pub fn agent() -> Value {
    serde_json::to_value(schemars::schema_for!(RawAgent)).unwrap_or(Value::Null)
}

/// The JSON Schema of the Fleet document.
pub fn fleet() -> Value {
    serde_json::to_value(schemars::schema_for!(RawFleet)).unwrap_or(Value::Null)
}

/// Both schemas in one document, keyed by kind.
pub fn all() -> Value {
    json!({ "Agent": agent(), "Fleet": fleet() })
}
