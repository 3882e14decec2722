//! tether's own label keys on Hetzner servers: the proof that tether owns a server and which
//! agent it belongs to, plus the hash that tells whether the server must be replaced. User
//! labels may not use the `tether/` prefix.
//!
//! | key | value |
//! |---|---|
//! | `tether/fleet` | the fleet name: tether owns the server |
//! | `tether/agent` | the agent name |
//! | `tether/subscription` | the billing subscription |
//! | `tether/spec` | [`replacement_hash`] of the fields only a new server can change |
//! | `tether/runtime` | [`runtime_hash`] of the runtime the VM's agent was last told and reported |
//! | `tether/agent-key` | [`AGENT_KEY`]: the hash of the on-VM agent's credential |
//! | `tether/project` | the fleet project (`spec.projects`) the server was created in; only on fleets that declare projects |
//! | `tether/protect` | `true` when the agent is protected: survives the spec's removal |
//! | `tether/retired` | `true` on a server renamed aside while its replacement is created |
//! | `tether/quarantine-grace` | the agent's own grace period in seconds, when its spec sets one |
//! | `tether/quarantined-at` | unix seconds when the server entered quarantine |
//! | `tether/quarantine-commit` | short fleet commit that removed the agent's spec |
//! | `tether/purge` | `true`: `tether agent purge` asked to delete the quarantined server early |
//! | `tether/heal-attempt` | the self-healing attempt last started on the server, written before its first mutation |
//! | `tether/heal-remedy` | that attempt's remedy: `rekey`, `power-cycle` or `replace` |
//! | `tether/heal-at` | unix seconds when that attempt started |
//! | `tether/runtime-halted` | the [`runtime_hash`] of a runtime whose rollout halted on this server, written before the rollback |

use crate::cloud_init;
use crate::model::{Agent, FleetSettings};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// `tether/fleet=<fleet name>`: the server belongs to this fleet. A server without it is never
/// touched destructively.
pub const FLEET: &str = "tether/fleet";
/// `tether/agent=<agent name>`: the agent the server was created for.
pub const AGENT: &str = "tether/agent";
/// `tether/subscription=<subscription id>`: the billing subscription the server serves.
pub const SUBSCRIPTION: &str = "tether/subscription";
/// `tether/spec=<hash>`: see [`replacement_hash`].
pub const SPEC: &str = "tether/spec";
/// `tether/runtime=<hash>`: see [`runtime_hash`]. Absent on servers created before runtime
/// fields were delivered in place; their `tether/spec` is then the [`legacy_replacement_hash`].
pub const RUNTIME: &str = "tether/runtime";
/// `tether/agent-key=<60 hex>`: the SHA-256 of the on-VM agent's credential (the credential
/// itself is only ever on the VM); the daemon's agent API checks requests against it.
pub const AGENT_KEY: &str = "tether/agent-key";
/// `tether/project=<project name>`: the fleet project the server was created in. Set only by
/// fleets that declare `spec.projects`; such a fleet owns a server only where this label
/// names the project it is listed in.
pub const PROJECT: &str = "tether/project";
/// `tether/protect=true`: the agent was protected at its last applied spec.
pub const PROTECT: &str = "tether/protect";

/// `tether/retired=true`: the server was renamed aside (`<agent>-retired-<id>`) so a
/// replacement can take the agent's name; it is deleted once the replacement exists.
pub const RETIRED: &str = "tether/retired";

/// `tether/quarantine-grace=<seconds>`: the agent's own quarantine grace period, from its last
/// applied spec; without it the fleet's `spec.policy.quarantineGrace` applies.
pub const QUARANTINE_GRACE: &str = "tether/quarantine-grace";
/// `tether/quarantined-at=<unix seconds>`: when the server was powered off and renamed
/// `<agent>-quarantined-<id>` because its spec was removed.
pub const QUARANTINED_AT: &str = "tether/quarantined-at";
/// `tether/quarantine-commit=<short sha>`: the fleet commit that removed the spec.
pub const QUARANTINE_COMMIT: &str = "tether/quarantine-commit";
/// `tether/purge=true`: an operator confirmed (`tether agent purge`) that the quarantined server
/// may be deleted before its grace period ends.
pub const PURGE: &str = "tether/purge";

/// `tether/operation=<operation>.<step>`: a multi-step operation (resize, quarantine, restore)
/// is under way on the server and has reached `<step>`; written before the operation's first
/// mutation and removed by its last step, so the next pass finishes what a stopped one began.
pub const OPERATION: &str = "tether/operation";

