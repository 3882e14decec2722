//! Devices of the emulated tailnet: ids, MagicDNS names (collisions get `-1`, `-2`, … on the
//! host part), addresses in Tailscale's ranges, the online signal, server-side list filters and
//! the JSON the API returns.

use super::wire;
use super::{ApiError, random_alnum, timestamp};
use rand::Rng;
use rand::rngs::SmallRng;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

/// The `user` of tagged devices: the tag owns them, not a person.
pub const TAGGED_DEVICES_USER: &str = "tagged-devices";
/// Node key lifetime of untagged devices (the tailnet default).
const KEY_EXPIRY: Duration = Duration::from_secs(180 * 24 * 3600);
/// The client version emulated nodes report.
const CLIENT_VERSION: &str = "1.80.3";
/// Fields the list endpoint filters on (`?<field>=<value>`).
const FILTERABLE: &[&str] = &[
    "id",
    "nodeId",
    "name",
    "hostname",
    "addresses",
    "user",
    "tags",
    "authorized",
    "keyExpiryDisabled",
    "connectedToControl",
    "isEphemeral",
    "isExternal",
    "os",
    "clientVersion",
];

/// One device.
#[derive(Debug, Clone)]
pub(super) struct DeviceRecord {
    pub legacy_id: u64,
    pub node_id: String,
    pub hostname: String,
    pub name: String,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
    pub user: String,
    pub tags: Vec<String>,
    pub authorized: bool,
    created: SystemTime,
    pub connected: bool,
    pub last_seen: Option<SystemTime>,
    pub ephemeral: bool,
    /// The emulated server this node runs on.
    pub server_id: Option<u64>,
    machine_key: String,
    node_key: String,
}

impl DeviceRecord {
    /// Replaces the tags; a tagged device belongs to its tags and its key never expires.
    pub(super) fn set_tags(&mut self, tags: Vec<String>) {
        if !tags.is_empty() {
            self.user = TAGGED_DEVICES_USER.to_owned();
        }
        self.tags = tags;
    }

    /// The device's JSON; `all_fields` adds routes and connectivity (`fields=all`).
    pub(super) fn to_wire(&self, all_fields: bool) -> wire::Device {
        let tagged = !self.tags.is_empty();
        wire::Device {
            id: self.legacy_id.to_string(),
            node_id: self.node_id.clone(),
            name: self.name.clone(),
            hostname: self.hostname.clone(),
            addresses: vec![self.ipv4.to_string(), self.ipv6.to_string()],
            user: self.user.clone(),
            tags: self.tags.clone(),
            authorized: self.authorized,
            created: timestamp(self.created),
            expires: if tagged {
                "0001-01-01T00:00:00Z".to_owned()
            } else {
                timestamp(self.created + KEY_EXPIRY)
            },
            key_expiry_disabled: tagged,
            last_seen: if self.connected {
                None
            } else {
                self.last_seen.map(timestamp)
            },
            connected_to_control: self.connected,
            is_ephemeral: self.ephemeral,
            is_external: false,
            os: "linux".to_owned(),
            client_version: CLIENT_VERSION.to_owned(),
            update_available: false,
            machine_key: self.machine_key.clone(),
            node_key: self.node_key.clone(),
            blocks_incoming_connections: false,
            tailnet_lock_key: String::new(),
            tailnet_lock_error: String::new(),
            enabled_routes: all_fields.then(Vec::new),
            advertised_routes: all_fields.then(Vec::new),
            client_connectivity: all_fields.then(|| {
                serde_json::json!({
                    "endpoints": [],
                    "latency": {},
                    "mappingVariesByDestIP": false,
                    "clientSupports": {"ipv6": false, "pcp": false, "pmp": false, "udp": true, "upnp": false}
                })
            }),
        }
    }
}

/// What a new device is made of.
#[derive(Debug, Clone)]
pub(super) struct NewDevice {
    pub hostname: String,
    pub user: String,
    pub tags: Vec<String>,
    pub authorized: bool,
    pub ephemeral: bool,
    pub server_id: Option<u64>,
}

/// Every device of the tailnet, by legacy id. Legacy ids grow with time, so this is also the
/// order devices joined in.
#[derive(Debug)]
pub(super) struct Devices {
    by_id: BTreeMap<u64, DeviceRecord>,
    suffix: String,
}

