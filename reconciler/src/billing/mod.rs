//! The billing interface: `tether agent add` and `tether agent remove` turn a subscription
//! event into exactly one validated commit on the fleet branch.
//!
//! Work happens on git objects (no checkout needed): read the branch tip, change one spec
//! file, validate the fleet with the change (the changed file, and the others through billing's
//! index of what was checked before: `index.rs`, `view.rs`), commit with trailers, move the branch with a
//! compare-and-swap (or push without force), and on a lost race start again from the new tip.

use crate::audit::commit::Identity;
use git2::Oid;
use std::collections::BTreeMap;
use std::path::Path;
use tether_schema::names::RecordId;
use tether_schema::raw::RawAgent;
use tether_schema::{Diagnostic, Power};

/// Trailer naming the subscription a billing commit is about.
pub const TRAILER_SUBSCRIPTION: &str = "Tether-Subscription";
/// Trailer carrying the caller's idempotency key (e.g. a Stripe event id).
pub const TRAILER_IDEMPOTENCY: &str = "Tether-Idempotency-Key";
/// Attempts before giving up on a contended branch.
pub const MAX_ATTEMPTS: usize = 8;

/// What billing asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentRequest {
    /// Subscription id (unique in the fleet).
    pub subscription: String,
    /// Customer id: the `customer` label and the spec's folder.
    pub customer: String,
    /// Agent name; default derived from the subscription.
    pub name: Option<String>,
    /// Server type; default from fleet.yaml.
    pub server_type: Option<String>,
    /// Location; default from fleet.yaml.
    pub location: Option<String>,
    /// Image; default from fleet.yaml.
    pub image: Option<String>,
    /// Plan label value.
    pub plan: Option<String>,
    /// Runtime version: required for a new agent, unchanged for an existing one when `None`.
    pub runtime_version: Option<String>,
    /// Idempotency key: a request whose key is already on the branch changes nothing.
    pub idempotency_key: Option<String>,
    /// Power to set: `Off` writes `power: off`; `On` turns an agent that was off back on;
    /// `None` keeps what the spec says.
    pub power: Option<Power>,
    /// The server fields are exactly this request's: one it leaves out is removed, so
    /// fleet.yaml's default applies (the receiver writes the whole server its price buys; a
    /// downgrade to a price without a type must not keep the old type). `false` keeps the
    /// fields a request leaves out, as `tether agent add` does.
    pub whole_server: bool,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new commit.
    Committed {
        /// Its id.
        commit: Oid,
        /// The spec file written or removed.
        path: String,
    },
    /// Nothing to do: the same key was applied before, or the spec already says this.
    Unchanged {
        /// Why.
        reason: String,
    },
}

/// Why a billing change was refused.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The change would make the fleet invalid.
    #[error("the change would make the fleet invalid ({} problem(s)); nothing was committed", .0.len())]
    Invalid(Vec<Diagnostic>),
    /// A string that would land in the commit message, a trailer, a branch name or a label
    /// breaks the one grammar for such strings ([`tether_schema::names::RecordId`]).
    #[error("{field}: {message}; nothing was committed ({hint})")]
    Field {
        /// The field and the flag that gives it, e.g. `idempotency key (--idempotency-key)`.
        field: &'static str,
        /// What is wrong, the value escaped.
        message: String,
        /// The grammar.
        hint: String,
    },
    /// libgit2 failed.
    #[error("git: {0}")]
    Git(String),
    /// The branch kept moving.
    #[error("branch `{0}` kept moving; gave up after {MAX_ATTEMPTS} attempts (nothing was forced)")]
    Contended(String),
    /// The branch's ref is locked: another git process is updating it, or one was killed in
    /// the middle of an update and left its lock file.
    #[error(
        "branch `{branch}` is locked by `{}`; if no git process is writing the repository, it was left by one that was killed: tether removes it once it is {} s old, or remove it by hand. Nothing was committed", lock_file.display(), crate::source::reflock::STALE_AFTER.as_secs()
    )]
    Locked {
        /// The branch.
        branch: String,
        /// The lock file.
        lock_file: std::path::PathBuf,
    },
    /// The branch does not exist.
    #[error("branch `{0}` not found; billing commits to an existing fleet branch")]
    NoBranch(String),
    /// The request would rename an existing agent, which replaces its VM.
    #[error(
        "subscription {subscription} already has agent `{current}`; renaming it to `{requested}` would replace its VM. Remove the agent and add it again if that is intended"
    )]
    Rename {
        /// The subscription.
        subscription: String,
        /// Its agent's name.
        current: String,
        /// The name asked for.
        requested: String,
    },
    /// The branch is checked out in a work tree with uncommitted changes to the paths the
    /// commit changes.
    #[error(
        "branch `{branch}` is checked out in `{}` with uncommitted changes to {paths}; nothing was committed", workdir.display()
    )]
    DirtyWorkTree {
        /// The branch.
        branch: String,
        /// The work tree.
        workdir: std::path::PathBuf,
        /// The paths with uncommitted changes, comma-separated.
        paths: String,
    },
    /// The branch is checked out at a commit the remote's branch does not contain.
    #[error(
        "branch `{branch}` is checked out in `{}` with commits the remote's branch lacks; nothing was committed", workdir.display()
    )]
    Diverged {
        /// The branch.
        branch: String,
        /// The work tree.
        workdir: std::path::PathBuf,
    },
    /// The existing spec could not be read back.
    #[error(
        "the existing spec {0} could not be read; fix it by hand (run `tether validate`) before billing updates it"
    )]
    Unreadable(String),
    /// A new agent without a runtime version: tether pins versions, never an unpinned one.
    #[error(
        "agent `{agent}` (subscription {subscription}) is new and has no runtime version; give one with --runtime-version (e.g. 1.4.2): tether pins the version every VM installs, so a new agent never gets an unpinned `stable`"
    )]
    RuntimeVersionRequired {
        /// The new agent.
        agent: String,
        /// Its subscription.
        subscription: String,
    },
}

