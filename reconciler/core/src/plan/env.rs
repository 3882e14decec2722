//! How a plan shows an agent's env values: in clear only when fleet.yaml declares the variable
//! public (`spec.publicEnv`, [`tether_schema::public_env`]) and the value does not look like a
//! credential; otherwise `(hidden #<short hash>)`, or `(changed #<short hash>)` for the new
//! value of a change. Start at [`EnvView`].
//!
//! The short hash is HMAC-SHA256 under an [`EnvKey`] that lives only in the planning process,
//! over the variable's name and value, cut to [`DIGEST_CHARS`] hex characters. A plain or
//! salted hash of a low-entropy value (`DB_PW: hunter2`) is reversed by trying a dictionary,
//! since everything else a salt could be made of is in the plan too; a key that never leaves
//! the process cannot be tried. The price: hashes compare values within one process (old
//! against new, one agent against another), not across runs. The plan hash leaves them out
//! ([`without_digests`]), so `tether plan` and a later `tether apply` agree on it.

use super::Change;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use tether_schema::public_env::PublicEnv;
use tether_schema::{Agent, FleetSettings};

/// Shown for a value that is not set (also what [`super::fields`] shows for any field).
pub const NOT_SET: &str = "(not set)";
/// Opens a hidden value, followed by its short hash and `)`.
pub const HIDDEN: &str = "(hidden #";
/// Opens the new value of a hidden change, followed by its short hash and `)`.
pub const CHANGED: &str = "(changed #";
/// Hex characters of a short hash.
pub const DIGEST_CHARS: usize = 8;

/// Prefixes of well-known credential formats: such a value is hidden even under a public name.
const SECRET_PREFIXES: [&str; 10] = [
    "tskey-",
    "ghp_",
    "gho_",
    "ghs_",
    "github_pat_",
    "sk-",
    "xox",
    "AKIA",
    "glpat-",
    "-----BEGIN",
];

/// The key of the short hashes. [`Default`] is this process's key: 256 bits drawn once from the
/// standard library's randomly seeded hasher keys, never written anywhere.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvKey([u8; 32]);

impl EnvKey {
    /// A key of given bytes, for tests and snapshots whose output must not vary.
    pub fn fixed(bytes: [u8; 32]) -> EnvKey {
        EnvKey(bytes)
    }
}

impl Default for EnvKey {
    fn default() -> EnvKey {
        static KEY: OnceLock<EnvKey> = OnceLock::new();
        KEY.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            let mut bytes = [0u8; 32];
            for (i, chunk) in bytes.chunks_mut(8).enumerate() {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(i);
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
            EnvKey(bytes)
        })
        .clone()
    }
}

impl std::fmt::Debug for EnvKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvKey(..)")
    }
}

/// What decides how env values are shown: the fleet's public names and the hash key.
#[derive(Debug, Clone, Copy)]
pub struct EnvView<'a> {
    /// `spec.publicEnv`.
    pub public: &'a PublicEnv,
    /// The short hashes' key.
    pub key: &'a EnvKey,
}

impl<'a> EnvView<'a> {
    /// The view of `settings`' public env under `key`.
    pub fn new(settings: &'a FleetSettings, key: &'a EnvKey) -> EnvView<'a> {
        EnvView {
            public: &settings.public_env,
            key,
        }
    }

    /// Whether `name`'s `value` is shown in clear: the name is public and the value does not
    /// look like a credential (a known key prefix, a URL with a password, a Slack webhook).
    pub fn shows(&self, name: &str, value: &str) -> bool {
        self.public.allows(name) && !looks_like_a_credential(value)
    }

    /// `value` as a plan shows it: quoted and escaped, or `(hidden #…)`.
    pub fn value(&self, name: &str, value: &str) -> String {
        if self.shows(name, value) {
            format!("{value:?}")
        } else {
            format!("{HIDDEN}{})", self.digest(name, value))
        }
    }

    /// The agent's `spec.runtime.env` as a plan shows it.
    pub fn shown(&self, agent: &Agent) -> BTreeMap<String, String> {
        agent
            .runtime
            .env
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), self.value(k.as_str(), v)))
            .collect()
    }

    /// The `env.<NAME>` changes from `old`'s runtime env to `new`'s (every variable of `new`
    /// when there is no `old`). A hidden change reads `(hidden #old) → (changed #new)`.
    pub fn changes(&self, old: Option<&Agent>, new: &Agent, forces: bool) -> Vec<Change> {
        let mut names: Vec<&str> = old
            .map(|o| o.runtime.env.keys().map(|k| k.as_str()).collect())
            .unwrap_or_default();
        names.extend(new.runtime.env.keys().map(|k| k.as_str()));
        names.sort_unstable();
        names.dedup();
        let find = |agent: Option<&Agent>, name: &str| {
            agent?
                .runtime
                .env
                .iter()
                .find(|(k, _)| k.as_str() == name)
                .map(|(_, v)| v.clone())
        };
        let mut changes = Vec::new();
        for name in names {
            let (from, to) = (find(old, name), find(Some(new), name));
            if from == to {
                continue;
            }
            let clear = [&from, &to]
                .iter()
                .all(|v| v.as_deref().is_none_or(|v| self.shows(name, v)));
            let show = |v: &Option<String>, opener: &str| match v {
                None => NOT_SET.to_owned(),
                Some(v) if clear => format!("{v:?}"),
                Some(v) => format!("{opener}{})", self.digest(name, v)),
            };
            changes.push(Change {
                field: format!("env.{name}"),
                from: Some(show(&from, HIDDEN)),
                to: show(&to, CHANGED),
                forces_replacement: forces,
            });
        }
        changes
    }

    /// The short hash of `name=value` under the key.
    fn digest(&self, name: &str, value: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key.0) else {
            return "?".repeat(DIGEST_CHARS);
        };
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes()[..DIGEST_CHARS / 2]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Whether `value` is a credential whatever its name: a known key prefix, a URL carrying a
/// password, or a Slack incoming webhook (its path is the secret).
fn looks_like_a_credential(value: &str) -> bool {
    SECRET_PREFIXES.iter().any(|p| value.starts_with(p))
        || (value.contains("://") && value.contains('@'))
        || value.contains("hooks.slack.com/")
}

