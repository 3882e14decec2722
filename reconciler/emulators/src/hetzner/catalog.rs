//! The read-only catalog a project sees: locations (each with one datacenter), server types
//! with prices, and system images. Plain data, configurable through `Config`; the default seed
//! lives in `seed.rs`. Rendering follows the OpenAPI schemas.

use serde_json::{Value, json};

/// A location and its one datacenter.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// Location id.
    pub id: u64,
    /// Name, e.g. `fsn1`.
    pub name: String,
    /// E.g. `Falkenstein DC Park 1`.
    pub description: String,
    /// ISO country code.
    pub country: String,
    /// City.
    pub city: String,
    /// Latitude.
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
    /// E.g. `eu-central`.
    pub network_zone: String,
    /// Id of the location's datacenter.
    pub datacenter_id: u64,
    /// Name of the location's datacenter, e.g. `fsn1-dc14`.
    pub datacenter: String,
}

/// A price in ten-thousandths of a euro, net (gross adds 19 % VAT).
pub type Price = u64;

/// A server type's price in one location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pricing {
    /// Location name.
    pub location: String,
    /// Net hourly price.
    pub hourly: Price,
    /// Net monthly price.
    pub monthly: Price,
    /// Included traffic in bytes.
    pub included_traffic: u64,
    /// Net price per extra TB.
    pub per_tb_traffic: Price,
}

/// A server type.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerType {
    /// Server type id.
    pub id: u64,
    /// Name, e.g. `cpx21`.
    pub name: String,
    /// Description, e.g. `CPX 21`.
    pub description: String,
    /// vCPUs.
    pub cores: u32,
    /// Memory in GB.
    pub memory: f64,
    /// Disk in GB.
    pub disk: u64,
    /// `shared` or `dedicated`.
    pub cpu_type: String,
    /// `x86` or `arm`.
    pub architecture: String,
    /// `local` or `network`.
    pub storage_type: String,
    /// E.g. `regular_purpose`.
    pub category: String,
    /// Where it is sold, and at what price.
    pub prices: Vec<Pricing>,
    /// Set when the type is being phased out: served as its `deprecation` (and in every
    /// location's), and, stricter than Hetzner (which sells it until `unavailable_after`),
    /// refused for new servers and type changes at once.
    pub deprecation: Option<Deprecation>,
}

/// A deprecation notice as Hetzner serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    /// When it was announced (RFC 3339).
    pub announced: String,
    /// After this (RFC 3339) no new server can have it.
    pub unavailable_after: String,
}

impl ServerType {
    /// Whether a new server can have it in `location`: sold there and not deprecated.
    pub fn available_in(&self, location: &str) -> bool {
        self.deprecation.is_none() && self.sold_in(location)
    }

    fn sold_in(&self, location: &str) -> bool {
        self.prices.iter().any(|p| p.location == location)
    }

    fn deprecation_json(&self) -> Value {
        self.deprecation.as_ref().map_or(
            Value::Null,
            |d| json!({"announced": d.announced, "unavailable_after": d.unavailable_after}),
        )
    }
}

/// A system image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Image id (system images have one id per architecture).
    pub id: u64,
    /// Name, e.g. `ubuntu-24.04`.
    pub name: String,
    /// Description, e.g. `Ubuntu 24.04`.
    pub description: String,
    /// `ubuntu`, `debian`, …
    pub os_flavor: String,
    /// E.g. `24.04`.
    pub os_version: String,
    /// `x86` or `arm`.
    pub architecture: String,
    /// RFC 3339 creation time.
    pub created: String,
}

/// Everything the catalog endpoints serve.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// Locations, by ascending id.
    pub locations: Vec<Location>,
    /// Server types, by ascending id.
    pub server_types: Vec<ServerType>,
    /// System images, by ascending id.
    pub images: Vec<Image>,
}

/// Formats a net price as Hetzner does: `"4.3500000000"`.
pub fn net(price: Price) -> String {
    format!("{}.{:04}000000", price / 10_000, price % 10_000)
}

/// Formats a gross price (net + 19 % VAT) as Hetzner does: `"5.1765000000000000"`.
pub fn gross(price: Price) -> String {
    let millionths = price * 119;
    format!(
        "{}.{:06}0000000000",
        millionths / 1_000_000,
        millionths % 1_000_000
    )
}

fn amount(price: Price) -> Value {
    json!({"net": net(price), "gross": gross(price)})
}

/// Finds by id (a number, or a string of digits) or by name.
pub fn find<'a, T>(
    items: &'a [T],
    wanted: &str,
    id: impl Fn(&T) -> u64,
    name: impl Fn(&T) -> &str,
) -> Option<&'a T> {
    match wanted.parse::<u64>() {
        Ok(n) => items.iter().find(|t| id(t) == n),
        Err(_) => items.iter().find(|t| name(t) == wanted),
    }
}

impl Catalog {
    /// A location by id or name.
    pub fn location(&self, wanted: &str) -> Option<&Location> {
        find(&self.locations, wanted, |l| l.id, |l| &l.name)
    }

    /// A location by its datacenter's id or name.
    pub fn location_of_datacenter(&self, wanted: &str) -> Option<&Location> {
        find(
            &self.locations,
            wanted,
            |l| l.datacenter_id,
            |l| &l.datacenter,
        )
    }