impl Devices {
    /// No devices; MagicDNS names end in `suffix` (e.g. `tail1234.ts.net`).
    pub(super) fn new(suffix: String) -> Devices {
        Devices {
            by_id: BTreeMap::new(),
            suffix,
        }
    }

    /// Adds an online device with fresh ids, a unique MagicDNS name and unique addresses.
    pub(super) fn add(
        &mut self,
        new: NewDevice,
        rng: &mut SmallRng,
        now: SystemTime,
    ) -> &DeviceRecord {
        let last = self
            .by_id
            .keys()
            .next_back()
            .copied()
            .unwrap_or(10_000_000_000);
        let legacy_id = last + rng.random_range(1..1_000_000u64);
        let label = host_label(&new.hostname);
        let name = self.unique_name(&label);
        let ipv4 = loop {
            let ip = random_ipv4(rng);
            if !self.by_id.values().any(|d| d.ipv4 == ip) {
                break ip;
            }
        };
        let ipv6 = loop {
            let tail: u128 = rng.random::<u128>() & ((1u128 << 80) - 1);
            let ip = Ipv6Addr::from((0xfd7a_115c_a1e0u128 << 80) | tail);
            if !self.by_id.values().any(|d| d.ipv6 == ip) {
                break ip;
            }
        };
        let record = DeviceRecord {
            legacy_id,
            node_id: format!("n{}CNTRL", random_alnum(rng, 11)),
            hostname: new.hostname,
            name,
            ipv4,
            ipv6,
            user: if new.tags.is_empty() {
                new.user
            } else {
                TAGGED_DEVICES_USER.to_owned()
            },
            tags: new.tags,
            authorized: new.authorized,
            created: now,
            connected: true,
            last_seen: None,
            ephemeral: new.ephemeral,
            server_id: new.server_id,
            machine_key: format!("mkey:{}", hex(rng)),
            node_key: format!("nodekey:{}", hex(rng)),
        };
        self.by_id.entry(legacy_id).or_insert(record)
    }

    /// `<label>.<suffix>`, or `<label>-N.<suffix>` with the smallest free N.
    fn unique_name(&self, label: &str) -> String {
        let taken = |candidate: &str| self.by_id.values().any(|d| d.name == candidate);
        let mut name = format!("{label}.{}", self.suffix);
        let mut n = 1;
        while taken(&name) {
            name = format!("{label}-{n}.{}", self.suffix);
            n += 1;
        }
        name
    }

    /// The device with this legacy id or node id.
    pub(super) fn find_mut(&mut self, id: &str) -> Option<&mut DeviceRecord> {
        let key = self.key_of(id)?;
        self.by_id.get_mut(&key)
    }

    /// The device with this legacy id or node id.
    pub(super) fn find(&self, id: &str) -> Option<&DeviceRecord> {
        self.by_id.get(&self.key_of(id)?)
    }

    fn key_of(&self, id: &str) -> Option<u64> {
        match id.parse::<u64>() {
            Ok(n) => self.by_id.contains_key(&n).then_some(n),
            Err(_) => self
                .by_id
                .values()
                .find(|d| d.node_id == id)
                .map(|d| d.legacy_id),
        }
    }

    /// Removes the device.
    pub(super) fn remove(&mut self, id: &str) -> Option<DeviceRecord> {
        let key = self.key_of(id)?;
        self.by_id.remove(&key)
    }

    /// Every device.
    pub(super) fn all(&self) -> impl Iterator<Item = &DeviceRecord> {
        self.by_id.values()
    }

    /// Every device on `server_id`.
    pub(super) fn of_server(&mut self, server_id: u64) -> impl Iterator<Item = &mut DeviceRecord> {
        self.by_id
            .values_mut()
            .filter(move |d| d.server_id == Some(server_id))
    }

    /// Removes every device `doomed` picks; returns how many.
    pub(super) fn remove_where(&mut self, doomed: impl Fn(&DeviceRecord) -> bool) -> usize {
        let before = self.by_id.len();
        self.by_id.retain(|_, d| !doomed(d));
        before - self.by_id.len()
    }

