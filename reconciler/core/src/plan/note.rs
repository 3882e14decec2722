//! [`Note`]: something the planner noticed and deliberately left alone, with its reason.

use crate::compute::ServerId;
use crate::tailnet::DeviceId;
use serde::Serialize;

/// Something noticed and deliberately left alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Note {
    /// Servers without this fleet's label: never touched.
    Unmanaged {
        /// How many.
        count: usize,
        /// Their names.
        names: Vec<String>,
    },
    /// A server of the fleet whose agent's spec is gone, kept.
    OrphanKept {
        /// Agent from the server's labels.
        agent: String,
        /// Server.
        server_id: ServerId,
        /// Why it is kept.
        reason: String,
    },
    /// The agent's server runs but no device of it is online.
    Unhealthy {
        /// Agent.
        agent: String,
        /// Server.
        server_id: ServerId,
    },
    /// The server is in a transition tether waits out (e.g. `deleting`).
    Waiting {
        /// Agent.
        agent: String,
        /// Server.
        server_id: ServerId,
        /// Its status.
        status: String,
    },
    /// A change held back by a budget; a later run makes it.
    Deferred {
        /// Agent.
        agent: String,
        /// The action's kind.
        action: String,
        /// Which budget, and how much of it is in use.
        reason: String,
    },
    /// The spec asks for a change only a new server can make, but the server is protected.
    ReplaceBlocked {
        /// Agent.
        agent: String,
        /// Server.
        server_id: ServerId,
        /// The fields that differ.
        fields: Vec<String>,
    },
    /// The spec asks for a server type Hetzner cannot change to in place (a smaller disk, another
    /// storage type or architecture) and the server is protected, so it is not replaced either.
    ResizeBlocked {
        /// Agent.
        agent: String,
        /// Server.
        server_id: ServerId,
        /// The server's type.
        from: String,
        /// The type the spec asks for.
        to: String,
        /// Why Hetzner refuses the change.
        reason: String,
    },
    /// A server has the agent's name but is not this fleet's: tether neither creates another
    /// (the name is taken) nor adopts it.
    NameTaken {
        /// Agent.
        agent: String,
        /// The other server.
        server_id: ServerId,
    },
    /// The agent's server is this fleet's but keeps its quarantine name: a server the fleet does
    /// not own holds the agent's name. Reported, never resolved by deleting either server.
    NameHeld {
        /// Agent.
        agent: String,
        /// The agent's server.
        server_id: ServerId,
        /// The name it keeps.
        name: String,
        /// The other server.
        other_id: ServerId,
    },
    /// A device with one of this fleet's agent names that tether cannot prove it owns.
    DeviceNotOwned {
        /// Agent (the device's hostname).
        agent: String,
        /// Device.
        device_id: DeviceId,
    },
    /// A quarantined server waiting for its grace period to end (or its spec to come back).
    Quarantined {
        /// Agent from the server's labels.
        agent: String,
        /// Server.
        server_id: ServerId,
        /// When it entered quarantine, RFC 3339.
        since: String,
        /// The fleet commit that removed the spec, when labelled.
        commit: Option<String>,
        /// When it will be deleted, RFC 3339 (inside the deletion budgets, `policy.prune` on).
        delete_after: String,
    },
    /// A server type / location pair without a known price.
    PriceUnknown {
        /// Server type.
        server_type: String,
        /// Location.
        location: String,
    },
    /// Self-healing is held for this pass: the device listing looks partial ([`heal::hold`](super::heal::hold)).
    HealHeld {
        /// Why.
        reason: String,
    },
    /// An agent's problem seen by self-healing and not remedied in this pass: counted, backing
    /// off, or given up on.
    Healing {
        /// Agent.
        agent: String,
        /// Server.
        server_id: ServerId,
        /// What was seen and what happens next.
        message: String,
        /// The attempts are used up: the agent is failed.
        failed: bool,
    },
    /// The agent's runtime update is held: its rollout was halted and rolled back.
    RolloutHalted {
        /// Agent.
        agent: String,
        /// The version that failed.
        version: String,
        /// Why the rollout was halted.
        reason: String,
    },
}
