//! Raw spec documents exactly as written: serde types that know every field name (so unknown
//! fields are caught with a suggestion) and keep each value's position. Validation into
//! [`crate::model`] happens in [`crate::validate`].

use crate::model::Power;
use crate::spanned::{Spanned, Text};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The only supported `apiVersion`.
pub const API_VERSION: &str = "tether/v1";

/// `agents/**/<name>.yaml`: one agent, that is one subscription's VM.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(
    title = "tether Agent",
    description = "One agent VM: one file under agents/."
)]
pub struct RawAgent {
    /// Always `tether/v1`.
    pub api_version: Text,
    /// Always `Agent`.
    pub kind: Text,
    /// Identity of the agent.
    pub metadata: RawAgentMetadata,
    /// What the agent's VM should look like.
    pub spec: RawAgentSpec,
}

/// `metadata` of an Agent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAgentMetadata {
    /// Unique in the fleet; a lowercase RFC 1123 label (at most 63 characters). It becomes the
    /// server name and the Tailscale hostname.
    pub name: Text,
    /// Copied onto the server. Hetzner's label rules apply; `tether/` and `hetzner.cloud/` are
    /// reserved prefixes.
    #[serde(default)]
    pub labels: BTreeMap<Text, Text>,
}

/// `spec` of an Agent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAgentSpec {
    /// The billing system's subscription id; unique in the fleet.
    pub subscription: Text,
    /// The server; any field left out comes from the fleet's `spec.defaults.server`.
    #[serde(default)]
    pub server: RawServer,
    /// Tailscale settings; tags default to the fleet's `spec.tailscale.tags`.
    #[serde(default)]
    pub tailscale: Option<RawAgentTailscale>,
    /// The agent runtime, rendered into cloud-init.
    pub runtime: RawRuntime,
    /// `on` (default) or `off`.
    #[serde(default)]
    pub power: Option<Spanned<Power>>,
    /// `true`: tether never deletes this agent's VM (default `false`).
    #[serde(default)]
    pub protect: Option<bool>,
    /// This agent's quarantine grace period, overriding the fleet's `spec.policy.quarantineGrace`
    /// (`24h`, `7d`, `off`, …); tether records it on the server as `tether/quarantine-grace`.
    #[serde(default)]
    pub quarantine_grace: Option<Text>,
}

/// A server description; every field is optional where defaults apply.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawServer {
    /// Hetzner server type, e.g. `cpx21`; must be in the fleet catalog.
    #[serde(rename = "type", default)]
    pub server_type: Option<Text>,
    /// Hetzner location, e.g. `fsn1`; must be in the fleet catalog.
    #[serde(default)]
    pub location: Option<Text>,
    /// Hetzner image, e.g. `ubuntu-24.04`; must be in the fleet catalog.
    #[serde(default)]
    pub image: Option<Text>,
    /// Names of SSH keys stored in the Hetzner project.
    #[serde(default)]
    pub ssh_keys: Option<Vec<Text>>,
    /// Agents only: the fleet project (`spec.projects`) the server must live in. Unpinned
    /// agents are placed by tether and stay where they are.
    #[serde(default)]
    pub project: Option<Text>,
    /// Public addresses: `{ipv4: true|false, ipv6: true|false}`, default both.
    #[serde(default)]
    pub public_net: Option<crate::network::RawPublicNet>,
}

/// `spec.tailscale` of an Agent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAgentTailscale {
    /// ACL tags for the device (`tag:...`); each must be allowed by the fleet.
    pub tags: Spanned<Vec<Text>>,
}

/// `spec.runtime` of an Agent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRuntime {
    /// The agent runtime version to install, e.g. `1.4.2`.
    pub version: Text,
    /// Environment for the agent process; values are always strings.
    #[serde(default)]
    pub env: BTreeMap<Text, Text>,
}

/// `fleet.yaml`: settings shared by every agent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(
    title = "tether Fleet",
    description = "Fleet-wide settings: fleet.yaml at the repository root."
)]
pub struct RawFleet {
    /// Always `tether/v1`.
    pub api_version: Text,
    /// Always `Fleet`.
    pub kind: Text,
    /// Identity of the fleet.
    pub metadata: RawFleetMetadata,
    /// Fleet settings.
    pub spec: RawFleetSpec,
}

