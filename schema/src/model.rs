//! Validated fleet types: what the rest of tether works with. Built only by
//! [`crate::load_fleet`], so every value here has passed every rule in `docs/spec.md`.

use crate::names::{
    AgentName, EnvName, FleetName, ImageName, LabelKey, LabelValue, LocationName, RuntimeVersion,
    ServerTypeName, SshKeyName, Subscription, Tailnet, TailnetTag,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Labels as Hetzner stores them.
pub type Labels = BTreeMap<LabelKey, LabelValue>;

/// Whether the agent's server should be running.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Power {
    /// Running (the default).
    #[default]
    On,
    /// Powered off; the server and its disk are kept.
    Off,
}

/// The desired fleet: settings plus every agent, keyed by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fleet {
    /// Fleet-wide settings from `fleet.yaml`.
    pub settings: FleetSettings,
    /// Every agent, ordered by name.
    pub agents: BTreeMap<AgentName, Agent>,
}

/// Fleet-wide settings from `fleet.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetSettings {
    /// The fleet's name, the value of the `tether/fleet` label.
    pub name: FleetName,
    /// The tailnet to manage.
    pub tailnet: Tailnet,
    /// Tags agents may carry; also the default tags.
    pub tags: Vec<TailnetTag>,
    /// Deletion safety policy.
    pub policy: Policy,
    /// What agents may ask for.
    pub catalog: Catalog,
    /// Every change paused (`spec.suspend`): plans are made and reported, nothing is applied.
    pub suspend: bool,
    /// The Hetzner projects the fleet spreads over (`spec.projects`); empty: one implicit
    /// project, the single token's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<crate::projects::Project>,
    /// The fleet firewall (`spec.firewall`), when the fleet declares one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<crate::network::Firewall>,
    /// The env variables plans show in clear (`spec.publicEnv`); every other value is hidden.
    #[serde(skip_serializing_if = "crate::public_env::PublicEnv::is_empty")]
    pub public_env: crate::public_env::PublicEnv,
}

impl FleetSettings {
    /// The names of [`FleetSettings::projects`], in order: what the provider clients are built
    /// for (one per project; none: the single token's project).
    pub fn project_names(&self) -> Vec<String> {
        self.projects
            .iter()
            .map(|p| p.name.as_str().to_owned())
            .collect()
    }
}

/// Deletion and disruption safety policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Delete servers whose spec is gone.
    pub prune: bool,
    /// Most servers one run may delete.
    pub max_deletions_per_run: u32,
    /// Most servers one run may delete, in percent (0-100) of the managed servers.
    pub max_deletion_percent: u32,
    /// Most servers deleted within any rolling hour, across runs and processes.
    pub max_deletions_per_hour: u32,
    /// Most agents one run may disrupt (replace, resize, power off).
    pub max_disruptions_per_run: u32,
    /// Most agents one run may disrupt, in percent (0-100) of the managed servers.
    pub max_disruption_percent: u32,
    /// Seconds a server whose spec was removed stays quarantined (powered off, device
    /// deauthorized) before it is deleted; 0: deleted at once.
    pub quarantine_grace: u64,
    /// Who must confirm that a removed agent's subscription ended before its server is deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm_deletes: Option<ConfirmDeletes>,
    /// Self-healing of servers that never joined and devices that went offline.
    pub heal: crate::heal::HealPolicy,
}

/// The system of record that confirms deletes (`spec.policy.confirmDeletes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfirmDeletes {
    /// Stripe's subscription lookup: the subscription's status must be `canceled` or
    /// `incomplete_expired`.
    Stripe,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            prune: false,
            max_deletions_per_run: 5,
            max_deletion_percent: 10,
            max_deletions_per_hour: 20,
            max_disruptions_per_run: 5,
            max_disruption_percent: 10,
            quarantine_grace: crate::grace::DEFAULT_SECONDS,
            confirm_deletes: None,
            heal: crate::heal::HealPolicy::default(),
        }
    }
}

/// What agents may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    /// Allowed server types.
    pub server_types: Vec<ServerTypeName>,
    /// Allowed locations.
    pub locations: Vec<LocationName>,
    /// Allowed images.
    pub images: Vec<ImageName>,
}

/// One agent: one subscription's VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    /// The agent's name: server name and Tailscale hostname.
    pub name: AgentName,
    /// Repository-relative path of the spec file.
    pub source: String,
    /// User labels copied onto the server.
    pub labels: Labels,
    /// Billing subscription id.
    pub subscription: Subscription,
    /// The server, with fleet defaults applied.
    pub server: ServerSpec,
    /// Tailscale tags, with fleet defaults applied.
    pub tags: Vec<TailnetTag>,
    /// The runtime rendered into cloud-init.
    pub runtime: Runtime,
    /// Whether the server should run.
    pub power: Power,
    /// Whether tether must never delete this agent's server.
    pub protect: bool,
    /// The agent's own quarantine grace period in seconds, overriding the fleet's.
    pub quarantine_grace: Option<u64>,
}

/// A fully resolved server description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// Hetzner server type.
    pub server_type: ServerTypeName,
    /// Hetzner location.
    pub location: LocationName,
    /// Hetzner image.
    pub image: ImageName,
    /// SSH key names, in the order written.
    pub ssh_keys: Vec<SshKeyName>,
    /// The fleet project the agent is pinned to (`spec.server.project`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<crate::names::ProjectName>,
    /// Public addresses (left out when both, the default).
    #[serde(skip_serializing_if = "crate::network::PublicNet::is_default")]
    pub public_net: crate::network::PublicNet,
}

/// The agent runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runtime {
    /// Version to install.
    pub version: RuntimeVersion,
    /// Environment for the agent process.
    pub env: BTreeMap<EnvName, String>,
}
