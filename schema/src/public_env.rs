//! Which agent env variables a plan may show in clear (`spec.publicEnv` in fleet.yaml): names
//! and `*` patterns. Every other env value is hidden in plans, PR comments, Slack and JSON. The
//! raw form is a list of strings; [`validate`] turns it into a [`PublicEnv`].

use crate::diagnostic::Code;
use crate::report::Report;
use crate::spanned::{Spanned, Text};
use serde::Serialize;

/// Most entries `spec.publicEnv` may hold.
pub const MAX_ENTRIES: usize = 256;
/// Longest entry, in bytes.
pub const MAX_ENTRY_BYTES: usize = 128;

/// The env keys declared public: exact names and `*` patterns (`*` matches any run of name
/// characters, the empty run included). Empty: every env value is hidden.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PublicEnv(Vec<String>);

impl PublicEnv {
    /// Whether nothing is declared public.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the variable `name` is declared public by a name or a pattern.
    pub fn allows(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|pattern| matches(pattern.as_bytes(), name.as_bytes()))
    }
}

/// Glob matching with `*` only, iterative with one backtrack point: linear in practice and at
/// worst `pattern × name`, both bounded by [`MAX_ENTRY_BYTES`] and the env name rules.
fn matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Whether `entry` is an env name with `*` allowed anywhere: `[A-Za-z_*][A-Za-z0-9_*]*`.
fn well_formed(entry: &str) -> bool {
    entry.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '*')
        && entry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*')
}

/// Validates `spec.publicEnv`: its length, each entry's characters and length, duplicates, and
/// a pattern that would show everything.
pub(crate) fn validate(raw: Option<&Spanned<Vec<Text>>>, r: &mut Report<'_>) -> PublicEnv {
    let Some(list) = raw else {
        return PublicEnv::default();
    };
    if list.value.len() > MAX_ENTRIES {
        r.push(
            list.span,
            "spec.publicEnv",
            Code::InvalidValue,
            format!(
                "`spec.publicEnv` has {} entries, more than {MAX_ENTRIES}",
                list.value.len()
            ),
            "use `*` patterns such as `OTEL_*` to name families of variables".into(),
        );
        return PublicEnv::default();
    }
    let mut out: Vec<String> = Vec::new();
    for (i, entry) in list.value.iter().enumerate() {
        let path = format!("spec.publicEnv[{i}]");
        let text = entry.value.as_str();
        let problem = if text.len() > MAX_ENTRY_BYTES || text.is_empty() {
            Some((
                format!("the entry is {} bytes long", text.len()),
                format!("write a variable name or pattern of 1 to {MAX_ENTRY_BYTES} bytes"),
            ))
        } else if !well_formed(text) {
            Some((
                format!("`{}` is not an env variable name or `*` pattern", text.escape_debug()),
                "use letters, digits, `_` and `*`, not starting with a digit (e.g. `LOG_LEVEL`, `OTEL_*`)".into(),
            ))
        } else if text.chars().all(|c| c == '*') {
            Some((
                format!("`{text}` would show every env value in clear"),
                "name the variables that hold no secret, one by one or by prefix (`OTEL_*`)".into(),
            ))
        } else if out.iter().any(|seen| seen == text) {
            Some((
                format!("`{text}` is listed twice"),
                "give each name or pattern one entry".into(),
            ))
        } else {
            None
        };
        match problem {
            Some((message, hint)) => r.push(entry.span, &path, Code::InvalidValue, message, hint),
            None => out.push(text.to_owned()),
        }
    }
    PublicEnv(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn public(entries: &[&str]) -> PublicEnv {
        PublicEnv(entries.iter().map(|e| (*e).to_owned()).collect())
    }

    #[test]
    fn names_and_patterns_decide_what_is_public() {
        let p = public(&["LOG_LEVEL", "OTEL_*", "*_REGION", "A*B*C"]);
        for name in [
            "LOG_LEVEL",
            "OTEL_",
            "OTEL_EXPORTER",
            "EU_REGION",
            "_REGION",
            "ABC",
            "AxBxxC",
        ] {
            assert!(p.allows(name), "{name}");
        }
        for name in [
            "LOG_LEVELS",
            "DB_PW",
            "MYSQL_ROOT_PW",
            "SMTP_LOGIN",
            "SLACK_WEBHOOK_URL",
            "OTE",
            "REGION_X",
            "AxBxCx",
        ] {
            assert!(!p.allows(name), "{name}");
        }
        assert!(!PublicEnv::default().allows("LOG_LEVEL"));
    }

    fn load(public_env: &str) -> Result<crate::Fleet, crate::LoadError> {
        let yaml = format!(
            "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: n}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  catalog: {{serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}}\n  publicEnv: {public_env}\n"
        );
        crate::load_fleet(&[crate::SourceFile {
            path: "fleet.yaml".into(),
            content: crate::Content::Bytes(yaml.into_bytes()),
        }])
    }

    #[test]
    fn fleet_yaml_declares_public_env_by_name_and_pattern() {
        let fleet = load("[LOG_LEVEL, \"OTEL_*\"]").expect("a valid fleet");
        assert!(fleet.settings.public_env.allows("OTEL_SERVICE_NAME"));
        assert!(!fleet.settings.public_env.allows("DB_PW"));
    }

    #[test]
    fn bad_public_env_entries_are_each_reported_at_their_line_and_field() {
        let err = load("[\"1BAD\", \"*\", LOG_LEVEL, LOG_LEVEL, \"A-B\"]").expect_err("refused");
        let found: Vec<(String, usize)> = err
            .diagnostics
            .iter()
            .map(|d| (d.path.clone(), d.span.map_or(0, |s| s.line)))
            .collect();
        let expect: Vec<(String, usize)> = [0, 1, 3, 4]
            .iter()
            .map(|i| (format!("spec.publicEnv[{i}]"), 8))
            .collect();
        assert_eq!(found, expect, "{err}");
        assert!(
            err.diagnostics[1].message.contains("every env value"),
            "{err}"
        );
        let many = format!(
            "[{}]",
            (0..=MAX_ENTRIES)
                .map(|i| format!("V{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let err = load(&many).expect_err("refused");
        assert_eq!(err.diagnostics[0].path, "spec.publicEnv");
    }

    proptest! {
        #[test]
        fn a_pattern_without_a_star_matches_only_its_own_name(
            pattern in "[A-Z_]{1,12}",
            name in "[A-Z_]{1,12}",
        ) {
            prop_assert_eq!(public(&[&pattern]).allows(&name), pattern == name);
        }

        #[test]
        fn a_prefix_pattern_matches_exactly_the_names_with_that_prefix(
            prefix in "[A-Z_]{1,6}",
            name in "[A-Z_]{1,12}",
        ) {
            let p = public(&[&format!("{prefix}*")]);
            prop_assert_eq!(p.allows(&name), name.starts_with(&prefix));
        }
    }
}