/// `metadata` of the Fleet.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawFleetMetadata {
    /// A lowercase RFC 1123 label; the value of the `tether/fleet` ownership label.
    pub name: Text,
}

/// `spec` of the Fleet.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawFleetSpec {
    /// `true` pauses every change: tether still plans and reports drift, but applies nothing.
    #[serde(default)]
    pub suspend: Option<bool>,
    /// Defaults for every agent.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// The tailnet and the tags agents may carry.
    pub tailscale: RawFleetTailscale,
    /// Safety policy for deletions.
    #[serde(default)]
    pub policy: RawPolicy,
    /// What agents may ask for.
    pub catalog: RawCatalog,
    /// The Hetzner projects the fleet spreads over, each with its own token (from the daemon
    /// config) and capacity. Absent: one project, the single token's.
    #[serde(default)]
    pub projects: Option<Spanned<Vec<crate::projects::RawProject>>>,
    /// The fleet firewall tether manages and applies to every agent VM. Absent: tether manages
    /// no firewall. Present: inbound traffic is dropped except what `inbound` allows.
    #[serde(default)]
    pub firewall: Option<crate::network::RawFirewall>,
    /// Env variables whose values plans may show in clear: names (`LOG_LEVEL`) and `*`
    /// patterns (`OTEL_*`), at most 256. Every other env value is shown as `(hidden #…)`.
    #[serde(default)]
    pub public_env: Option<Spanned<Vec<Text>>>,
}

/// `spec.defaults` of the Fleet.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDefaults {
    /// Server fields used where an agent leaves them out.
    #[serde(default)]
    pub server: RawServer,
}

/// `spec.tailscale` of the Fleet.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawFleetTailscale {
    /// `-` (default): the credential's own tailnet.
    #[serde(default)]
    pub tailnet: Option<Text>,
    /// Tags agents may carry, and the default tags of an agent that names none.
    pub tags: Spanned<Vec<Text>>,
}

/// `spec.policy` of the Fleet.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPolicy {
    /// Delete servers whose spec is gone (default `false`: report them only).
    #[serde(default)]
    pub prune: Option<bool>,
    /// Most servers one run may delete (default 5).
    #[serde(default)]
    pub max_deletions_per_run: Option<u32>,
    /// Most servers one run may delete, in percent of the managed servers (default 10).
    #[serde(default)]
    pub max_deletion_percent: Option<Spanned<u32>>,
    /// Most servers deleted within any rolling hour, across runs (default 20).
    #[serde(default)]
    pub max_deletions_per_hour: Option<u32>,
    /// Most agents one run may disrupt: replace, resize or power off (default 5).
    #[serde(default)]
    pub max_disruptions_per_run: Option<u32>,
    /// Most agents one run may disrupt, in percent of the managed servers (default 10).
    #[serde(default)]
    pub max_disruption_percent: Option<Spanned<u32>>,
    /// `stripe`: delete a removed agent's server only once Stripe says its subscription ended
    /// (default: no confirmation).
    #[serde(default)]
    pub confirm_deletes: Option<Text>,
    /// How long a server whose spec was removed stays quarantined (powered off, its device
    /// deauthorized) before it is deleted: `24h` (default), `90m`, `7d`; `0` or `off` delete at
    /// once.
    #[serde(default)]
    pub quarantine_grace: Option<Text>,
    /// Self-healing: re-key or replace servers that never join the tailnet, power-cycle or
    /// replace those whose device went offline; bounded by attempts and backoff (on by default).
    #[serde(default)]
    pub heal: crate::heal::RawHeal,
}

/// `spec.catalog` of the Fleet.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCatalog {
    /// Server types agents may use.
    pub server_types: Spanned<Vec<Text>>,
    /// Locations agents may use.
    pub locations: Spanned<Vec<Text>>,
    /// Images agents may use.
    pub images: Spanned<Vec<Text>>,
}
