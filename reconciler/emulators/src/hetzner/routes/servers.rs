//! `/v1/servers` and `/v1/servers/{id}`: list with filters, sorting and pages; create with
//! Hetzner's validation, uniqueness and quota; rename and relabel; delete.

use super::super::body::Fields;
use super::super::catalog::{Image, Location, ServerType};
use super::super::errors::ApiError;
use super::super::firewall::Target;
use super::super::lifecycle;
use super::super::pagination::{SortValue, sort_by, sort_keys};
use super::super::selector::Selector;
use super::super::shared::Shared;
use super::super::state::{Model, ServerRecord};
use super::super::wire;
use super::firewalls::sync;
use super::{ApiResult, Listing, list_of, one, parse_id, respond};
use crate::hetzner::ServerStatus;
use axum::body::Bytes;
use axum::extract::{Path, State};
use http::StatusCode;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use time::OffsetDateTime;
use tokio::time::Instant;

/// Largest `user_data` accepted, in bytes.
pub(super) const MAX_USER_DATA: usize = 32 * 1024;

const STATUSES: [&str; 9] = [
    "running",
    "initializing",
    "starting",
    "stopping",
    "off",
    "deleting",
    "migrating",
    "rebuilding",
    "unknown",
];

/// Checks an RFC 1123 hostname: dot-separated labels of letters, digits and inner hyphens.
fn check_hostname(name: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err("must be a valid hostname (RFC 1123): letters, digits, '-' and '.'".to_owned())
    }
}

/// `GET /v1/servers`.
pub async fn list(State(shared): State<Arc<Shared>>, listing: Listing) -> ApiResult {
    let p = &listing.params;
    let selector = p
        .one("label_selector")
        .map(Selector::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("label_selector", e))?
        .unwrap_or_default();
    let statuses = p.enum_values("status", &STATUSES)?;
    let keys = sort_keys(p, &["id", "name", "created"])?;
    let name = p.one("name");
    let now = Instant::now();
    let mut model = shared.model();
    sync(&shared, &mut model);
    let mut servers: Vec<&ServerRecord> = model
        .servers
        .values()
        .filter(|s| name.is_none_or(|n| s.name == n))
        .filter(|s| selector.matches(&s.labels))
        .filter(|s| statuses.is_empty() || statuses.iter().any(|n| n == s.status.name()))
        .collect();
    sort_by(&mut servers, &keys, |s, field| match field {
        "name" => SortValue::Text(s.name.clone()),
        "created" => SortValue::Number(s.created.unix_timestamp_nanos()),
        _ => SortValue::Number(i128::from(s.id)),
    });
    list_of(
        &listing,
        "servers",
        servers,
        |s| wire::server(s, &shared.catalog, &model.firewalls_of(s.id, now)),
        Map::new(),
    )
}

/// `GET /v1/servers/{id}`.
pub async fn get(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "server")?;
    let mut model = shared.model();
    sync(&shared, &mut model);
    let server = model
        .servers
        .get(&id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    let firewalls = model.firewalls_of(id, Instant::now());
    one("server", wire::server(server, &shared.catalog, &firewalls))
}

/// What `POST /v1/servers` asked for, resolved against the catalog.
struct Order {
    name: String,
    server_type: ServerType,
    location: Location,
    image: Image,
    ssh_keys: Vec<u64>,
    user_data: Option<String>,
    labels: BTreeMap<String, String>,
    start: bool,
    ipv4: bool,
    ipv6: bool,
    firewalls: Vec<u64>,
}