impl From<git2::Error> for BillingError {
    fn from(e: git2::Error) -> Self {
        BillingError::Git(e.message().to_owned())
    }
}

/// Where to commit.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// A local repository (bare or a clone).
    pub repo: &'a Path,
    /// The branch to commit to: the fleet branch, or a pull-request branch (see `base`).
    pub branch: &'a str,
    /// When `branch` does not exist (on the remote, when pushing), start it from this branch:
    /// `tether agent add --open-pr` writes `tether/agent-<subscription>` off the fleet branch.
    pub base: Option<&'a str>,
    /// Push to this remote (URL or name) instead of moving the local branch only.
    pub push: Option<&'a str>,
    /// Commit identity.
    pub identity: &'a Identity,
}

/// The agent name used when billing gives none: the subscription id lowercased, with
/// anything outside `[a-z0-9-]` turned into `-`, at most 63 characters.
pub fn default_name(subscription: &str) -> String {
    let name: String = subscription
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.trim_matches('-')
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

fn folder(customer: &str) -> String {
    let f = default_name(customer);
    if f.is_empty() {
        "unknown".to_owned()
    } else {
        f
    }
}

/// The fields of an agent spec that billing writes or keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Spec {
    name: String,
    labels: BTreeMap<String, String>,
    subscription: String,
    server: Vec<(&'static str, String)>,
    ssh_keys: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    runtime_version: String,
    env: BTreeMap<String, String>,
    power: Option<&'static str>,
    protect: Option<bool>,
}

impl Spec {
    /// Reads an existing spec so an update keeps every field billing does not set.
    fn parse(text: &str) -> Option<Spec> {
        let node = tether_schema::yaml::node::parse(text).ok()?;
        let raw: RawAgent = tether_schema::yaml::de::from_node(&node).0.ok()?;
        let s = raw.spec;
        let server = [
            ("type", s.server.server_type),
            ("location", s.server.location),
            ("image", s.server.image),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v.value)))
        .collect();
        Some(Spec {
            name: raw.metadata.name.value,
            labels: raw
                .metadata
                .labels
                .into_iter()
                .map(|(k, v)| (k.value, v.value))
                .collect(),
            subscription: s.subscription.value,
            server,
            ssh_keys: s
                .server
                .ssh_keys
                .map(|k| k.into_iter().map(|k| k.value).collect()),
            tags: s
                .tailscale
                .map(|t| t.tags.value.into_iter().map(|t| t.value).collect()),
            runtime_version: s.runtime.version.value,
            env: s
                .runtime
                .env
                .into_iter()
                .map(|(k, v)| (k.value, v.value))
                .collect(),
            power: s
                .power
                .map(|p| if p.value == Power::Off { "off" } else { "on" }),
            protect: s.protect,
        })
    }

    /// Applies what the request sets.
    fn update(&mut self, req: &AgentRequest) {
        self.labels
            .insert("customer".to_owned(), req.customer.clone());
        if let Some(plan) = &req.plan {
            self.labels.insert("plan".to_owned(), plan.clone());
        }
        if req.whole_server {
            self.server.clear();
        }
        for (key, value) in [
            ("type", &req.server_type),
            ("location", &req.location),
            ("image", &req.image),
        ] {
            if let Some(v) = value {
                self.server.retain(|(k, _)| *k != key);
                self.server.push((key, v.clone()));
            }
        }
        self.server
            .sort_by_key(|(k, _)| ["type", "location", "image"].iter().position(|x| x == k));
        if let Some(v) = &req.runtime_version {
            self.runtime_version.clone_from(v);
        }
        match req.power {
            Some(Power::Off) => self.power = Some("off"),
            Some(Power::On) if self.power.is_some() => self.power = Some("on"),
            Some(Power::On) | None => {}
        }
    }

    fn render(&self) -> String {
        let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
        let list = |items: &[String]| {
            items
                .iter()
                .map(|i| quote(i))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let map = |m: &BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| format!("{k}: {}", quote(v)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut server: Vec<String> = self
            .server
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        if let Some(keys) = &self.ssh_keys {
            server.push(format!("sshKeys: [{}]", list(keys)));
        }
        let mut out = format!(
            "# Written by `tether agent add` for subscription {sub}.\napiVersion: tether/v1\nkind: Agent\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  subscription: {sub}\n",
            sub = self.subscription,
            name = self.name,
            labels = map(&self.labels),
        );
        if !server.is_empty() {
            out.push_str(&format!("  server: {{{}}}\n", server.join(", ")));
        }
        if let Some(tags) = &self.tags {
            out.push_str(&format!("  tailscale: {{tags: [{}]}}\n", list(tags)));
        }
        out.push_str(&format!(
            "  runtime:\n    version: {}\n",
            quote(&self.runtime_version)
        ));
        if !self.env.is_empty() {
            out.push_str(&format!("    env: {{{}}}\n", map(&self.env)));
        }
        if let Some(power) = self.power {
            out.push_str(&format!("  power: {power}\n"));
        }
        if let Some(protect) = self.protect {
            out.push_str(&format!("  protect: {protect}\n"));
        }
        out
    }
}

/// Adds or updates the agent of `req.subscription`.
///
/// # Errors
/// See [`BillingError`].
pub fn add(target: &Target<'_>, req: &AgentRequest) -> Result<Change, BillingError> {
    check_record_ids(
        &req.subscription,
        Some(&req.customer),
        req.idempotency_key.as_deref(),
    )?;
    let name = req
        .name
        .clone()
        .unwrap_or_else(|| default_name(&req.subscription));
    let summary = format!("agent add {name} (subscription {})", req.subscription);
    change(
        target,
        &req.subscription,
        req.idempotency_key.as_deref(),
        &summary,
        |existing| agent_file(existing, req).map(Some),
    )
}

/// The path and new text of `req.subscription`'s spec, given its current one (path and text).
fn agent_file(
    existing: Option<(String, String)>,
    req: &AgentRequest,
) -> Result<(String, String), BillingError> {
    let name = req
        .name
        .clone()
        .unwrap_or_else(|| default_name(&req.subscription));
    let (path, mut spec) = match existing {
        Some((path, text)) => {
            let spec = Spec::parse(&text).ok_or_else(|| BillingError::Unreadable(path.clone()))?;
            if req.name.as_ref().is_some_and(|n| *n != spec.name) {
                return Err(BillingError::Rename {
                    subscription: req.subscription.clone(),
                    current: spec.name,
                    requested: name,
                });
            }
            (path, spec)
        }
        None => {
            let runtime_version = req.runtime_version.clone().ok_or_else(|| {
                BillingError::RuntimeVersionRequired {
                    agent: name.clone(),
                    subscription: req.subscription.clone(),
                }
            })?;
            let spec = Spec {
                name: name.clone(),
                subscription: req.subscription.clone(),
                runtime_version,
                ..Spec::default()
            };
            (
                format!("agents/{}/{name}.yaml", folder(&req.customer)),
                spec,
            )
        }
    };
    spec.update(req);
    Ok((path, spec.render()))
}

/// Removes the agent of `subscription`; no spec for it is not an error (nothing to do).
///
/// # Errors
/// See [`BillingError`].
pub fn remove(
    target: &Target<'_>,
    subscription: &str,
    idempotency_key: Option<&str>,
) -> Result<Change, BillingError> {
    check_record_ids(subscription, None, idempotency_key)?;
    let summary = format!("agent remove (subscription {subscription})");
    change(
        target,
        subscription,
        idempotency_key,
        &summary,
        |existing| Ok(existing.map(|(path, _)| (path, String::new()))),
    )
}

/// Refuses, before anything is read or written, a subscription, customer or idempotency key
/// outside [`RecordId`]'s grammar: each lands in a commit message, a trailer, a branch name or a
/// label, and is never truncated or rewritten to fit.
fn check_record_ids(
    subscription: &str,
    customer: Option<&str>,
    idempotency_key: Option<&str>,
) -> Result<(), BillingError> {
    let fields = [
        ("subscription (--subscription)", Some(subscription)),
        ("customer (--customer)", customer),
        ("idempotency key (--idempotency-key)", idempotency_key),
    ];
    for (field, value) in fields {
        if let Some(Err(e)) = value.map(RecordId::parse) {
            return Err(BillingError::Field {
                field,
                message: e.message,
                hint: e.hint,
            });
        }
    }
    Ok(())
}

mod commit;
pub mod confirm;
mod index;
pub mod serve;
pub mod stripe;
#[cfg(test)]
mod tests;

use commit::change;
mod view;
mod worktree;
