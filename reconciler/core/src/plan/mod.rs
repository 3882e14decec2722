//! The plan: desired fleet vs. observed inventory → a deterministic, hashable list of actions,
//! each with its reason, plus what was noticed and left alone. Pure: no I/O, no clock.
//!
//! Start at [`plan()`]. [`safety`] enforces the deletion budget and the shrink circuit breaker;
//! ([`Refusal`], why a plan may not be applied, is its); [`cost`] prices the plan; [`render`] draws it for people (text, Markdown), and the JSON
//! rendering is the [`Plan`]'s `Serialize` form (schema in `docs/plan.md`). Here: what goes in
//! ([`Observed`], [`Context`]) and the [`Action`]s; [`Note`] in `note.rs`; the plan as a value
//! ([`Plan`], [`Summary`]) in `value.rs`; the decisions: the fleet's in
//! `compute.rs`, one agent's in `agent.rs`.

mod agent;
mod compute;
pub mod confirm;
pub mod cost;
pub mod env;
pub mod fields;
pub mod heal;
mod inventory;
mod note;
pub mod offer;
pub mod projects;
pub mod quarantine;
pub mod render;
mod resize;
pub mod runtime;
pub mod safety;
mod value;

pub use compute::plan;
pub use inventory::{device_ownership, managed_servers};
pub use note::Note;
pub use quarantine::quarantined_servers;
pub use safety::Refusal;
pub use value::{Plan, Summary};

use crate::compute::{Euros, Server, ServerId};
use crate::tailnet::{Device, DeviceId};
use serde::Serialize;
use std::collections::BTreeMap;
use tether_schema::Fleet;

/// The version of the plan's JSON form: 2 added the field-level changes, the create fields,
/// the retired server's name and the disruption budget, and left the revision out of the hash.
pub const PLAN_VERSION: u32 = 2;

/// What tether observed: the fleet's servers, the tailnet's devices, server prices and the
/// catalog on offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Servers from Hetzner (tether re-checks ownership on each, whatever filter listed them).
    pub servers: Vec<Server>,
    /// Devices from Tailscale.
    pub devices: Vec<Device>,
    /// Monthly price per (server type, location).
    pub prices: BTreeMap<(String, String), Euros>,
    /// What Hetzner offers: server types, locations, images ([`offer::check`]).
    pub offer: offer::Offer,
}

/// Facts about the run that are not in the fleet or the inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The fleet commit being planned (shown, not hashed).
    pub revision: Option<String>,
    /// The fleet at the last applied revision (from the status branch's baseline): what the
    /// current servers were created from, for the old values of a replacement. Used for an
    /// agent only when it hashes to the server's `tether/spec` label.
    pub previous: Option<Fleet>,
    /// How many agents the last applied revision had, for the shrink circuit breaker.
    pub previous_agents: Option<usize>,
    /// `--allow-shrink`: the operator confirmed a large shrink.
    pub allow_shrink: bool,
    /// The fleet's device record from the status branch: device id → agent. Proof of
    /// ownership for devices whose server is gone.
    pub owned_devices: BTreeMap<DeviceId, String>,
    /// Servers this fleet deleted in the last hour, from the status branch; `None` when there
    /// is no record.
    pub recent_deletions: Option<usize>,
    /// Under `spec.policy.confirmDeletes`: what billing said about the subscriptions of
    /// servers whose spec is gone ([`confirm::subscriptions_to_confirm`]).
    pub subscriptions: BTreeMap<String, confirm::Confirmation>,
    /// The pass's time, against which quarantine grace periods are measured; `None`: no
    /// quarantined server is deleted for its grace period ending.
    pub now: Option<time::OffsetDateTime>,
    /// What the status branch remembers of each agent's self-healing ([`heal::Record`]).
    pub heal: BTreeMap<String, heal::Record>,
    /// The runtime rollout the daemon halted, from the status branch (`status/runtime.yaml`):
    /// its runtime is not rolled out again until the spec changes it.
    pub halted_rollout: Option<runtime::Halted>,
    /// The key of the short hashes of hidden env values ([`env::EnvKey`]): the process's own
    /// unless a test fixes it.
    pub env_key: env::EnvKey,
}