/// `tether/heal-attempt=<n>`: the self-healing attempt last started on this server (1-based),
/// written before the remedy's first mutation so a kill cannot make it a free retry.
pub const HEAL_ATTEMPT: &str = "tether/heal-attempt";
/// `tether/heal-remedy=<remedy>`: the remedy of that attempt (`rekey`, `power-cycle`,
/// `replace`).
pub const HEAL_REMEDY: &str = "tether/heal-remedy";
/// `tether/heal-at=<unix seconds>`: when that attempt started.
pub const HEAL_AT: &str = "tether/heal-at";

/// `tether/runtime-halted=<hash>`: the [`runtime_hash`] of the runtime whose rollout failed on
/// this server (the canary or a wave member), written before the wave is rolled back, so the
/// halt survives a daemon killed before its status commit.
pub const RUNTIME_HALTED: &str = "tether/runtime-halted";

/// The name a server gets while it is quarantined.
pub fn quarantined_name(agent: &str, server_id: u64) -> String {
    let suffix = format!("-quarantined-{server_id}");
    let keep = 63usize.saturating_sub(suffix.len()).min(agent.len());
    format!("{}{suffix}", agent[..keep].trim_end_matches('-'))
}

/// The name a server gets while it is retired.
pub fn retired_name(agent: &str, server_id: u64) -> String {
    let suffix = format!("-retired-{server_id}");
    let keep = 63usize.saturating_sub(suffix.len()).min(agent.len());
    format!("{}{suffix}", agent[..keep].trim_end_matches('-'))
}

/// A short hash of everything that needs a new server when it changes: image, location, SSH
/// keys, a non-default `publicNet`, and what cloud-init gives the VM once (tags, hostname, identity), as
/// [`cloud_init::fingerprint`] describes it. The runtime version and env are not in it: they
/// are [`runtime_hash`]'s. 16 hex characters.
pub fn replacement_hash(agent: &Agent, fleet: &FleetSettings) -> String {
    spec_hash(agent, &cloud_init::fingerprint(agent, fleet))
}

/// The `tether/spec` hash as computed before runtime fields were delivered in place (it also
/// covered the runtime version and env): how servers created then are recognised.
pub fn legacy_replacement_hash(agent: &Agent, fleet: &FleetSettings) -> String {
    spec_hash(agent, &cloud_init::legacy_fingerprint(agent, fleet))
}

/// Image, location, the SSH keys joined by `,`, and the fingerprint, each ended by a NUL,
/// hashed without building the joined strings.
fn spec_hash(agent: &Agent, fingerprint: &str) -> String {
    let mut h = Sha256::new();
    h.update(agent.server.image.as_str().as_bytes());
    h.update([0]);
    h.update(agent.server.location.as_str().as_bytes());
    h.update([0]);
    for (i, key) in agent.server.ssh_keys.iter().enumerate() {
        if i > 0 {
            h.update(b",");
        }
        h.update(key.as_str().as_bytes());
    }
    h.update([0]);
    h.update(fingerprint.as_bytes());
    h.update([0]);
    let net = agent.server.public_net;
    if !net.is_default() {
        // Only a non-default publicNet is hashed, so servers created before it existed keep
        // their hash.
        h.update(format!("ipv4={},ipv6={}", net.ipv4, net.ipv6).as_bytes());
        h.update([0]);
    }
    short_hex(h)
}

/// A short hash of the runtime the on-VM agent applies in place: the version and the env.
/// 16 hex characters.
pub fn runtime_hash(agent: &Agent) -> String {
    let mut h = Sha256::new();
    h.update(agent.runtime.version.as_str().as_bytes());
    h.update([0]);
    for (key, value) in &agent.runtime.env {
        h.update(key.as_str().as_bytes());
        h.update([0]);
        h.update(value.as_str().as_bytes());
        h.update([0]);
    }
    short_hex(h)
}

/// The first 8 bytes of the digest as 16 lowercase hex characters.
fn short_hex(h: Sha256) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(16);
    for b in &h.finalize()[..8] {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Every label the agent's server should carry: the user's labels plus tether's own.
pub fn server_labels(agent: &Agent, fleet: &FleetSettings) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = agent
        .labels
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
        .collect();
    labels.insert(FLEET.to_owned(), fleet.name.as_str().to_owned());
    labels.insert(AGENT.to_owned(), agent.name.as_str().to_owned());
    labels.insert(
        SUBSCRIPTION.to_owned(),
        agent.subscription.as_str().to_owned(),
    );
    labels.insert(SPEC.to_owned(), replacement_hash(agent, fleet));
    labels.insert(RUNTIME.to_owned(), runtime_hash(agent));
    if agent.protect {
        labels.insert(PROTECT.to_owned(), "true".to_owned());
    }
    if let Some(grace) = agent.quarantine_grace {
        labels.insert(QUARANTINE_GRACE.to_owned(), grace.to_string());
    }
    labels
}

/// The label selector that lists a fleet's servers.
pub fn fleet_selector(fleet: &FleetSettings) -> String {
    format!("{FLEET}={}", fleet.name)
}