    /// A server type by id or name.
    pub fn server_type(&self, wanted: &str) -> Option<&ServerType> {
        find(&self.server_types, wanted, |t| t.id, |t| &t.name)
    }

    /// An image by id, or by name for the given architecture.
    pub fn image(&self, wanted: &str, architecture: &str) -> Option<&Image> {
        match wanted.parse::<u64>() {
            Ok(n) => self.images.iter().find(|i| i.id == n),
            Err(_) => self
                .images
                .iter()
                .find(|i| i.name == wanted && i.architecture == architecture),
        }
    }

    /// The JSON of a location.
    pub fn location_json(&self, l: &Location) -> Value {
        json!({
            "id": l.id, "name": l.name, "description": l.description, "country": l.country,
            "city": l.city, "latitude": l.latitude, "longitude": l.longitude,
            "network_zone": l.network_zone,
        })
    }

    /// The JSON of a location's datacenter.
    pub fn datacenter_json(&self, l: &Location) -> Value {
        let ids: Vec<u64> = self
            .server_types
            .iter()
            .filter(|t| t.available_in(&l.name))
            .map(|t| t.id)
            .collect();
        json!({
            "id": l.datacenter_id,
            "name": l.datacenter,
            "description": format!("{} virtual DC {}", l.city, l.datacenter.rsplit("-dc").next().unwrap_or("1")),
            "location": self.location_json(l),
            "server_types": {"supported": ids, "available": ids, "available_for_migration": ids},
        })
    }

    /// The JSON of a server type.
    pub fn server_type_json(&self, t: &ServerType) -> Value {
        let prices: Vec<Value> = t
            .prices
            .iter()
            .map(|p| {
                json!({
                    "location": p.location,
                    "price_hourly": amount(p.hourly),
                    "price_monthly": amount(p.monthly),
                    "included_traffic": p.included_traffic,
                    "price_per_tb_traffic": amount(p.per_tb_traffic),
                })
            })
            .collect();
        let deprecation = t.deprecation_json();
        let available = t.deprecation.is_none();
        let locations: Vec<Value> = self
            .locations
            .iter()
            .filter(|l| t.sold_in(&l.name))
            .map(|l| json!({"id": l.id, "name": l.name, "deprecation": deprecation, "available": available, "recommended": available}))
            .collect();
        json!({
            "id": t.id, "name": t.name, "description": t.description, "cores": t.cores,
            "memory": t.memory, "disk": t.disk, "cpu_type": t.cpu_type,
            "architecture": t.architecture, "storage_type": t.storage_type,
            "category": t.category, "deprecated": !available, "deprecation": deprecation,
            "prices": prices, "locations": locations,
        })
    }

    /// The JSON of an image.
    pub fn image_json(&self, i: &Image) -> Value {
        json!({
            "id": i.id, "type": "system", "status": "available", "name": i.name,
            "description": i.description, "image_size": null, "disk_size": 5,
            "created": i.created, "created_from": null, "bound_to": null,
            "os_flavor": i.os_flavor, "os_version": i.os_version, "rapid_deploy": true,
            "protection": {"delete": false}, "deprecated": null, "deleted": null,
            "labels": {}, "architecture": i.architecture,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_rendered_like_hetzner() {
        assert_eq!(net(84_900), "8.4900000000");
        assert_eq!(gross(84_900), "10.1031000000000000");
        assert_eq!(net(70), "0.0070000000");
    }

    #[test]
    fn lookups_accept_ids_as_numbers_in_strings_and_names() {
        let catalog = Catalog::default();
        let by_name = catalog.server_type("cpx21").expect("cpx21");
        let by_id = catalog.server_type(&by_name.id.to_string()).expect("by id");
        assert_eq!(by_name, by_id);
        assert!(catalog.server_type("cpx999").is_none());
        assert_eq!(
            catalog.location("fsn1").map(|l| l.datacenter.as_str()),
            Some("fsn1-dc14")
        );
    }

    #[test]
    fn a_deprecated_type_is_served_with_its_notice_and_cannot_be_ordered() {
        let mut catalog = Catalog::default();
        let notice = Deprecation {
            announced: "2026-06-01T00:00:00Z".to_owned(),
            unavailable_after: "2026-09-01T00:00:00Z".to_owned(),
        };
        let t = catalog
            .server_types
            .iter_mut()
            .find(|t| t.name == "cx22")
            .expect("cx22");
        t.deprecation = Some(notice);
        let t = t.clone();
        assert!(!t.available_in("fsn1"));
        let json = catalog.server_type_json(&t);
        assert_eq!(json["deprecated"], true);
        assert_eq!(
            json["deprecation"]["unavailable_after"],
            "2026-09-01T00:00:00Z"
        );
        assert_eq!(
            json["locations"][0]["deprecation"]["unavailable_after"],
            "2026-09-01T00:00:00Z"
        );
        assert!(
            catalog
                .server_type("cpx21")
                .is_some_and(|t| t.available_in("fsn1"))
        );
    }

    #[test]
    fn image_names_resolve_per_architecture() {
        let catalog = Catalog::default();
        let x86 = catalog.image("ubuntu-24.04", "x86").expect("x86");
        let arm = catalog.image("ubuntu-24.04", "arm").expect("arm");
        assert_ne!(x86.id, arm.id);
    }
}
