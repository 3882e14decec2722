//! Label selectors (the `label_selector` query parameter): a pure parser and matcher for
//! `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, joined by commas (AND).
//! Like Kubernetes, `k!=v` and `k notin (..)` also match resources without `k`.

use super::labels::{check_key, check_value};
use std::collections::BTreeMap;

/// One condition of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `k=v` or `k==v`.
    Equals(String, String),
    /// `k!=v`.
    NotEquals(String, String),
    /// `k`.
    Exists(String),
    /// `!k`.
    NotExists(String),
    /// `k in (v1,v2)`.
    In(String, Vec<String>),
    /// `k notin (v1,v2)`.
    NotIn(String, Vec<String>),
}

/// A parsed selector: every requirement must hold. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(pub Vec<Requirement>);

impl Selector {
    /// Parses a selector.
    ///
    /// # Errors
    /// What is wrong with the first malformed term.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let terms = split_terms(text)?;
        let requirements = terms
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(parse_term)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Selector(requirements))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }
}

/// Splits on commas outside parentheses.
fn split_terms(text: &str) -> Result<Vec<&str>, String> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' if depth == 0 => depth = 1,
            '(' => return Err("nested parentheses".to_owned()),
            ')' if depth == 1 => depth = 0,
            ')' => return Err("unbalanced ')'".to_owned()),
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".to_owned());
    }
    terms.push(&text[start..]);
    Ok(terms)
}

fn parse_term(term: &str) -> Result<Requirement, String> {
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Requirement::NotExists(key.to_owned()));
    }
    if let Some(open) = term.find('(') {
        return parse_set(term, open);
    }
    for (op, negate) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = term.split_once(op) {
            let (key, value) = (key.trim(), value.trim());
            check_key(key)?;
            check_value(key, value)?;
            let (key, value) = (key.to_owned(), value.to_owned());
            return Ok(if negate {
                Requirement::NotEquals(key, value)
            } else {
                Requirement::Equals(key, value)
            });
        }
    }
    check_key(term)?;
    Ok(Requirement::Exists(term.to_owned()))
}

/// `key in (v1, v2)` or `key notin (v1, v2)`; `open` is the index of `(`.
fn parse_set(term: &str, open: usize) -> Result<Requirement, String> {
    let inner = term[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| format!("'{term}': expected ')' at the end"))?;
    let head: Vec<&str> = term[..open].split_whitespace().collect();
    let [key, op] = head.as_slice() else {
        return Err(format!(
            "'{term}': expected 'key in (..)' or 'key notin (..)'"
        ));
    };
    check_key(key)?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_owned()).collect();
    for v in &values {
        check_value(key, v)?;
    }
    match *op {
        "in" => Ok(Requirement::In((*key).to_owned(), values)),
        "notin" => Ok(Requirement::NotIn((*key).to_owned(), values)),
        other => Err(format!("'{term}': unknown operator '{other}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn matches(selector: &str, pairs: &[(&str, &str)]) -> bool {
        Selector::parse(selector)
            .expect("valid selector")
            .matches(&labels(pairs))
    }

    #[test]
    fn every_operator_parses() {
        let s = Selector::parse("a=1,b==2,c!=3,d,!e,f in (x, y),g notin (z)").expect("parse");
        assert_eq!(
            s.0,
            vec![
                Requirement::Equals("a".into(), "1".into()),
                Requirement::Equals("b".into(), "2".into()),
                Requirement::NotEquals("c".into(), "3".into()),
                Requirement::Exists("d".into()),
                Requirement::NotExists("e".into()),
                Requirement::In("f".into(), vec!["x".into(), "y".into()]),
                Requirement::NotIn("g".into(), vec!["z".into()]),
            ]
        );
    }

    #[test]
    fn equality_operators_match_values() {
        assert!(matches("env=prod", &[("env", "prod")]));
        assert!(matches("env==prod", &[("env", "prod")]));
        assert!(!matches("env=prod", &[("env", "dev")]));
        assert!(!matches("env=prod", &[]));
    }

    #[test]
    fn inequality_also_matches_a_missing_key() {
        assert!(matches("env!=prod", &[("env", "dev")]));
        assert!(matches("env!=prod", &[]));
        assert!(!matches("env!=prod", &[("env", "prod")]));
    }

    #[test]
    fn existence_operators_look_at_keys_only() {
        assert!(matches("env", &[("env", "")]));
        assert!(!matches("env", &[]));
        assert!(matches("!env", &[("other", "x")]));
        assert!(!matches("!env", &[("env", "x")]));
    }

    #[test]
    fn set_operators_match_membership() {
        assert!(matches("tier in (a,b)", &[("tier", "b")]));
        assert!(!matches("tier in (a,b)", &[("tier", "c")]));
        assert!(!matches("tier in (a,b)", &[]));
        assert!(matches("tier notin (a,b)", &[("tier", "c")]));
        assert!(matches("tier notin (a,b)", &[]));
        assert!(!matches("tier notin (a,b)", &[("tier", "a")]));
    }

    #[test]
    fn commas_join_requirements_with_and() {
        let pairs = [("env", "prod"), ("team", "ops")];
        assert!(matches("env=prod,team=ops", &pairs));
        assert!(!matches("env=prod,team=dev", &pairs));
        assert!(matches("env==prod,!gone", &pairs));
    }

    #[test]
    fn the_empty_selector_matches_everything() {
        assert!(matches("", &[("a", "b")]));
        assert!(matches("", &[]));
    }

    #[test]
    fn prefixed_keys_are_supported() {
        assert!(matches(
            "tether.dev/fleet=prod",
            &[("tether.dev/fleet", "prod")]
        ));
    }

    #[test]
    fn malformed_selectors_are_errors() {
        for bad in [
            "env in (a,b",
            "env in a,b)",
            "env between (a)",
            "env in ((a))",
            "bad key=1",
            "k=-v",
            "!",
            "=v",
            "k in (a)x",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }
}