/// Reads and checks a create body; SSH keys are looked up in `model`.
fn read_order(shared: &Shared, model: &Model, body: &[u8]) -> Result<Order, ApiError> {
    let catalog = &shared.catalog;
    let mut f = Fields::parse(body)?;
    let name = f.string("name", true);
    if let Some(Err(problem)) = name.as_deref().map(check_hostname) {
        f.reject("name", problem);
    }
    let type_ref = f.id_or_name("server_type", true);
    let image_ref = f.id_or_name("image", true);
    let location_ref = f.id_or_name("location", false);
    let datacenter_ref = f.id_or_name("datacenter", false);
    let key_refs = f.id_or_name_list("ssh_keys");
    let user_data = f.string("user_data", false);
    if user_data.as_ref().is_some_and(|u| u.len() > MAX_USER_DATA) {
        f.reject("user_data", "must be at most 32 KiB");
    }
    let labels = f.labels("labels").unwrap_or_default();
    let start = f.boolean("start_after_create", false).unwrap_or(true);
    f.boolean("automount", false);
    for unsupported in ["volumes", "networks", "placement_group"] {
        f.unsupported(unsupported);
    }
    let firewalls = read_firewalls(&mut f, model, body);
    let (mut ipv4, mut ipv6) = (true, true);
    if let Some(mut net) = f.object("public_net") {
        ipv4 = net.boolean("enable_ipv4", false).unwrap_or(true);
        ipv6 = net.boolean("enable_ipv6", false).unwrap_or(true);
        net.unsupported("ipv4");
        net.unsupported("ipv6");
        f.absorb("public_net", net);
    }
    let server_type = type_ref.and_then(|t| {
        let found = catalog.server_type(&t).cloned();
        if found.is_none() {
            f.reject("server_type", format!("server type '{t}' not found"));
        }
        found
    });
    let location = match (location_ref, datacenter_ref) {
        (Some(_), Some(_)) => {
            f.reject("location", "location and datacenter are mutually exclusive");
            None
        }
        (Some(l), None) => catalog.location(&l).cloned().or_else(|| {
            f.reject("location", format!("location '{l}' not found"));
            None
        }),
        (None, Some(d)) => catalog.location_of_datacenter(&d).cloned().or_else(|| {
            f.reject("datacenter", format!("datacenter '{d}' not found"));
            None
        }),
        (None, None) => server_type.as_ref().and_then(|t| {
            catalog
                .locations
                .iter()
                .find(|l| t.available_in(&l.name))
                .cloned()
        }),
    };
    if let (Some(t), Some(l)) = (&server_type, &location)
        && !t.available_in(&l.name)
    {
        f.reject("server_type", "unsupported location for server type");
    }
    let image = match (&image_ref, &server_type) {
        (Some(i), Some(t)) => match catalog.image(i, &t.architecture) {
            Some(img) if img.architecture == t.architecture => Some(img.clone()),
            Some(_) => {
                f.reject("image", "image architecture does not match the server type");
                None
            }
            None => {
                f.reject("image", format!("image '{i}' not found"));
                None
            }
        },
        _ => None,
    };
    let mut ssh_keys = Vec::new();
    for r in &key_refs {
        let key = match r.parse::<u64>() {
            Ok(id) => model.ssh_keys.get(&id),
            Err(_) => model.ssh_keys.values().find(|k| &k.name == r),
        };
        match key {
            Some(k) => ssh_keys.push(k.id),
            None => f.reject("ssh_keys", format!("SSH key '{r}' not found")),
        }
    }
    f.finish()?;
    match (name, server_type, location, image) {
        (Some(name), Some(server_type), Some(location), Some(image)) => Ok(Order {
            name,
            server_type,
            location,
            image,
            ssh_keys,
            user_data,
            labels,
            start,
            ipv4,
            ipv6,
            firewalls,
        }),
        _ => Err(ApiError::invalid_field("body", "incomplete request")),
    }
}

/// `firewalls: [{"firewall": id}]` of a create: each must exist.
fn read_firewalls(f: &mut Fields, model: &Model, body: &[u8]) -> Vec<u64> {
    let value: Value = serde_json::from_slice(body).unwrap_or_default();
    let Some(items) = value.get("firewalls").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for item in items {
        match item.get("firewall").and_then(Value::as_u64) {
            Some(id) if model.firewalls.contains_key(&id) => ids.push(id),
            Some(id) => f.reject("firewalls", format!("firewall {id} not found")),
            None => f.reject("firewalls", "entries must be {\"firewall\": id}"),
        }
    }
    ids
}

