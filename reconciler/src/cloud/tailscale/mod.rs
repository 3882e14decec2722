//! Tailscale, as tether uses it: the [`Tailnet`] trait over plain domain types ([`Device`],
//! [`AuthKey`], [`NewAuthKey`]), and [`Client`], its implementation over the API v2.
//!
//! Start at [`Tailnet`]; configure a [`Client`] with [`Config::from_env`]. The API's JSON lives
//! in [`wire`]; credentials and the OAuth token cache in [`auth`]; failures and their retry
//! classification in [`Error`]. `docs/tailscale.md` records the behaviour this module relies on.

pub mod auth;
mod client;
#[cfg(test)]
mod emulator_tests;
mod error;
#[cfg(test)]
mod tests;
pub mod wire;

pub use auth::{Config, ConfigError, Credentials};
pub use client::Client;
pub use error::Error;

use crate::secret::Secret;
use serde::Serialize;
use std::fmt;
use std::future::Future;
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
    /// Description; [`key_description`] makes it acceptable to the API.
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

/// Tailscale, as tether uses it. The real implementation is [`Client`]; the sandbox emulator
/// serves the same API.
pub trait Tailnet: Send + Sync {
    /// Every device matching `query`.
    fn list_devices(
        &self,
        query: &DeviceQuery,
    ) -> impl Future<Output = Result<Vec<Device>, Error>> + Send;
    /// The device with `id`, or `None` when it does not exist.
    fn get_device(
        &self,
        id: &DeviceId,
    ) -> impl Future<Output = Result<Option<Device>, Error>> + Send;
    /// Removes the device; `false` when it was already gone.
    fn delete_device(&self, id: &DeviceId) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Replaces the device's tags.
    fn set_tags(
        &self,
        id: &DeviceId,
        tags: &[TailnetTag],
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Authorizes the device, or revokes its authorization (`false`): a deauthorized node stays
    /// in the tailnet's device list but may not talk to anyone until it is authorized again.
    fn set_authorized(
        &self,
        id: &DeviceId,
        authorized: bool,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Creates a single-use, pre-authorized, tagged auth key. Never repeats the request after
    /// an unclear outcome: when the error [`Error::may_have_applied`], the key may exist, and
    /// the caller finds it by `new.description` (see `crate::apply::keys`).
    fn create_auth_key(
        &self,
        new: &NewAuthKey,
    ) -> impl Future<Output = Result<CreatedAuthKey, Error>> + Send;
    /// The keys the credential can see (without secrets).
    fn list_keys(&self) -> impl Future<Output = Result<Vec<AuthKey>, Error>> + Send;
    /// The key with `id`, or `None` when it does not exist.
    fn get_key(
        &self,
        id: &AuthKeyId,
    ) -> impl Future<Output = Result<Option<AuthKey>, Error>> + Send;
    /// Revokes the key; `false` when it did not exist.
    fn delete_key(&self, id: &AuthKeyId) -> impl Future<Output = Result<bool, Error>> + Send;
}

/// Longest key description the API accepts.
pub const MAX_DESCRIPTION_LEN: usize = 50;

/// `text` as a key description the API accepts: at most 50 characters, only ASCII letters,
/// digits, hyphens and spaces (anything else becomes a hyphen).
pub fn key_description(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == ' ' {
                c
            } else {
                '-'
            }
        })
        .take(MAX_DESCRIPTION_LEN)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

/// Whether `text` is a description the API accepts as it is.
pub fn is_valid_description(text: &str) -> bool {
    key_description(text) == text
}

/// The API's "no expiry" time.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl TryFrom<wire::Device> for Device {
    type Error = String;

    fn try_from(d: wire::Device) -> Result<Device, String> {
        let addresses = d
            .addresses
            .iter()
            .map(|a| {
                a.parse::<IpAddr>()
                    .map_err(|_| format!("device {}: address `{a}` is not an IP", d.node_id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let expires = (!d.key_expiry_disabled && !d.expires.is_empty() && d.expires != ZERO_TIME)
            .then_some(d.expires);
        Ok(Device {
            id: DeviceId(d.node_id),
            legacy_id: d.id,
            name: d.name,
            hostname: d.hostname,
            addresses,
            user: d.user,
            tags: d.tags,
            authorized: d.authorized,
            online: d.connected_to_control,
            last_seen: d.last_seen.filter(|s| !s.is_empty()),
            created: d.created,
            expires,
            ephemeral: d.is_ephemeral,
            external: d.is_external,
            os: d.os,
            client_version: d.client_version,
            enabled_routes: d.enabled_routes,
        })
    }
}

impl From<wire::Key> for AuthKey {
    fn from(k: wire::Key) -> AuthKey {
        let create = k.capabilities.devices.create;
        AuthKey {
            id: AuthKeyId(k.id),
            description: k.description,
            created: k.created,
            expires: k.expires,
            reusable: create.reusable,
            ephemeral: create.ephemeral,
            preauthorized: create.preauthorized,
            tags: create.tags,
            invalid: k.invalid,
            revoked: k.revoked.filter(|s| !s.is_empty()),
        }
    }
}