/// One change to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Action {
    /// Create the agent's server (with a fresh auth key at apply time).
    Create {
        /// Agent name (and server name).
        agent: String,
        /// Server type.
        server_type: String,
        /// Location.
        location: String,
        /// Image.
        image: String,
        /// Labels the server gets.
        labels: BTreeMap<String, String>,
        /// Tailscale tags the device advertises.
        tags: Vec<String>,
        /// SSH key names.
        ssh_keys: Vec<String>,
        /// Agent runtime version.
        runtime_version: String,
        /// The agent's environment, shown as [`env::EnvView::value`] decides.
        env: BTreeMap<String, String>,
        /// Why.
        reason: String,
    },
    /// Create a new server, then delete the old one and its devices.
    Replace {
        /// Agent name.
        agent: String,
        /// The server being replaced.
        server_id: ServerId,
        /// Every field that differs; those Hetzner cannot change in place force the replacement.
        changes: Vec<Change>,
        /// Devices of the old server, deleted after the new one is online.
        old_devices: Vec<DeviceId>,
        /// New server type.
        server_type: String,
        /// New location.
        location: String,
        /// New image.
        image: String,
        /// Labels the new server gets.
        labels: BTreeMap<String, String>,
    },
    /// Power off, change type, power on: downtime.
    Resize {
        /// Agent name.
        agent: String,
        /// Server.
        server_id: ServerId,
        /// Current type.
        from: String,
        /// Desired type.
        to: String,
    },
    /// Replace the server's labels.
    Relabel {
        /// Agent name.
        agent: String,
        /// Server.
        server_id: ServerId,
        /// Current labels.
        from: BTreeMap<String, String>,
        /// Desired labels.
        to: BTreeMap<String, String>,
    },
    /// Power the server on.
    PowerOn {
        /// Agent name.
        agent: String,
        /// Server.
        server_id: ServerId,
    },
    /// Power the server off.
    PowerOff {
        /// Agent name.
        agent: String,
        /// Server.
        server_id: ServerId,
    },
    /// Delete the server and its devices.
    Delete {
        /// Agent name from the server's labels.
        agent: String,
        /// Server.
        server_id: ServerId,
        /// The server's name (`<agent>-retired-<id>` for the old half of a replacement).
        server_name: String,
        /// Server type (for cost).
        server_type: String,
        /// Location (for cost).
        location: String,
        /// The agent's devices, deleted after the server.
        devices: Vec<DeviceId>,
        /// Why.
        reason: String,
    },
    /// Its spec was removed: power the server off, deauthorize its devices, rename it
    /// `<agent>-quarantined-<id>` and label it with the time and the commit; it is deleted once
    /// the grace period ends, or restored if the spec comes back.
    Quarantine {
        /// Agent name from the server's labels.
        agent: String,
        /// Server.
        server_id: ServerId,
        /// Server type (for cost).
        server_type: String,
        /// Location (for cost).
        location: String,
        /// The agent's devices, deauthorized.
        devices: Vec<DeviceId>,
        /// The fleet commit that removed the spec, as labelled (`tether/quarantine-commit`).
        commit: Option<String>,
        /// How long it waits before it is deleted (`24h`).
        grace: String,
        /// Why.
        reason: String,
    },
    /// The spec is back (same agent, same subscription): re-authorize the quarantined server's
    /// devices, give it back its name and labels, and power it on. Also what finishes a
    /// quarantine or restore left half done ([`crate::operation`]) once the spec is back.
    Restore {
        /// Agent name.
        agent: String,
        /// The quarantined server.
        server_id: ServerId,
        /// The name it gets: the agent's, or its quarantine name while a server this fleet
        /// does not own holds the agent's name.
        name: String,
        /// Its devices, re-authorized.
        devices: Vec<DeviceId>,
        /// Why.
        reason: String,
    },
    /// Delete a tailnet device.
    DeleteDevice {
        /// The agent (hostname) it belongs to.
        agent: String,
        /// Device.
        device_id: DeviceId,
        /// Its MagicDNS name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Self-healing ([`heal`]): re-key, power-cycle or replace a server that never joined the
    /// tailnet or whose device went offline.
    Heal {
        /// Agent name.
        agent: String,
        /// The server remedied.
        server_id: ServerId,
        /// What is done.
        remedy: heal::Remedy,
        /// Which attempt this is (1-based).
        attempt: u32,
        /// `spec.policy.heal.maxAttempts`.
        max_attempts: u32,
        /// The agent's devices (deleted with the old server by a replacement).
        old_devices: Vec<DeviceId>,
        /// Why: `re-key 2/3: never enrolled 17m after creation`.
        reason: String,
    },
    /// Deliver a new runtime (version, env) in place through the on-VM agent, in a
    /// health-gated wave: the server, its disk and its IPs are kept.
    UpdateRuntime {
        /// Agent name.
        agent: String,
        /// Server.
        server_id: ServerId,
        /// The version the agent was last told, when tether has a record of it.
        from: Option<String>,
        /// The version to run.
        to: String,
        /// The runtime fields that differ (env values hidden unless public).
        changes: Vec<Change>,
        /// The rollout wave: 1 is the canary, later waves double up to the disruption budget.
        wave: u32,
    },
}

