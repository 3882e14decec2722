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

/// A Tailscale auth key id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AuthKeyId(pub String);

/// What to mint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuthKey {
    /// Description naming the agent.
    pub description: String,
    /// Tags devices enrolled with the key get.
    pub tags: Vec<String>,
    /// Lifetime.
    pub expiry_seconds: u64,
}

/// A freshly minted key.
#[derive(Debug, Clone)]
pub struct AuthKey {
    /// Id.
    pub id: AuthKeyId,
    /// The secret, returned only once.
    pub key: crate::secret::Secret<String>,
}

/// A Tailscale failure.
#[derive(Debug, thiserror::Error)]
#[error("tailscale {0}")]
pub struct Error(pub String);

/// The tailnet, as tether uses it.
pub trait Tailnet: Send + Sync {
    /// Devices carrying all `tags`.
    fn list_devices(
        &self,
        tags: &[String],
    ) -> impl std::future::Future<Output = Result<Vec<Device>, Error>> + Send;
    /// Deletes a device; gone already is success.
    fn delete_device(
        &self,
        id: &DeviceId,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send;
    /// Mints a single-use, pre-authorised, tagged key.
    fn create_auth_key(
        &self,
        new: &NewAuthKey,
    ) -> impl std::future::Future<Output = Result<AuthKey, Error>> + Send;
    /// Revokes a key; gone already is success.
    fn delete_auth_key(
        &self,
        id: &AuthKeyId,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send;
}
