//! Tailscale, as tether uses it: the [`Tailnet`] trait over plain domain types ([`Device`],
//! [`AuthKey`], [`NewAuthKey`]: they live in the pure core, `tether_core::tailnet`, and are
//! re-exported here), and [`Client`], its implementation over the API v2.
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

pub use tether_core::tailnet::{
    AuthKey, AuthKeyId, CreatedAuthKey, Device, DeviceId, DeviceQuery, NewAuthKey,
};

use std::future::Future;
use std::net::IpAddr;
use tether_schema::names::TailnetTag;

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