    /// `GET /tailnet/-/devices` with its query: `fields=all|default` and filters
    /// `<field>=<value>` (exact match, array fields contain the value, repeats AND-combined).
    pub(super) fn list(&self, query: &[(String, String)]) -> Result<Vec<wire::Device>, ApiError> {
        let mut all_fields = false;
        let mut filters = Vec::new();
        for (key, value) in query {
            match (key.as_str(), value.as_str()) {
                ("fields", "all") => all_fields = true,
                ("fields", "default") => {}
                ("fields", other) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid fields value {other:?}: use all or default"
                    )));
                }
                (field, _) if FILTERABLE.contains(&field) => filters.push((key, value)),
                (field, _) => {
                    return Err(ApiError::bad_request(format!(
                        "cannot filter devices on {field:?}"
                    )));
                }
            }
        }
        Ok(self
            .by_id
            .values()
            .map(|d| d.to_wire(all_fields))
            .filter(|d| {
                let json = serde_json::to_value(d).unwrap_or_default();
                filters.iter().all(|(k, v)| matches(&json[k.as_str()], v))
            })
            .collect())
    }
}

/// Whether a JSON field matches a filter value.
fn matches(field: &serde_json::Value, wanted: &str) -> bool {
    match field {
        serde_json::Value::String(s) => s == wanted,
        serde_json::Value::Bool(b) => b.to_string() == wanted,
        serde_json::Value::Array(items) => items.iter().any(|i| i.as_str() == Some(wanted)),
        _ => false,
    }
}

/// A hostname as a DNS label: lowercase letters, digits and hyphens, at most 63 characters.
fn host_label(hostname: &str) -> String {
    let label: String = hostname
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    let label = label.trim_matches('-');
    if label.is_empty() {
        "localhost".to_owned()
    } else {
        label.to_owned()
    }
}

/// A random address in 100.64.0.0/10, avoiding the ranges Tailscale reserves
/// (100.100.0.0/24 for its own services, 100.115.92.0/23 for ChromeOS) and .0/.255.
fn random_ipv4(rng: &mut SmallRng) -> Ipv4Addr {
    loop {
        let ip = Ipv4Addr::from(0x6440_0000u32 | (rng.random::<u32>() & 0x003f_ffff));
        let [_, b, c, d] = ip.octets();
        let reserved = (b == 100 && c == 100) || (b == 115 && (c == 92 || c == 93));
        if !reserved && d != 0 && d != 255 {
            return ip;
        }
    }
}

fn hex(rng: &mut SmallRng) -> String {
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn new(hostname: &str, tags: &[&str]) -> NewDevice {
        NewDevice {
            hostname: hostname.to_owned(),
            user: "admin@example.com".to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            authorized: true,
            ephemeral: false,
            server_id: None,
        }
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn hostname_collisions_get_numbered_names() {
        let mut devices = Devices::new("tail1234.ts.net".into());
        let mut rng = SmallRng::seed_from_u64(3);
        let now = SystemTime::UNIX_EPOCH;
        let names: Vec<String> = ["web", "web", "Web", "db"]
            .iter()
            .map(|h| devices.add(new(h, &[]), &mut rng, now).name.clone())
            .collect();
        assert_eq!(
            names,
            [
                "web.tail1234.ts.net",
                "web-1.tail1234.ts.net",
                "web-2.tail1234.ts.net",
                "db.tail1234.ts.net"
            ]
        );
    }

    #[test]
    fn filters_and_combine_and_unknown_fields_are_refused() {
        let mut devices = Devices::new("t.ts.net".into());
        let mut rng = SmallRng::seed_from_u64(4);
        let now = SystemTime::UNIX_EPOCH;
        devices.add(new("a", &["tag:x", "tag:y"]), &mut rng, now);
        devices.add(new("b", &["tag:x"]), &mut rng, now);
        let hosts = |query: &[(&str, &str)]| -> Vec<String> {
            devices
                .list(&q(query))
                .expect("list")
                .into_iter()
                .map(|d| d.hostname)
                .collect()
        };
        assert_eq!(hosts(&[("tags", "tag:x")]), ["a", "b"]);
        assert_eq!(hosts(&[("tags", "tag:x"), ("tags", "tag:y")]), ["a"]);
        assert_eq!(
            hosts(&[("hostname", "b"), ("connectedToControl", "true")]),
            ["b"]
        );
        assert!(devices.list(&q(&[("color", "red")])).is_err());
        assert!(devices.list(&q(&[("fields", "some")])).is_err());
    }

    #[test]
    fn addresses_stay_in_tailscale_ranges() {
        let mut rng = SmallRng::seed_from_u64(5);
        for _ in 0..1000 {
            let ip = random_ipv4(&mut rng);
            assert_eq!(u32::from(ip) & 0xffc0_0000, 0x6440_0000, "{ip}");
        }
    }
}
