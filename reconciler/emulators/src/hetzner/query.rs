//! Query strings with repeatable parameters (`status=a&status=b`, `sort=…`, `id=…`), which
//! axum's `Query` cannot hold.

use super::errors::ApiError;

/// The decoded query parameters of one request, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes a raw query string (`None` when the URL had none).
    ///
    /// # Errors
    /// `invalid_input` when the query string cannot be decoded.
    pub fn parse(raw: Option<&str>) -> Result<Params, ApiError> {
        let pairs = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::invalid_field("query", e.to_string()))?;
        Ok(Params(pairs))
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The last value of `key`.
    pub fn one(&self, key: &str) -> Option<&str> {
        self.all(key).last().copied()
    }

    /// Every pair except those whose key is in `skip`, in order.
    pub fn without(&self, skip: &[&str]) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// The values of `key`, each of which must be one of `allowed`.
    ///
    /// # Errors
    /// `invalid_input` naming `key` for a value not in `allowed`.
    pub fn enum_values(&self, key: &str, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
        self.all(key)
            .into_iter()
            .map(|v| {
                if allowed.contains(&v) {
                    Ok(v.to_owned())
                } else {
                    Err(ApiError::invalid_field(
                        key,
                        format!("'{v}' is not one of {}", allowed.join(", ")),
                    ))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_keep_every_value() {
        let p = Params::parse(Some("status=running&status=off&name=a%20b")).expect("parse");
        assert_eq!(p.all("status"), ["running", "off"]);
        assert_eq!(p.one("name"), Some("a b"));
        assert_eq!(p.one("missing"), None);
        assert_eq!(p.without(&["status"]), [("name".into(), "a b".into())]);
    }

    #[test]
    fn enum_values_reject_unknown_values() {
        let p = Params::parse(Some("status=running&status=weird")).expect("parse");
        let e = p
            .enum_values("status", &["running", "off"])
            .expect_err("weird is not a status");
        assert_eq!(e.code, "invalid_input");
    }
}
