//! Hetzner Cloud's domain types, as tether sees them: [`Server`] and its [`ServerStatus`],
//! [`Action`], what a create needs ([`NewServer`]) and returns ([`Created`]), and the catalog
//! ([`ServerType`] with its prices in [`Euros`], [`Location`], [`Image`], [`SshKey`]). The
//! `Compute` trait over them and the client's JSON live in the product crate (`tether::cloud`).

use crate::secret::Secret;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// A Hetzner server id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ServerId(pub u64);

/// A Hetzner action id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ActionId(pub u64);

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A server's lifecycle state, as Hetzner reports it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ServerStatus {
    /// Being created.
    Initializing,
    /// Booting.
    Starting,
    /// Running.
    Running,
    /// Shutting down.
    Stopping,
    /// Powered off.
    Off,
    /// Being deleted.
    Deleting,
    /// Moving between hosts.
    Migrating,
    /// Being rebuilt.
    Rebuilding,
    /// Anything else.
    Unknown,
}

/// A server as tether sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    /// Hetzner id.
    pub id: ServerId,
    /// Name (unique per project).
    pub name: String,
    /// Lifecycle state.
    pub status: ServerStatus,
    /// Server type name, e.g. `cpx21`.
    pub server_type: String,
    /// Location name, e.g. `fsn1`.
    pub location: String,
    /// Image name, when the server was created from a named image.
    pub image: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Public IPv4 address.
    pub ipv4: Option<String>,
    /// Public IPv6 network.
    pub ipv6: Option<String>,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Whether delete protection is on.
    pub delete_protected: bool,
    /// Whether rebuild protection is on: Hetzner refuses a rebuild (a re-key) with `protected`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rebuild_protected: bool,
    /// The primary disk in GB (Hetzner's `primary_disk_size`), when reported: a type change
    /// can keep or grow it, never shrink it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_gb: Option<u64>,
    /// The fleet project it was listed in (`tether::cloud::projects::Projects`); `None` with one token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// The state of a Hetzner action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "status")]
pub enum ActionStatus {
    /// Still running.
    Running,
    /// Finished successfully.
    Success,
    /// Failed.
    Error {
        /// Error code.
        code: String,
        /// Error message.
        message: String,
    },
}

/// An asynchronous Hetzner action (create, delete, power on, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// Action id: recorded in status commits.
    pub id: ActionId,
    /// What it does, e.g. `create_server`.
    pub command: String,
    /// Its state.
    pub status: ActionStatus,
    /// Percent done.
    pub progress: u8,
}

impl Action {
    /// Whether the action has finished, successfully or not.
    pub fn is_done(&self) -> bool {
        self.status != ActionStatus::Running
    }
}

/// Everything needed to create a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServer {
    /// Name (the agent name).
    pub name: String,
    /// Server type name.
    pub server_type: String,
    /// Image name.
    pub image: String,
    /// Location name.
    pub location: String,
    /// SSH key names.
    pub ssh_keys: Vec<String>,
    /// cloud-init; secret because it embeds a Tailscale auth key.
    pub user_data: Option<Secret<String>>,
    /// Labels, including tether's ownership labels.
    pub labels: BTreeMap<String, String>,
    /// Power on once created (Hetzner's default).
    pub start_after_create: bool,
    /// The fleet project to create it in (`tether::cloud::projects::Projects`); `None` with one token.
    pub project: Option<String>,
    /// Which public addresses it gets (`publicNet`; both by default).
    pub public_net: tether_schema::network::PublicNet,
}

/// The result of a create call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The new server, as first reported (`initializing`).
    pub server: Server,
    /// The `create_server` action.
    pub action: Action,
    /// Follow-up actions (e.g. `start_server`).
    pub next_actions: Vec<Action>,
    /// Whether an earlier attempt with an unclear outcome had created the server and this call
    /// adopted it instead of creating another.
    pub adopted: bool,
}

/// A price in euros, held exactly in ten-thousandths of a euro.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Euros(pub i64);

impl Euros {
    /// Parses Hetzner's decimal strings, e.g. `"4.5100000000"`.
    pub fn parse(text: &str) -> Option<Euros> {
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        let negative = int.starts_with('-');
        let whole: i64 = int.trim_start_matches('-').parse().ok()?;
        let mut digits: String = frac.chars().take(4).collect();
        while digits.len() < 4 {
            digits.push('0');
        }
        let part: i64 = digits.parse().ok()?;
        let value = whole * 10_000 + part;
        Some(Euros(if negative { -value } else { value }))
    }
}

impl fmt::Display for Euros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = (self.0.abs() + 50) / 100;
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}€{}.{:02}", cents / 100, cents % 100)
    }
}

/// A server type with its prices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerType {
    /// Name, e.g. `cpx21`.
    pub name: String,
    /// vCPUs.
    pub cores: u32,
    /// Disk in GB.
    pub disk_gb: u64,
    /// Where the disk lives: `local` or `network`.
    pub storage_type: String,
    /// CPU architecture: `x86` or `arm`.
    pub architecture: String,
    /// When Hetzner deprecated the type: the date after which no new server can have it.
    pub deprecated_after: Option<String>,
    /// The locations offering it for new servers (not deprecated there).
    pub locations: Vec<String>,
    /// Monthly gross price per location name.
    pub monthly_price: BTreeMap<String, Euros>,
}

/// A location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Name, e.g. `fsn1`.
    pub name: String,
    /// Network zone, e.g. `eu-central`.
    pub network_zone: String,
}

/// An image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    /// Id.
    pub id: u64,
    /// Name (system images only).
    pub name: Option<String>,
    /// Operating system, e.g. `ubuntu`.
    pub os_flavor: String,
}

/// An SSH key stored in the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshKey {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// MD5 fingerprint.
    pub fingerprint: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euros_parse_hetzner_decimals_exactly() {
        assert_eq!(Euros::parse("4.5100000000"), Some(Euros(45_100)));
        assert_eq!(Euros::parse("12"), Some(Euros(120_000)));
        assert_eq!(Euros::parse("0.0070"), Some(Euros(70)));
        assert_eq!(Euros::parse("x"), None);
        assert_eq!(Euros(124_000).to_string(), "€12.40");
        assert_eq!(Euros(-45_100).to_string(), "-€4.51");
    }
}
