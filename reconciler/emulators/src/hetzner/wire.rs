//! JSON of servers, actions, SSH keys and firewalls, shaped exactly as the OpenAPI schemas (api-facts §1.6,
//! §1.7, §1.9), so the official clients parse them.

use super::catalog::Catalog;
use super::firewall::{FirewallRecord, Target};
use super::state::{ActionRecord, ActionState, ServerRecord, SshKey};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

/// RFC 3339 with whole seconds, e.g. `2016-01-30T23:50:00Z`.
pub fn timestamp(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// The JSON of an action at `now` (progress grows with elapsed time while it runs).
pub fn action(a: &ActionRecord, now: Instant) -> Value {
    let (status, progress, error) = match &a.state {
        ActionState::Running => {
            let total = a.ends.saturating_duration_since(a.begins).as_secs_f64();
            let done = now.saturating_duration_since(a.begins).as_secs_f64();
            let ratio = if total > 0.0 { done / total } else { 1.0 };
            // Truncation is intended: progress is a whole percentage below 100 until done.
            let progress = (ratio * 100.0).clamp(0.0, 99.0) as u8;
            ("running", progress, Value::Null)
        }
        ActionState::Success => ("success", 100, Value::Null),
        ActionState::Error(code, message) => {
            ("error", 100, json!({"code": code, "message": message}))
        }
    };
    let server = a.server.map(|id| json!({"id": id, "type": "server"}));
    let firewall = a.firewall.map(|id| json!({"id": id, "type": "firewall"}));
    let resources: Vec<Value> = server.into_iter().chain(firewall).collect();
    json!({
        "id": a.id,
        "command": a.command.as_str(),
        "status": status,
        "progress": progress,
        "started": timestamp(a.started),
        "finished": a.finished.map(timestamp),
        "resources": resources,
        "error": error,
    })
}

/// The JSON of a server; `firewalls` are `(id, status)` of the firewalls covering it.
pub fn server(s: &ServerRecord, catalog: &Catalog, firewalls: &[(u64, &str)]) -> Value {
    let included = s
        .server_type
        .prices
        .iter()
        .find(|p| p.location == s.location.name)
        .map(|p| p.included_traffic);
    let ipv4 = s.ipv4.map(|ip| {
        let [a, b, c, d] = ip.octets();
        json!({
            "id": s.ip_index * 2,
            "ip": ip.to_string(),
            "blocked": false,
            "dns_ptr": format!("static.{d}.{c}.{b}.{a}.clients.your-server.de"),
        })
    });
    let ipv6 = s.ipv6.then(|| {
        json!({
            "id": s.ip_index * 2 + 1,
            "ip": format!("2001:db8:0:{:x}::/64", s.ip_index),
            "blocked": false,
            "dns_ptr": [],
        })
    });
    json!({
        "id": s.id,
        "name": s.name,
        "status": s.status,
        "created": timestamp(s.created),
        "public_net": {
            "ipv4": ipv4,
            "ipv6": ipv6,
            "floating_ips": [],
            "firewalls": firewalls
                .iter()
                .map(|(id, status)| json!({"id": id, "status": status}))
                .collect::<Vec<_>>(),
        },
        "private_net": [],
        "server_type": catalog.server_type_json(&s.server_type),
        "datacenter": catalog.datacenter_json(&s.location),
        "location": catalog.location_json(&s.location),
        "image": catalog.image_json(&s.image),
        "iso": null,
        "rescue_enabled": false,
        "locked": false,
        "backup_window": null,
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": included,
        "protection": {"delete": s.protection.delete, "rebuild": s.protection.rebuild},
        "labels": s.labels,
        "volumes": [],
        "load_balancers": [],
        "primary_disk_size": s.primary_disk_size,
        "placement_group": null,
    })
}

/// The JSON of an SSH key.
pub fn ssh_key(k: &SshKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "fingerprint": k.fingerprint,
        "public_key": k.public_key,
        "labels": k.labels,
        "created": timestamp(k.created),
    })
}

/// The JSON of a firewall; a selector's `applied_to_resources` lists the covered servers that
/// still exist.
pub fn firewall(f: &FirewallRecord, servers: &BTreeMap<u64, ServerRecord>) -> Value {
    let applied_to: Vec<Value> = f
        .targets
        .iter()
        .map(|t| match t {
            Target::Server(id) => json!({"type": "server", "server": {"id": id}}),
            Target::Selector(text) => {
                let resources: Vec<Value> = servers
                    .values()
                    .filter(|s| f.covered.contains_key(&s.id) && t.covers(s.id, &s.labels))
                    .map(|s| json!({"type": "server", "server": {"id": s.id}}))
                    .collect();
                json!({
                    "type": "label_selector",
                    "label_selector": {"selector": text},
                    "applied_to_resources": resources,
                })
            }
        })
        .collect();
    json!({
        "id": f.id,
        "name": f.name,
        "labels": f.labels,
        "created": timestamp(f.created),
        "rules": f.rules.iter().map(super::firewall::Rule::json).collect::<Vec<_>>(),
        "applied_to": applied_to,
    })
}
