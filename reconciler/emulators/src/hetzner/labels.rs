//! Label keys and values as Hetzner accepts them (api-facts §1.5): pure checks used by every
//! endpoint that takes labels and by the label selector parser.

use std::collections::BTreeMap;

/// Longest key name and longest value.
const MAX_NAME: usize = 63;
/// Longest key prefix (a DNS subdomain).
const MAX_PREFIX: usize = 253;
/// The prefix only Hetzner may set.
const RESERVED_PREFIX: &str = "hetzner.cloud";

fn inner_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Non-empty, at most `max` bytes, alphanumeric at both ends, `-_.` allowed inside.
fn is_word(text: &str, max: usize) -> bool {
    let (Some(first), Some(last)) = (text.chars().next(), text.chars().last()) else {
        return false;
    };
    text.len() <= max
        && first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && text.chars().all(inner_ok)
}

/// Checks a label key: `[prefix/]name`.
///
/// # Errors
/// Why the key is not acceptable.
pub fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if !is_word(name, MAX_NAME) {
        return Err(format!(
            "label key '{key}': the name must be 1-63 characters, alphanumeric at both ends, with '-', '_' or '.' inside"
        ));
    }
    if let Some(prefix) = prefix {
        let labels_ok = prefix.split('.').all(|l| is_word(l, MAX_NAME));
        if prefix.len() > MAX_PREFIX || !labels_ok {
            return Err(format!(
                "label key '{key}': the prefix must be a DNS subdomain of at most 253 characters"
            ));
        }
        if prefix == RESERVED_PREFIX {
            return Err(format!(
                "label key '{key}': the prefix 'hetzner.cloud/' is reserved"
            ));
        }
    }
    Ok(())
}

/// Checks a label value: empty, or 1-63 characters alphanumeric at both ends.
///
/// # Errors
/// Why the value is not acceptable.
pub fn check_value(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || is_word(value, MAX_NAME) {
        Ok(())
    } else {
        Err(format!(
            "label value '{value}' of key '{key}': must be empty or 1-63 characters, alphanumeric at both ends, with '-', '_' or '.' inside"
        ))
    }
}

/// Every problem with a label set.
pub fn problems(labels: &BTreeMap<String, String>) -> Vec<String> {
    labels
        .iter()
        .flat_map(|(k, v)| [check_key(k).err(), check_value(k, v).err()])
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_prefixed_keys_are_accepted() {
        for key in ["env", "a", "tether.dev/owner", "k8s.io/app-name_1.x", "A9"] {
            assert_eq!(check_key(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn malformed_keys_are_rejected() {
        let long = "a".repeat(64);
        for key in [
            "",
            "-env",
            "env-",
            "e nv",
            "a/",
            "/a",
            "bad_prefix_/a",
            &long,
            "ä",
        ] {
            assert!(check_key(key).is_err(), "{key}");
        }
    }

    #[test]
    fn the_hetzner_prefix_is_reserved() {
        assert!(
            check_key("hetzner.cloud/managed")
                .expect_err("reserved")
                .contains("reserved")
        );
    }

    #[test]
    fn values_may_be_empty_but_not_malformed() {
        assert_eq!(check_value("k", ""), Ok(()));
        assert_eq!(check_value("k", "v1.2_3-x"), Ok(()));
        assert!(check_value("k", "-v").is_err());
        assert!(check_value("k", "v w").is_err());
        assert!(check_value("k", &"v".repeat(64)).is_err());
    }

    #[test]
    fn problems_reports_every_bad_label() {
        let labels = BTreeMap::from([
            ("ok".to_owned(), "fine".to_owned()),
            ("bad key".to_owned(), "-bad".to_owned()),
        ]);
        assert_eq!(problems(&labels).len(), 2);
    }
}