/// `POST /v1/servers`: 201 with the server, its `create_server` action, `next_actions` and
/// the root password (null when SSH keys were given).
pub async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let now = Instant::now();
    let mut model = shared.model();
    let order = read_order(&shared, &model, &body)?;
    if model.server_named(&order.name).is_some() {
        return Err(ApiError::uniqueness(
            "server name is already used",
            json!({}),
        ));
    }
    if model.servers.len() >= shared.server_limit {
        return Err(ApiError::server_limit());
    }
    let id = model.server_id();
    let (ip_index, free_ipv4) = model.allocate_ips();
    let record = ServerRecord {
        id,
        name: order.name,
        status: ServerStatus::Initializing,
        created: OffsetDateTime::now_utc(),
        primary_disk_size: order.server_type.disk,
        server_type: order.server_type,
        location: order.location,
        image: order.image,
        labels: if shared.drop_labels.load(Ordering::SeqCst) {
            BTreeMap::new()
        } else {
            order.labels
        },
        user_data: order.user_data,
        ipv4: free_ipv4.filter(|_| order.ipv4),
        ipv6: order.ipv6,
        ip_index,
        booted: false,
        protection: Default::default(),
    };
    if record.ipv4.is_none() && !record.ipv6 && !order.firewalls.is_empty() {
        return Err(ApiError::private_net_only_server(id));
    }
    model.servers.insert(id, record);
    for firewall in &order.firewalls {
        if let Some(fw) = model.firewalls.get_mut(firewall) {
            fw.targets.push(Target::Server(id));
        }
    }
    sync(&shared, &mut model);
    let server_json = model
        .servers
        .get(&id)
        .map(|record| wire::server(record, &shared.catalog, &model.firewalls_of(id, now)));
    let scheduled = lifecycle::create(&mut model, id, order.start, &shared.timing, now);
    let mut actions = scheduled
        .actions
        .iter()
        .filter_map(|a| model.actions.get(a))
        .map(|a| wire::action(a, now));
    let action = actions.next().unwrap_or(Value::Null);
    let next_actions: Vec<Value> = actions.collect();
    drop(model);
    let root_password: Option<String> = order.ssh_keys.is_empty().then(|| {
        rand::rng()
            .sample_iter(Alphanumeric)
            .take(20)
            .map(char::from)
            .collect()
    });
    lifecycle::run(&shared, scheduled.steps);
    Ok(respond(
        StatusCode::CREATED,
        json!({
            "server": server_json,
            "action": action,
            "next_actions": next_actions,
            "root_password": root_password,
        }),
    ))
}

/// `PUT /v1/servers/{id}`: `name` and/or `labels` (labels replace the whole set).
pub async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let id = parse_id(&id, "server")?;
    let mut model = shared.model();
    if !model.servers.contains_key(&id) {
        return Err(ApiError::not_found("server"));
    }
    let mut f = Fields::parse(&body)?;
    let name = f.string("name", false);
    if let Some(Err(problem)) = name.as_deref().map(check_hostname) {
        f.reject("name", problem);
    }
    let labels = f.labels("labels");
    f.finish()?;
    if let Some(name) = &name
        && model.server_named(name).is_some_and(|s| s.id != id)
    {
        return Err(ApiError::uniqueness(
            "server name is already used",
            json!({}),
        ));
    }
    let server = model
        .servers
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    if let Some(name) = name {
        server.name = name;
    }
    if let Some(labels) = labels {
        server.labels = labels;
    }
    sync(&shared, &mut model);
    let firewalls = model.firewalls_of(id, Instant::now());
    let server = model
        .servers
        .get(&id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    one("server", wire::server(server, &shared.catalog, &firewalls))
}

/// `DELETE /v1/servers/{id}`: 200 with the `delete_server` action; the server is `deleting`
/// until the action ends, then gone.
pub async fn delete(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "server")?;
    let now = Instant::now();
    let mut model = shared.model();
    if !model.servers.contains_key(&id) {
        return Err(ApiError::not_found("server"));
    }
    if model.servers.get(&id).is_some_and(|s| s.protection.delete) {
        return Err(ApiError::protected("delete"));
    }
    if model.is_locked(id) {
        return Err(ApiError::locked());
    }
    let scheduled = lifecycle::delete(&mut model, id, &shared.timing, now);
    let action = scheduled.main_action(&model, now);
    drop(model);
    lifecycle::run(&shared, scheduled.steps);
    one("action", action.unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_follow_rfc_1123() {
        for ok in ["acme-prod", "a", "web01.example.com", "A1-b2"] {
            assert_eq!(check_hostname(ok), Ok(()), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in ["", "acme_prod", "-a", "a-", "a..b", "a b", &long, "ümlaut"] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
    }
}
