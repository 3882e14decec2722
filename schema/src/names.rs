//! Validated newtypes: once a value has one of these types it obeys the rule named in its docs.
//!
//! Each `parse` returns an [`Invalid`] with a message and a hint on failure; nothing downstream
//! holds a raw `String` where one of these exists.

use serde::Serialize;
use std::fmt;

/// The prefix of every label tether sets itself (the keys in [`crate::labels`]); a label key
/// of a spec may not use it.
pub const TETHER_PREFIX: &str = "tether/";

/// Why a value was refused: what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

fn invalid(message: impl Into<String>, hint: impl Into<String>) -> Invalid {
    Invalid {
        message: message.into(),
        hint: hint.into(),
    }
}

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks `value` against this type's rule.
            ///
            /// # Errors
            /// The rule the value breaks, with a hint.
            pub fn parse(value: &str) -> Result<Self, Invalid> {
                $check(value).map(|()| $name(value.to_owned()))
            }

            /// The value as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

newtype!(
    /// An agent's name: a lowercase RFC 1123 label of at most 63 characters, other than the
    /// [`RESERVED_AGENT_NAMES`]. It becomes the server name and the Tailscale hostname.
    AgentName,
    check_agent_name
);

/// Names an agent cannot take: the fleet-wide documents of the status branch
/// (`status/<name>.yaml`) have them.
pub const RESERVED_AGENT_NAMES: [&str; 4] = ["fleet", "devices", "deletions", "runtime"];

fn check_agent_name(value: &str) -> Result<(), Invalid> {
    check_dns_label(value)?;
    if RESERVED_AGENT_NAMES.contains(&value) {
        return Err(invalid(
            format!(
                "`{value}` is reserved: the status branch keeps `status/{value}.yaml` for the whole fleet"
            ),
            "choose another name, e.g. with the customer as prefix (`acme-fleet`)",
        ));
    }
    Ok(())
}
newtype!(
    /// A fleet's name: a lowercase RFC 1123 label; it is the value of the `tether/fleet` label.
    FleetName,
    check_dns_label
);
newtype!(
    /// A Hetzner project's name in `spec.projects`: a lowercase RFC 1123 label; it is the value
    /// of the `tether/project` label and names the project's token in the daemon config.
    ProjectName,
    check_dns_label
);
newtype!(
    /// A billing subscription id: a [`RecordId`], since it becomes a label value, a trailer
    /// value and part of a branch name.
    Subscription,
    check_subscription
);
newtype!(
    /// A string from outside that lands in a commit message, a trailer, a ref name or a label:
    /// an idempotency key, a subscription or customer id. One grammar for all of them
    /// ([`RECORD_ID_GRAMMAR`]): what passes is a Hetzner label value, a git ref name component
    /// and a trailer value that cannot start another line. A value outside it is refused,
    /// never truncated or rewritten.
    RecordId,
    check_record_id
);

/// The grammar of a [`RecordId`], as error messages quote it.
pub const RECORD_ID_GRAMMAR: &str = "1 to 63 ASCII letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit, with no `..` and not ending in `.lock`";
newtype!(
    /// A Hetzner label key: optional DNS-subdomain prefix and `/`, then a name of at most 63
    /// characters; the `hetzner.cloud/` and `tether/` prefixes are reserved.
    LabelKey,
    check_label_key
);
newtype!(
    /// A Hetzner label value: empty, or at most 63 characters starting and ending alphanumeric
    /// with `-`, `_`, `.` inside.
    LabelValue,
    check_label_value
);
newtype!(
    /// A Tailscale ACL tag: `tag:` followed by a letter, then letters, digits and dashes.
    TailnetTag,
    check_tag
);
newtype!(
    /// The tailnet to manage: `-` (the credential's default tailnet) or a tailnet id.
    Tailnet,
    check_tailnet
);
newtype!(
    /// A Hetzner server type name, such as `cpx21`.
    ServerTypeName,
    check_catalog_name
);
newtype!(
    /// A Hetzner location name, such as `fsn1`.
    LocationName,
    check_catalog_name
);
newtype!(
    /// A Hetzner image name, such as `ubuntu-24.04`.
    ImageName,
    check_catalog_name
);
newtype!(
    /// The name of an SSH key stored in the Hetzner project.
    SshKeyName,
    check_ssh_key_name
);
newtype!(
    /// An environment variable name for the agent runtime: `[A-Za-z_][A-Za-z0-9_]*`.
    EnvName,
    check_env_name
);
newtype!(
    /// The agent runtime version: 1 to 64 characters of letters, digits, `.`, `-`, `+`.
    RuntimeVersion,
    check_runtime_version
);

