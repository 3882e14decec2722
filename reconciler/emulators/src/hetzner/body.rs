//! Request bodies: bytes → JSON object (`json_error` when it is not JSON) → typed fields, with
//! every field problem collected into one `invalid_input` error.

use super::errors::{ApiError, FieldError};
use super::labels;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A JSON object being read field by field.
#[derive(Debug)]
pub struct Fields {
    object: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields {
    /// Parses a body that must be a JSON object.
    ///
    /// # Errors
    /// `json_error` when it is not JSON, `invalid_input` when it is not an object.
    pub fn parse(bytes: &[u8]) -> Result<Fields, ApiError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ApiError::json_error(&e.to_string()))?;
        match value {
            Value::Object(object) => Ok(Fields {
                object,
                errors: Vec::new(),
            }),
            _ => Err(ApiError::invalid_field("body", "must be a JSON object")),
        }
    }

    fn value(&self, name: &str) -> Option<&Value> {
        self.object.get(name).filter(|v| !v.is_null())
    }

    /// Records a problem with `name`.
    pub fn reject(&mut self, name: &str, message: impl Into<String>) {
        let message = message.into();
        match self.errors.iter_mut().find(|e| e.name == name) {
            Some(e) => e.messages.push(message),
            None => self.errors.push(FieldError::new(name, message)),
        }
    }

    fn missing(&mut self, name: &str, required: bool) {
        if required {
            self.reject(name, "is required");
        }
    }

    /// A string field.
    pub fn string(&mut self, name: &str, required: bool) -> Option<String> {
        match self.value(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.reject(name, "must be a string");
                None
            }
            None => {
                self.missing(name, required);
                None
            }
        }
    }

    /// A boolean field.
    pub fn boolean(&mut self, name: &str, required: bool) -> Option<bool> {
        match self.value(name) {
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.reject(name, "must be a boolean");
                None
            }
            None => {
                self.missing(name, required);
                None
            }
        }
    }

    /// An id (number) or name (string), returned as text.
    pub fn id_or_name(&mut self, name: &str, required: bool) -> Option<String> {
        match self.value(name).cloned() {
            Some(v) => self.reference(name, &v),
            None => {
                self.missing(name, required);
                None
            }
        }
    }

    fn reference(&mut self, name: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) if n.as_u64().is_some() => Some(n.to_string()),
            _ => {
                self.reject(name, "must be an ID or a name");
                None
            }
        }
    }

    /// A list of ids or names (absent = empty).
    pub fn id_or_name_list(&mut self, name: &str) -> Vec<String> {
        match self.value(name).cloned() {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| self.reference(name, v))
                .collect(),
            Some(_) => {
                self.reject(name, "must be a list");
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// A label map, validated (absent = `None`).
    pub fn labels(&mut self, name: &str) -> Option<BTreeMap<String, String>> {
        let Some(Value::Object(map)) = self.value(name).cloned() else {
            if self.value(name).is_some() {
                self.reject(name, "must be an object of strings");
            }
            return None;
        };
        let mut labels = BTreeMap::new();
        for (k, v) in map {
            match v {
                Value::String(v) => {
                    labels.insert(k, v);
                }
                _ => self.reject(name, format!("label '{k}' must have a string value")),
            }
        }
        for problem in labels::problems(&labels) {
            self.reject(name, problem);
        }
        Some(labels)
    }

    /// Fields the emulator does not model (volumes, networks, …) must be absent or empty.
    pub fn unsupported(&mut self, name: &str) {
        let empty = match self.value(name) {
            None => true,
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        if !empty {
            self.reject(
                name,
                "refers to resources that do not exist in this project",
            );
        }
    }

    /// A nested object field, to read with its own `Fields` (absent = `None`).
    pub fn object(&mut self, name: &str) -> Option<Fields> {
        match self.value(name).cloned() {
            Some(Value::Object(object)) => Some(Fields {
                object,
                errors: Vec::new(),
            }),
            Some(_) => {
                self.reject(name, "must be an object");
                None
            }
            None => None,
        }
    }

    /// Takes over a nested object's problems, prefixing their names with `name.`.
    pub fn absorb(&mut self, name: &str, nested: Fields) {
        for e in nested.errors {
            for m in e.messages {
                self.reject(&format!("{name}.{}", e.name), m);
            }
        }
    }

    /// Ends reading.
    ///
    /// # Errors
    /// `invalid_input` listing every problem recorded.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_input(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_json_is_a_json_error() {
        let e = Fields::parse(b"{not json").expect_err("not json");
        assert_eq!(e.code, "json_error");
    }

    #[test]
    fn every_field_problem_is_reported_at_once() {
        let mut f =
            Fields::parse(br#"{"name": 5, "labels": {"-bad": "x"}, "image": 7}"#).expect("object");
        assert_eq!(f.string("name", true), None);
        assert_eq!(f.string("server_type", true), None);
        assert_eq!(f.id_or_name("image", true), Some("7".to_owned()));
        f.labels("labels");
        let e = f.finish().expect_err("three problems");
        let names: Vec<&str> = e.details["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .filter_map(|f| f["name"].as_str())
            .collect();
        assert_eq!(names, ["name", "server_type", "labels"]);
    }
}
