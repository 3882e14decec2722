//! The default catalog: six locations, a handful of server types priced like Hetzner's public
//! price list (illustrative, not authoritative), and Ubuntu and Debian system images for both
//! architectures.

use super::catalog::{Catalog, Image, Location, Pricing, ServerType};

const TB: u64 = 1 << 40;

/// id, name, description, country, city, latitude, longitude, zone, datacenter id, datacenter.
type LocationRow = (
    u64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    f64,
    f64,
    &'static str,
    u64,
    &'static str,
);

const LOCATIONS: [LocationRow; 6] = [
    (
        1,
        "fsn1",
        "Falkenstein DC Park 1",
        "DE",
        "Falkenstein",
        50.47612,
        12.370071,
        "eu-central",
        4,
        "fsn1-dc14",
    ),
    (
        2,
        "nbg1",
        "Nuremberg DC Park 1",
        "DE",
        "Nuremberg",
        49.452102,
        11.076665,
        "eu-central",
        2,
        "nbg1-dc3",
    ),
    (
        3,
        "hel1",
        "Helsinki DC Park 1",
        "FI",
        "Helsinki",
        60.169855,
        24.938379,
        "eu-central",
        3,
        "hel1-dc2",
    ),
    (
        4,
        "ash",
        "Ashburn, VA",
        "US",
        "Ashburn, VA",
        39.045821,
        -77.487073,
        "us-east",
        5,
        "ash-dc1",
    ),
    (
        5,
        "hil",
        "Hillsboro, OR",
        "US",
        "Hillsboro, OR",
        45.54222,
        -122.951924,
        "us-west",
        6,
        "hil-dc1",
    ),
    (
        6,
        "sin",
        "Singapore",
        "SG",
        "Singapore",
        1.283333,
        103.833333,
        "ap-southeast",
        7,
        "sin-dc1",
    ),
];

/// id, name, cores, memory, disk, cpu type, architecture, category, monthly net in the EU and
/// elsewhere (ten-thousandths of a euro; `0` = not sold outside the EU).
type TypeRow = (
    u64,
    &'static str,
    u32,
    f64,
    u64,
    &'static str,
    &'static str,
    &'static str,
    u64,
    u64,
);

const SERVER_TYPES: [TypeRow; 7] = [
    (
        22,
        "cpx11",
        2,
        2.0,
        40,
        "shared",
        "x86",
        "regular_purpose",
        43_500,
        48_900,
    ),
    (
        23,
        "cpx21",
        3,
        4.0,
        80,
        "shared",
        "x86",
        "regular_purpose",
        75_500,
        84_900,
    ),
    (
        24,
        "cpx31",
        4,
        8.0,
        160,
        "shared",
        "x86",
        "regular_purpose",
        136_000,
        152_900,
    ),
    (
        25,
        "cpx41",
        8,
        16.0,
        240,
        "shared",
        "x86",
        "regular_purpose",
        252_000,
        283_900,
    ),
    (
        45,
        "cax11",
        2,
        4.0,
        40,
        "shared",
        "arm",
        "cost_optimized",
        37_900,
        0,
    ),
    (
        96,
        "ccx13",
        2,
        8.0,
        80,
        "dedicated",
        "x86",
        "general_purpose",
        124_900,
        140_900,
    ),
    (
        104,
        "cx22",
        2,
        4.0,
        40,
        "shared",
        "x86",
        "cost_optimized",
        37_900,
        0,
    ),
];

/// id, name, description, flavor, version, architecture, created.
type ImageRow = (
    u64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const IMAGES: [ImageRow; 8] = [
    (
        67_794_396,
        "ubuntu-22.04",
        "Ubuntu 22.04",
        "ubuntu",
        "22.04",
        "x86",
        "2022-04-21T13:32:38Z",
    ),
    (
        103_908_070,
        "ubuntu-22.04",
        "Ubuntu 22.04",
        "ubuntu",
        "22.04",
        "arm",
        "2022-04-21T13:32:38Z",
    ),
    (
        114_690_387,
        "debian-12",
        "Debian 12",
        "debian",
        "12",
        "x86",
        "2023-06-13T06:00:02Z",
    ),
    (
        114_690_389,
        "debian-12",
        "Debian 12",
        "debian",
        "12",
        "arm",
        "2023-06-13T06:00:02Z",
    ),
    (
        161_547_269,
        "ubuntu-24.04",
        "Ubuntu 24.04",
        "ubuntu",
        "24.04",
        "x86",
        "2024-04-25T12:00:00Z",
    ),
    (
        161_547_270,
        "ubuntu-24.04",
        "Ubuntu 24.04",
        "ubuntu",
        "24.04",
        "arm",
        "2024-04-25T12:00:00Z",
    ),
    (
        310_557_660,
        "debian-13",
        "Debian 13",
        "debian",
        "13",
        "x86",
        "2025-08-12T06:00:00Z",
    ),
    (
        310_557_661,
        "debian-13",
        "Debian 13",
        "debian",
        "13",
        "arm",
        "2025-08-12T06:00:00Z",
    ),
];

fn pricing(location: &Location, eu_monthly: u64, elsewhere_monthly: u64) -> Option<Pricing> {
    let eu = location.network_zone == "eu-central";
    let monthly = if eu { eu_monthly } else { elsewhere_monthly };
    (monthly > 0).then(|| Pricing {
        location: location.name.clone(),
        hourly: monthly.div_ceil(720),
        monthly,
        included_traffic: if eu { 20 * TB } else { TB },
        per_tb_traffic: if location.network_zone == "ap-southeast" {
            74_000
        } else {
            10_000
        },
    })
}

/// `cpx21` → `CPX 21`.
fn type_description(name: &str) -> String {
    let digits = name
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(name.len());
    format!("{} {}", name[..digits].to_uppercase(), &name[digits..])
}

impl Default for Catalog {
    fn default() -> Self {
        let locations: Vec<Location> = LOCATIONS
            .iter()
            .map(
                |&(id, name, description, country, city, latitude, longitude, zone, dc_id, dc)| {
                    Location {
                        id,
                        name: name.into(),
                        description: description.into(),
                        country: country.into(),
                        city: city.into(),
                        latitude,
                        longitude,
                        network_zone: zone.into(),
                        datacenter_id: dc_id,
                        datacenter: dc.into(),
                    }
                },
            )
            .collect();
        let server_types = SERVER_TYPES
            .iter()
            .map(
                |&(id, name, cores, memory, disk, cpu, arch, category, eu, elsewhere)| ServerType {
                    id,
                    name: name.into(),
                    description: type_description(name),
                    cores,
                    memory,
                    disk,
                    cpu_type: cpu.into(),
                    architecture: arch.into(),
                    storage_type: "local".into(),
                    category: category.into(),
                    prices: locations
                        .iter()
                        .filter_map(|l| pricing(l, eu, elsewhere))
                        .collect(),
                    deprecation: None,
                },
            )
            .collect();
        let images = IMAGES
            .iter()
            .map(
                |&(id, name, description, flavor, version, arch, created)| Image {
                    id,
                    name: name.into(),
                    description: description.into(),
                    os_flavor: flavor.into(),
                    os_version: version.into(),
                    architecture: arch.into(),
                    created: created.into(),
                },
            )
            .collect();
        Catalog {
            locations,
            server_types,
            images,
        }
    }
}
