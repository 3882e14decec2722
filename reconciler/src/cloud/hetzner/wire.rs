//! Hetzner Cloud JSON, exactly as the API sends it (only the fields tether reads), and the
//! conversions into tether's domain types in [`crate::cloud`].

use crate::cloud::{self, ActionId, ActionStatus, Euros, ServerId, ServerStatus};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `{"error": {...}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// The body of an API error.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `uniqueness_error`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Code-specific details (may be null).
    #[serde(default)]
    pub details: serde_json::Value,
}

/// `meta` of a list response.
#[derive(Debug, Deserialize)]
pub struct Meta {
    /// Pagination state.
    pub pagination: Pagination,
}

/// `meta.pagination`.
#[derive(Debug, Deserialize)]
pub struct Pagination {
    /// The next page, if any.
    pub next_page: Option<u32>,
    /// The last page, when the API knows it (it may send `null`).
    #[serde(default)]
    pub last_page: Option<u32>,
}

/// A named reference (`{"name": ...}`) inside another object.
#[derive(Debug, Deserialize)]
pub struct Named {
    /// The name.
    pub name: String,
}

/// An image reference; non-system images have no name.
#[derive(Debug, Deserialize)]
pub struct ImageRef {
    /// The name, for system images.
    pub name: Option<String>,
}

/// `datacenter` of a server (deprecated; used when `location` is absent).
#[derive(Debug, Deserialize)]
pub struct Datacenter {
    /// The datacenter's location.
    pub location: Named,
}

/// An address block of `public_net`.
#[derive(Debug, Deserialize)]
pub struct Ip {
    /// Address or network.
    pub ip: String,
}

/// `public_net` of a server.
#[derive(Debug, Deserialize)]
pub struct PublicNet {
    /// IPv4, if enabled.
    pub ipv4: Option<Ip>,
    /// IPv6 network, if enabled.
    pub ipv6: Option<Ip>,
}

/// `protection` of a server.
#[derive(Debug, Deserialize)]
pub struct Protection {
    /// Delete protection.
    pub delete: bool,
    /// Rebuild protection.
    #[serde(default)]
    pub rebuild: bool,
}

/// A server.
#[derive(Debug, Deserialize)]
pub struct Server {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Status string.
    pub status: String,
    /// Creation time.
    pub created: String,
    /// Public addresses.
    pub public_net: PublicNet,
    /// Server type.
    pub server_type: Named,
    /// Location (newer responses).
    #[serde(default)]
    pub location: Option<Named>,
    /// Datacenter (older responses).
    #[serde(default)]
    pub datacenter: Option<Datacenter>,
    /// Image.
    pub image: Option<ImageRef>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Protection flags.
    pub protection: Protection,
    /// The primary disk in GB.
    #[serde(default)]
    pub primary_disk_size: Option<u64>,
}

/// The error of a failed action.
#[derive(Debug, Deserialize)]
pub struct ActionError {
    /// Code.
    pub code: String,
    /// Message.
    pub message: String,
}

/// An action.
#[derive(Debug, Deserialize)]
pub struct Action {
    /// Id.
    pub id: u64,
    /// Command, e.g. `create_server`.
    pub command: String,
    /// `running`, `success` or `error`.
    pub status: String,
    /// Percent done.
    #[serde(default)]
    pub progress: u8,
    /// Set when the action failed.
    pub error: Option<ActionError>,
}

/// `{"server": ...}`.
#[derive(Debug, Deserialize)]
pub struct ServerResponse {
    /// The server.
    pub server: Server,
}

/// `GET /servers`.
#[derive(Debug, Deserialize)]
pub struct ServersResponse {
    /// One page of servers.
    pub servers: Vec<Server>,
    /// Pagination.
    pub meta: Meta,
}

/// `POST /servers`.
#[derive(Debug, Deserialize)]
pub struct CreateServerResponse {
    /// The new server.
    pub server: Server,
    /// The create action.
    pub action: Action,
    /// Follow-up actions.
    #[serde(default)]
    pub next_actions: Vec<Action>,
}

/// `{"action": ...}`.
#[derive(Debug, Deserialize)]
pub struct ActionResponse {
    /// The action.
    pub action: Action,
}

/// `GET /actions` and `GET /servers/{id}/actions`.
#[derive(Debug, Deserialize)]
pub struct ActionsResponse {
    /// One page of actions.
    pub actions: Vec<Action>,
    /// Pagination.
    pub meta: Meta,
}

/// A price with net and gross amounts as decimal strings.
#[derive(Debug, Deserialize)]
pub struct Amount {
    /// Gross amount, e.g. `"8.4900000000"`.
    pub gross: String,
}

/// A server type's price in one location.
#[derive(Debug, Deserialize)]
pub struct Price {
    /// Location name.
    pub location: String,
    /// Monthly price.
    pub price_monthly: Amount,
}

/// A server type.
#[derive(Debug, Deserialize)]
pub struct ServerType {
    /// Name.
    pub name: String,
    /// vCPUs.
    pub cores: u32,
    /// Disk in GB.
    pub disk: f64,
    /// `local` or `network`.
    #[serde(default)]
    pub storage_type: String,
    /// `x86` or `arm`.
    #[serde(default)]
    pub architecture: String,
    /// Prices per location.
    pub prices: Vec<Price>,
    /// Set when Hetzner deprecated the type (it is then phased out of every location).
    #[serde(default)]
    pub deprecation: Option<Deprecation>,
    /// The locations the type is offered in, each possibly deprecated there.
    #[serde(default)]
    pub locations: Vec<TypeLocation>,
}

/// A deprecation notice: announced, and unavailable for new servers after a date.
#[derive(Debug, Deserialize)]
pub struct Deprecation {
    /// After this (RFC 3339) no new server can be created with it.
    pub unavailable_after: String,
}

/// A location a server type is offered in.
#[derive(Debug, Deserialize)]
pub struct TypeLocation {
    /// Location name.
    pub name: String,
    /// Set when the type is being phased out of this location.
    #[serde(default)]
    pub deprecation: Option<Deprecation>,
}

/// `GET /server_types`.
#[derive(Debug, Deserialize)]
pub struct ServerTypesResponse {
    /// One page.
    pub server_types: Vec<ServerType>,
    /// Pagination.
    pub meta: Meta,
}

/// A location.
#[derive(Debug, Deserialize)]
pub struct Location {
    /// Name.
    pub name: String,
    /// Network zone.
    pub network_zone: String,
}

/// `GET /locations`.
#[derive(Debug, Deserialize)]
pub struct LocationsResponse {
    /// One page.
    pub locations: Vec<Location>,
    /// Pagination.
    pub meta: Meta,
}

/// An image.
#[derive(Debug, Deserialize)]
pub struct Image {
    /// Id.
    pub id: u64,
    /// Name (system images).
    pub name: Option<String>,
    /// OS flavour.
    pub os_flavor: String,
}

/// `GET /images`.
#[derive(Debug, Deserialize)]
pub struct ImagesResponse {
    /// One page.
    pub images: Vec<Image>,
    /// Pagination.
    pub meta: Meta,
}

/// An SSH key.
#[derive(Debug, Deserialize)]
pub struct SshKey {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Fingerprint.
    pub fingerprint: String,
}

/// `GET /ssh_keys`.
#[derive(Debug, Deserialize)]
pub struct SshKeysResponse {
    /// One page.
    pub ssh_keys: Vec<SshKey>,
    /// Pagination.
    pub meta: Meta,
}

impl From<Server> for cloud::Server {
    fn from(s: Server) -> Self {
        let location = s
            .location
            .map(|l| l.name)
            .or(s.datacenter.map(|d| d.location.name))
            .unwrap_or_default();
        cloud::Server {
            id: ServerId(s.id),
            name: s.name,
            status: status(&s.status),
            server_type: s.server_type.name,
            location,
            image: s.image.and_then(|i| i.name),
            labels: s.labels,
            ipv4: s.public_net.ipv4.map(|i| i.ip),
            ipv6: s.public_net.ipv6.map(|i| i.ip),
            created: s.created,
            delete_protected: s.protection.delete,
            rebuild_protected: s.protection.rebuild,
            disk_gb: s.primary_disk_size,
            project: None,
        }
    }
}

fn status(text: &str) -> ServerStatus {
    match text {
        "initializing" => ServerStatus::Initializing,
        "starting" => ServerStatus::Starting,
        "running" => ServerStatus::Running,
        "stopping" => ServerStatus::Stopping,
        "off" => ServerStatus::Off,
        "deleting" => ServerStatus::Deleting,
        "migrating" => ServerStatus::Migrating,
        "rebuilding" => ServerStatus::Rebuilding,
        _ => ServerStatus::Unknown,
    }
}

impl From<Action> for cloud::Action {
    fn from(a: Action) -> Self {
        let status = match (a.status.as_str(), a.error) {
            ("running", _) => ActionStatus::Running,
            ("success", _) => ActionStatus::Success,
            (_, Some(e)) => ActionStatus::Error {
                code: e.code,
                message: e.message,
            },
            (other, None) => ActionStatus::Error {
                code: "unknown".into(),
                message: format!("action ended with status `{other}`"),
            },
        };
        cloud::Action {
            id: ActionId(a.id),
            command: a.command,
            status,
            progress: a.progress,
        }
    }
}

impl From<ServerType> for cloud::ServerType {
    /// A type is offered where `locations` lists it without a deprecation; an answer without
    /// `locations` (older API versions) offers it where it is priced.
    fn from(t: ServerType) -> Self {
        let locations = if t.locations.is_empty() {
            t.prices.iter().map(|p| p.location.clone()).collect()
        } else {
            t.locations
                .into_iter()
                .filter(|l| l.deprecation.is_none())
                .map(|l| l.name)
                .collect()
        };
        cloud::ServerType {
            name: t.name,
            cores: t.cores,
            disk_gb: t.disk as u64,
            storage_type: t.storage_type,
            architecture: t.architecture,
            deprecated_after: t.deprecation.map(|d| d.unavailable_after),
            locations,
            monthly_price: t
                .prices
                .into_iter()
                .filter_map(|p| Euros::parse(&p.price_monthly.gross).map(|e| (p.location, e)))
                .collect(),
        }
    }
}

impl From<Location> for cloud::Location {
    fn from(l: Location) -> Self {
        cloud::Location {
            name: l.name,
            network_zone: l.network_zone,
        }
    }
}

impl From<Image> for cloud::Image {
    fn from(i: Image) -> Self {
        cloud::Image {
            id: i.id,
            name: i.name,
            os_flavor: i.os_flavor,
        }
    }
}

impl From<SshKey> for cloud::SshKey {
    fn from(k: SshKey) -> Self {
        cloud::SshKey {
            id: k.id,
            name: k.name,
            fingerprint: k.fingerprint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_type(json: &str) -> cloud::ServerType {
        serde_json::from_str::<ServerType>(json)
            .expect("a server type")
            .into()
    }

    #[test]
    fn a_server_type_is_offered_where_listed_and_not_deprecated() {
        let t = server_type(
            r#"{"name":"cx22","cores":2,"disk":40,"deprecation":{"announced":"2026-06-01T00:00:00Z","unavailable_after":"2026-09-01T00:00:00Z"},
            "prices":[{"location":"fsn1","price_monthly":{"net":"3.79","gross":"4.51"}}],
            "locations":[{"id":1,"name":"fsn1","deprecation":null},{"id":2,"name":"nbg1","deprecation":{"announced":"2026-06-01T00:00:00Z","unavailable_after":"2026-09-01T00:00:00Z"}}]}"#,
        );
        assert_eq!(t.locations, ["fsn1"]);
        assert_eq!(t.deprecated_after.as_deref(), Some("2026-09-01T00:00:00Z"));
    }

    #[test]
    fn without_locations_a_type_is_offered_where_it_is_priced() {
        let t = server_type(
            r#"{"name":"cpx21","cores":3,"disk":80,"prices":[{"location":"hel1","price_monthly":{"net":"7.55","gross":"8.98"}}]}"#,
        );
        assert_eq!(t.locations, ["hel1"]);
        assert_eq!(t.deprecated_after, None);
    }
}
