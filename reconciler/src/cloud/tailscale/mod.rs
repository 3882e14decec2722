//! Tailscale API v2 client (being built on the `tailscale` branch).

use serde::Serialize;

/// A Tailscale device id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DeviceId(pub String);

/// A device in the tailnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Id.
    pub id: DeviceId,
    /// MagicDNS name.
    pub name: String,
    /// Machine hostname.
    pub hostname: String,
    /// Tailnet addresses.
    pub addresses: Vec<String>,
    /// ACL tags.
    pub tags: Vec<String>,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Last contact with the control plane, when offline.
    pub last_seen: Option<String>,
    /// Online signal.
    pub connected_to_control: bool,
}