/// A control, line break or invisible character (see [`crate::text::forbidden`]).
fn is_hidden(c: char) -> bool {
    c.is_control() || crate::text::forbidden(c).is_some()
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

fn check_dns_label(v: &str) -> Result<(), Invalid> {
    let hint =
        "use 1-63 lowercase letters, digits and `-`, starting and ending with a letter or digit";
    if v.is_empty() || v.len() > 63 {
        return Err(invalid(
            format!("`{v}` must be 1 to 63 characters long, not {}", v.len()),
            hint,
        ));
    }
    let ok_chars = v
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ok_ends = !v.starts_with('-') && !v.ends_with('-');
    if ok_chars && ok_ends {
        Ok(())
    } else {
        Err(invalid(
            format!("`{v}` is not a lowercase RFC 1123 label"),
            hint,
        ))
    }
}

fn label_name_ok(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 63
        && v.starts_with(is_alnum)
        && v.ends_with(is_alnum)
        && v.chars()
            .all(|c| is_alnum(c) || matches!(c, '-' | '_' | '.'))
}

fn check_label_value(v: &str) -> Result<(), Invalid> {
    if v.is_empty() || label_name_ok(v) {
        Ok(())
    } else {
        Err(invalid(
            format!("`{v}` is not a valid Hetzner label value"),
            "use at most 63 characters: letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit",
        ))
    }
}

fn check_subscription(v: &str) -> Result<(), Invalid> {
    if v.is_empty() {
        return Err(invalid(
            "the subscription id is empty",
            "set the billing system's subscription id, e.g. `sub_1OaBc`",
        ));
    }
    check_label_value(v)?;
    check_record_id(v)
}

fn check_record_id(v: &str) -> Result<(), Invalid> {
    if label_name_ok(v) && !v.contains("..") && !v.ends_with(".lock") {
        return Ok(());
    }
    let shown: String = v.chars().flat_map(char::escape_debug).take(80).collect();
    Err(invalid(
        format!("\"{shown}\" is not a record id"),
        format!("use {RECORD_ID_GRAMMAR}"),
    ))
}

fn check_label_key(v: &str) -> Result<(), Invalid> {
    let (prefix, name) = match v.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, v),
    };
    let hint = "use `name` or `prefix/name`: the name at most 63 letters, digits, `-`, `_`, `.`; the prefix a DNS subdomain";
    if !label_name_ok(name) {
        return Err(invalid(
            format!("`{v}` is not a valid Hetzner label key"),
            hint,
        ));
    }
    if let Some(prefix) = prefix {
        let dns_ok = prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part.starts_with(is_alnum)
                    && part.ends_with(is_alnum)
                    && part.chars().all(|c| is_alnum(c) || c == '-')
            });
        if !dns_ok {
            return Err(invalid(
                format!("`{v}` has a prefix that is not a DNS subdomain"),
                hint,
            ));
        }
        if prefix == "hetzner.cloud" || prefix == TETHER_PREFIX.trim_end_matches('/') {
            return Err(invalid(
                format!("the label prefix `{prefix}/` is reserved"),
                "tether sets `tether/*` labels itself and Hetzner reserves `hetzner.cloud/*`; choose another key",
            ));
        }
    }
    Ok(())
}

fn check_tag(v: &str) -> Result<(), Invalid> {
    let hint = "write tags as `tag:name`: a letter, then letters, digits and `-`";
    let Some(name) = v.strip_prefix("tag:") else {
        return Err(invalid(format!("`{v}` does not start with `tag:`"), hint));
    };
    if name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        Ok(())
    } else {
        Err(invalid(format!("`{v}` is not a valid Tailscale tag"), hint))
    }
}

fn check_tailnet(v: &str) -> Result<(), Invalid> {
    let printable = !v.chars().any(|c| c.is_whitespace() || is_hidden(c));
    if v == "-" || (!v.is_empty() && v.len() <= 253 && printable && !v.contains(['/', '?', '#'])) {
        Ok(())
    } else {
        Err(invalid(
            format!("`{v}` is not a tailnet id"),
            "use `-` for the credential's own tailnet",
        ))
    }
}

fn check_catalog_name(v: &str) -> Result<(), Invalid> {
    if !v.is_empty()
        && v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        Ok(())
    } else {
        Err(invalid(
            format!("`{v}` is not a Hetzner name"),
            "use the name as Hetzner lists it, e.g. `cpx21`, `fsn1`, `ubuntu-24.04`",
        ))
    }
}

