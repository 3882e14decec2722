//! Tailscale's domain types, as tether sees them: a tailnet's [`Device`]s and auth keys
//! ([`AuthKey`], [`NewAuthKey`], [`CreatedAuthKey`]). The `Tailnet` trait over them and the
//! API's JSON live in the product crate (`tether::cloud::tailscale`).

use crate::secret::Secret;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;
use tether_schema::names::{AgentName, TailnetTag};

/// A device id: the API's preferred `nodeId` (e.g. `n292kg92CNTRL`). The legacy numeric id is
/// accepted by the API wherever this is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DeviceId(pub String);

/// An auth key id, e.g. `k123456CNTRL`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AuthKeyId(pub String);

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for AuthKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A device (node) in the tailnet, as tether sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// The preferred id (`nodeId`).
    pub id: DeviceId,
    /// The legacy numeric id.
    pub legacy_id: String,
    /// MagicDNS name, e.g. `acme-prod.tail1234.ts.net`.
    pub name: String,
    /// Machine name: the agent name for tether's devices.
    pub hostname: String,
    /// Tailscale addresses (one IPv4 in 100.64.0.0/10, one IPv6 in fd7a:115c:a1e0::/48).
    pub addresses: Vec<IpAddr>,
    /// Registering user; for tagged devices, the tagging identity.
    pub user: String,
    /// ACL tags, as the API reports them (they may not all obey tether's tag rule).
    pub tags: Vec<String>,
    /// Whether the device is approved.
    pub authorized: bool,
    /// Whether the device holds a connection to the control plane: the online signal.
    pub online: bool,
    /// When the device was last connected, RFC 3339; `None` while online or never seen.
    pub last_seen: Option<String>,
    /// When the device joined, RFC 3339 (empty for external devices).
    pub created: String,
    /// Node key expiry, RFC 3339; `None` when key expiry is disabled.
    pub expires: Option<String>,
    /// Whether the device is ephemeral (removed by Tailscale once inactive).
    pub ephemeral: bool,
    /// Whether the device is shared in from another tailnet.
    pub external: bool,
    /// Operating system.
    pub os: String,
    /// Tailscale client version.
    pub client_version: String,
    /// Approved subnet routes: only when listed with [`DeviceQuery::all_fields`].
    pub enabled_routes: Option<Vec<String>>,
}

/// Which devices to list: every condition must hold (the API's filters are AND-combined).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceQuery {
    /// Devices carrying every one of these tags.
    pub tags: Vec<TailnetTag>,
    /// Devices with exactly this hostname.
    pub hostname: Option<String>,
    /// Ask for `fields=all` (routes, connectivity) instead of the default fields.
    pub all_fields: bool,
}

/// An auth key's metadata. Its secret is only ever seen once, in [`CreatedAuthKey`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthKey {
    /// Key id.
    pub id: AuthKeyId,
    /// Free text naming what the key is for.
    pub description: String,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Expiry time, RFC 3339.
    pub expires: String,
    /// Whether the key can register more than one device.
    pub reusable: bool,
    /// Whether its devices are ephemeral.
    pub ephemeral: bool,
    /// Whether its devices need no approval.
    pub preauthorized: bool,
    /// Tags its devices get.
    pub tags: Vec<String>,
    /// True once revoked, expired or used up.
    pub invalid: bool,
    /// When it was revoked, RFC 3339.
    pub revoked: Option<String>,
}

/// A new auth key for one agent.
///
/// tether's keys are always single-use, pre-authorized and not ephemeral: one key, one VM, no
/// approval step, and the device survives reboots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuthKey {
    /// Description; `tether::cloud::tailscale::key_description` makes it acceptable to the API.
    pub description: String,
    /// Tags the device gets.
    pub tags: Vec<TailnetTag>,
    /// Lifetime; time enough for the VM to boot.
    pub expiry: Duration,
}

impl NewAuthKey {
    /// The key for `agent`'s VM, valid for one hour.
    pub fn for_agent(agent: &AgentName, tags: Vec<TailnetTag>) -> NewAuthKey {
        NewAuthKey {
            description: format!("tether {agent}"),
            tags,
            expiry: Duration::from_secs(3600),
        }
    }
}

/// A key just created, with its secret: the only time the API reveals it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedAuthKey {
    /// Its metadata.
    pub key: AuthKey,
    /// The secret (`tskey-auth-…`), for the VM's cloud-init only.
    pub secret: Secret<String>,
}