/// `text` with every short hash after [`HIDDEN`] or [`CHANGED`] taken out: what the plan hash
/// covers, so that it does not depend on the process's key.
pub fn without_digests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = [HIDDEN, CHANGED]
            .iter()
            .filter_map(|m| rest.find(m).map(|at| (at, m.len())))
            .min();
        let Some((at, len)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at + len]);
        rest = &rest[at + len..];
        let hex = rest
            .bytes()
            .take(DIGEST_CHARS)
            .take_while(u8::is_ascii_hexdigit)
            .count();
        rest = &rest[hex..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_schema::{Content, SourceFile, load_fleet};

    fn fleet(public: &str, env: &str) -> tether_schema::Fleet {
        let fleet_yaml = format!(
            "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: n}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  catalog: {{serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}}\n  publicEnv: {public}\n"
        );
        let agent = format!(
            "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: a}}\nspec:\n  subscription: sub_1\n  runtime: {{version: 1.0.0, env: {env}}}\n"
        );
        let files = [
            SourceFile {
                path: "fleet.yaml".into(),
                content: Content::Bytes(fleet_yaml.into_bytes()),
            },
            SourceFile {
                path: "agents/a.yaml".into(),
                content: Content::Bytes(agent.into_bytes()),
            },
        ];
        load_fleet(&files).expect("a valid fleet")
    }

    fn agent(f: &tether_schema::Fleet) -> &Agent {
        f.agents.values().next().expect("one agent")
    }

    #[test]
    fn db_pw_mysql_root_pw_smtp_login_and_a_slack_webhook_are_hidden() {
        let f = fleet(
            "[LOG_LEVEL, \"SLACK_*\"]",
            "{DB_PW: hunter2, MYSQL_ROOT_PW: root, SMTP_LOGIN: mail@example.com, SLACK_WEBHOOK_URL: \"https://hooks.slack.com/services/T0/B0/xyz\", LOG_LEVEL: debug}",
        );
        let key = EnvKey::fixed([1; 32]);
        let shown = EnvView::new(&f.settings, &key).shown(agent(&f));
        for name in ["DB_PW", "MYSQL_ROOT_PW", "SMTP_LOGIN", "SLACK_WEBHOOK_URL"] {
            let value = &shown[name];
            assert!(value.starts_with(HIDDEN), "{name}: {value}");
            assert_eq!(value.len(), HIDDEN.len() + DIGEST_CHARS + 1, "{value}");
        }
        assert_eq!(shown["LOG_LEVEL"], "\"debug\"");
        let all = format!("{shown:?}");
        for secret in ["hunter2", "root\"", "mail@", "hooks.slack"] {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
    }

    #[test]
    fn a_hidden_change_shows_changed_and_hashes_that_differ_by_value_not_by_run() {
        let old = fleet("[]", "{DB_PW: hunter2}");
        let new = fleet("[]", "{DB_PW: hunter3}");
        let key = EnvKey::fixed([2; 32]);
        let view = EnvView::new(&new.settings, &key);
        let changes = view.changes(Some(agent(&old)), agent(&new), false);
        assert_eq!(changes.len(), 1);
        let (from, to) = (changes[0].from.clone().unwrap_or_default(), &changes[0].to);
        assert!(
            from.starts_with(HIDDEN) && to.starts_with(CHANGED),
            "{from} {to}"
        );
        assert_ne!(from[HIDDEN.len()..], to[CHANGED.len()..]);
        let again = view.changes(Some(agent(&old)), agent(&new), false);
        assert_eq!(changes, again);
        let other_key = EnvKey::fixed([3; 32]);
        let other =
            EnvView::new(&new.settings, &other_key).changes(Some(agent(&old)), agent(&new), false);
        assert_ne!(changes[0].to, other[0].to);
        assert_eq!(
            without_digests(&changes[0].to),
            without_digests(&other[0].to)
        );
    }

    #[test]
    fn without_digests_keeps_everything_but_the_hashes() {
        assert_eq!(
            without_digests("a (hidden #0123abcd) b (changed #ffffffff) \"(hidden #zz)\""),
            "a (hidden #) b (changed #) \"(hidden #zz)\""
        );
    }
}