fn check_ssh_key_name(v: &str) -> Result<(), Invalid> {
    if !v.trim().is_empty() && v.len() <= 128 && !v.chars().any(is_hidden) {
        Ok(())
    } else {
        Err(invalid(
            format!("`{v}` is not an SSH key name"),
            "use the key's name as stored in the Hetzner project",
        ))
    }
}

fn check_env_name(v: &str) -> Result<(), Invalid> {
    if v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        Ok(())
    } else {
        Err(invalid(
            format!("`{v}` is not an environment variable name"),
            "use letters, digits and `_`, not starting with a digit",
        ))
    }
}

fn check_runtime_version(v: &str) -> Result<(), Invalid> {
    if !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
    {
        Ok(())
    } else {
        Err(invalid(
            format!("`{v}` is not a runtime version"),
            "use a version such as `1.4.2`",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_follow_rfc_1123_labels() {
        for ok in ["a", "acme-prod", "x1", &"a".repeat(63)] {
            assert!(AgentName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Acme", "a_b", "a.b", &"a".repeat(64)] {
            assert!(AgentName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_rules_match_hetzner() {
        for ok in ["customer", "example.com/plan", "a.b_c-d", "x"] {
            assert!(LabelKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a/",
            "/a",
            "hetzner.cloud/x",
            "tether/agent",
            "bad prefix/x",
            &"k".repeat(64),
        ] {
            assert!(LabelKey::parse(bad).is_err(), "{bad}");
        }
        for ok in ["", "cus_123", "a", "1.2-x"] {
            assert!(LabelValue::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["-x", "x-", "a b", &"v".repeat(64)] {
            assert!(LabelValue::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn free_text_names_refuse_controls_and_invisible_characters() {
        for bad in [
            "a\u{2028}b",
            "a\u{200b}",
            "a\u{0}",
            "a\u{85}",
            "a\nb",
            "a\u{202e}",
        ] {
            assert!(Tailnet::parse(bad).is_err(), "{bad:?}");
            assert!(SshKeyName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Tailnet::parse("example.com").is_ok());
        assert!(SshKeyName::parse("ops laptop").is_ok());
    }

    #[test]
    fn tags_need_the_tag_prefix() {
        assert!(AgentName::parse("fleet").is_err());
        assert!(AgentName::parse("devices").is_err());
        assert!(AgentName::parse("runtime").is_err());
        assert!(AgentName::parse("fleet-one").is_ok());
        assert!(TailnetTag::parse("tag:agent").is_ok());
        assert!(TailnetTag::parse("agent").is_err());
        assert!(TailnetTag::parse("tag:1x").is_err());
        assert!(TailnetTag::parse("tag:a_b").is_err());
    }

    proptest::proptest! {
        #[test]
        fn a_record_id_is_kept_whole_or_refused_and_what_passes_is_one_line_label_and_ref_safe(
            v in "[A-Za-z0-9._:\\- \n\r\t\u{202e}~^/]{0,70}"
        ) {
            match RecordId::parse(&v) {
                Ok(id) => {
                    proptest::prop_assert_eq!(id.as_str(), v.as_str());
                    proptest::prop_assert!(LabelValue::parse(&v).is_ok());
                    proptest::prop_assert!(!v.is_empty() && v.len() <= 63);
                    proptest::prop_assert!(!v.contains("..") && !v.ends_with(".lock"));
                    proptest::prop_assert!(v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
                }
                Err(e) => {
                    proptest::prop_assert_eq!(e.message.lines().count(), 1);
                    proptest::prop_assert!(e.hint.contains(RECORD_ID_GRAMMAR));
                }
            }
        }

        #[test]
        fn a_record_id_with_a_line_break_or_colon_is_refused(
            head in "[a-z0-9]{1,20}", sep in "[\n\r:\u{202e} ]", tail in "[A-Za-z0-9-]{1,20}"
        ) {
            let value = format!("{head}{sep}{tail}");
            proptest::prop_assert!(RecordId::parse(&value).is_err());
        }
    }

    #[test]
    fn record_ids_take_stripe_ids_and_uuids_and_refuse_ref_breakers() {
        for ok in [
            "sub_1OaBc",
            "cus_9",
            "evt_1Nx",
            "3f2a1c9e-0b1d-4c1e-9a0b-1c2d3e4f5a6b",
        ] {
            assert!(RecordId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a..b",
            "x.lock",
            "-a",
            "a\nTether-Idempotency-Key: b",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(RecordId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Subscription::parse("sub..1").is_err());
    }
}
