//! What a plan shows of an agent's inputs: every field a create sets, and for a replacement
//! each field that differs with its old and new value, the ones Hetzner cannot change in place
//! marked as forcing it. Env values are shown as [`super::env`] decides.
//!
//! Old values come from the live server where Hetzner shows them (type, location, image,
//! labels) and, for what only the spec knows (SSH keys, tags, runtime version, subscription,
//! env), from the agent as last applied ([`super::Context::previous`]), trusted only when it
//! hashes to the server's `tether/spec` label. Without such a record the spec-only fields are
//! one [`UNRECORDED`] change whose old value is unknown.

use super::Change;
use super::env::EnvView;
use crate::compute::Server;
use std::collections::BTreeMap;
use tether_schema::{Agent, Fleet, labels};

pub use super::env::NOT_SET;
/// Shown for a replacement's old value that tether has no record of.
pub const UNKNOWN: &str =
    "(previous value unknown: no applied spec on the status branch matches this server)";
/// The field of a replacement whose spec-only inputs changed but cannot be itemised.
pub const UNRECORDED: &str = "cloud-init inputs (ssh keys, tags, subscription)";

/// The field of a type change.
pub const SERVER_TYPE: &str = "server type";

/// The agent's tags.
pub fn tags(agent: &Agent) -> Vec<String> {
    agent.tags.iter().map(|t| t.as_str().to_owned()).collect()
}

/// The agent's SSH key names.
pub fn ssh_keys(agent: &Agent) -> Vec<String> {
    agent
        .server
        .ssh_keys
        .iter()
        .map(|k| k.as_str().to_owned())
        .collect()
}

/// Every field of `server` that differs from what `agent` wants, when at least one of them
/// forces a replacement; empty when the server can be kept. `want` is the labels the agent's
/// server should carry.
pub fn replacement_changes(
    agent: &Agent,
    server: &Server,
    want: &BTreeMap<String, String>,
    previous: Option<&Fleet>,
    env: &EnvView<'_>,
) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut differ = |field: &str, from: Option<&str>, to: &str, forces: bool| {
        if from != Some(to) {
            changes.push(Change {
                field: field.to_owned(),
                from: from.map(str::to_owned),
                to: to.to_owned(),
                forces_replacement: forces,
            });
        }
    };
    differ(
        "location",
        Some(&server.location),
        agent.server.location.as_str(),
        true,
    );
    differ(
        "image",
        Some(server.image.as_deref().unwrap_or(NOT_SET)),
        agent.server.image.as_str(),
        true,
    );
    if let (Some(pin), Some(lives)) = (&agent.server.project, &server.project) {
        differ("project", Some(lives), pin.as_str(), true);
    }
    let have = server.labels.get(labels::SPEC);
    let spec_differs = have != want.get(labels::SPEC);
    if spec_differs {
        match applied(agent, server, previous) {
            Some(old) => spec_inputs(old, agent, env, &mut changes),
            None => changes.push(Change {
                field: UNRECORDED.to_owned(),
                from: None,
                to: "changed".to_owned(),
                forces_replacement: true,
            }),
        }
    }
    if !changes.iter().any(|c| c.forces_replacement) {
        if spec_differs {
            // The record matches the server but no itemised input differs: name the hashes.
            changes.push(Change {
                field: "cloud-init (tether/spec)".to_owned(),
                from: Some(have.map_or(NOT_SET, String::as_str).to_owned()),
                to: want.get(labels::SPEC).cloned().unwrap_or_default(),
                forces_replacement: true,
            });
        } else {
            return Vec::new();
        }
    }
    if server.server_type != agent.server.server_type.as_str() {
        changes.push(Change {
            field: SERVER_TYPE.to_owned(),
            from: Some(server.server_type.clone()),
            to: agent.server.server_type.as_str().to_owned(),
            forces_replacement: false,
        });
    }
    changes.extend(label_changes(&server.labels, want, false));
    changes
}

/// Marks the type change among `changes` as forcing a replacement, adding it when `changes`
/// has none: Hetzner cannot make it in place ([`super::resize::refusal`]).
pub fn force_type_change(changes: &mut Vec<Change>, server: &Server, agent: &Agent) {
    match changes.iter_mut().find(|c| c.field == SERVER_TYPE) {
        Some(change) => change.forces_replacement = true,
        None => changes.insert(
            0,
            Change {
                field: SERVER_TYPE.to_owned(),
                from: Some(server.server_type.clone()),
                to: agent.server.server_type.as_str().to_owned(),
                forces_replacement: true,
            },
        ),
    }
}

/// The agent as last applied, when that record is what `server` was created from.
fn applied<'a>(agent: &Agent, server: &Server, previous: Option<&'a Fleet>) -> Option<&'a Agent> {
    let previous = previous?;
    let old = previous.agents.get(agent.name.as_str())?;
    let hash = labels::replacement_hash(old, &previous.settings);
    (server.labels.get(labels::SPEC) == Some(&hash)).then_some(old)
}

/// The spec-only inputs that differ between the applied agent and the desired one; the runtime
/// version and env are listed too, but a new server is never needed for them.
fn spec_inputs(old: &Agent, new: &Agent, env: &EnvView<'_>, changes: &mut Vec<Change>) {
    let mut differ = |field: &str, from: String, to: String, forces: bool| {
        if from != to {
            changes.push(Change {
                field: field.to_owned(),
                from: Some(from),
                to,
                forces_replacement: forces,
            });
        }
    };
    let list = |items: Vec<String>| {
        if items.is_empty() {
            NOT_SET.to_owned()
        } else {
            items.join(", ")
        }
    };
    differ("ssh keys", list(ssh_keys(old)), list(ssh_keys(new)), true);
    differ("tags", list(tags(old)), list(tags(new)), true);
    differ(
        "public net",
        public_net(old.server.public_net),
        public_net(new.server.public_net),
        true,
    );
    differ(
        "runtime version",
        old.runtime.version.as_str().to_owned(),
        new.runtime.version.as_str().to_owned(),
        false,
    );
    differ(
        "subscription",
        old.subscription.as_str().to_owned(),
        new.subscription.as_str().to_owned(),
        true,
    );
    changes.extend(env.changes(Some(old), new, false));
}

/// `ipv4, ipv6`, `ipv6 only` or `ipv4 only`: the public addresses a server is created with.
fn public_net(net: tether_schema::network::PublicNet) -> String {
    match (net.ipv4, net.ipv6) {
        (true, true) => "ipv4, ipv6".to_owned(),
        (false, _) => "ipv6 only".to_owned(),
        (true, false) => "ipv4 only".to_owned(),
    }
}

/// The labels that differ, as `label.<key>` changes that force nothing; tether's own
/// (`tether/…`) only when `tether` is set.
pub fn label_changes(
    have: &BTreeMap<String, String>,
    want: &BTreeMap<String, String>,
    tether: bool,
) -> Vec<Change> {
    let mut keys: Vec<&String> = have.keys().chain(want.keys()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut changes = Vec::new();
    for key in keys {
        if !tether && key.starts_with(tether_schema::names::TETHER_PREFIX) {
            continue;
        }
        let (from, to) = (have.get(key), want.get(key));
        if from != to {
            changes.push(Change {
                field: format!("label.{key}"),
                from: Some(from.map_or(NOT_SET, String::as_str).to_owned()),
                to: to.map_or(NOT_SET, String::as_str).to_owned(),
                forces_replacement: false,
            });
        }
    }
    changes
}