/// One field of a replacement that differs, with its old and new value as shown to people
/// (env values shown as [`env::EnvView`] decides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The field: `location`, `image`, `server type`, `ssh keys`, `tags`, `runtime version`,
    /// `subscription`, `env.<NAME>`, `label.<key>`, or [`fields::UNRECORDED`].
    pub field: String,
    /// Current value; `None` when tether has no record of it ([`fields::UNKNOWN`]).
    pub from: Option<String>,
    /// Desired value.
    pub to: String,
    /// Hetzner cannot change it in place: this field is why the server is replaced.
    pub forces_replacement: bool,
}

impl Action {
    /// The agent the action is about.
    pub fn agent(&self) -> &str {
        match self {
            Action::Create { agent, .. }
            | Action::Replace { agent, .. }
            | Action::Resize { agent, .. }
            | Action::Relabel { agent, .. }
            | Action::PowerOn { agent, .. }
            | Action::PowerOff { agent, .. }
            | Action::Delete { agent, .. }
            | Action::Quarantine { agent, .. }
            | Action::Restore { agent, .. }
            | Action::DeleteDevice { agent, .. }
            | Action::Heal { agent, .. } => agent,
            Action::UpdateRuntime { agent, .. } => agent,
        }
    }

    /// The kind, as in the JSON rendering.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::Replace { .. } => "replace",
            Action::Resize { .. } => "resize",
            Action::Relabel { .. } => "relabel",
            Action::PowerOn { .. } => "power-on",
            Action::PowerOff { .. } => "power-off",
            Action::Delete { .. } => "delete",
            Action::Quarantine { .. } => "quarantine",
            Action::Restore { .. } => "restore",
            Action::DeleteDevice { .. } => "delete-device",
            Action::Heal { .. } => "heal",
            Action::UpdateRuntime { .. } => "update-runtime",
        }
    }

    /// Whether the action destroys a server.
    pub fn deletes_server(&self) -> bool {
        matches!(self, Action::Delete { .. })
    }

    fn order(&self) -> u8 {
        match self {
            Action::Create { .. } | Action::Restore { .. } => 0,
            Action::Replace { .. } => 1,
            Action::Resize { .. } => 2,
            Action::Relabel { .. } => 3,
            Action::PowerOn { .. } | Action::PowerOff { .. } | Action::Quarantine { .. } => 4,
            Action::Delete { .. } => 5,
            Action::DeleteDevice { .. } => 6,
            Action::Heal { .. } => 1,
            Action::UpdateRuntime { .. } => 7,
        }
    }
}

#[cfg(test)]
mod tests;
