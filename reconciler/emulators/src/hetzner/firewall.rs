//! Firewalls in the model: their rules (checked as Hetzner checks them), what they are applied
//! to (servers and label selectors), and which servers each one covers since when —
//! `public_net.firewalls[].status` is `pending` until the apply has taken effect, then
//! `applied`.

use super::selector::Selector;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::IpAddr;
use time::OffsetDateTime;
use tokio::time::Instant;

/// Most rules one firewall may hold.
const MAX_RULES: usize = 50;
/// Most CIDR blocks one rule may list.
const MAX_CIDRS: usize = 100;
/// Longest firewall name.
pub const MAX_NAME: usize = 128;

/// One firewall rule, as checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `in` or `out`.
    pub direction: String,
    /// `tcp`, `udp`, `icmp`, `esp` or `gre`.
    pub protocol: String,
    /// Port or `low-high` range (tcp and udp only).
    pub port: Option<String>,
    /// CIDR blocks, in canonical form: sources of an `in` rule, destinations of an `out` rule.
    pub ips: Vec<String>,
    /// Free text, at most 255 characters.
    pub description: Option<String>,
}

impl Rule {
    /// The rule's JSON.
    pub fn json(&self) -> Value {
        let (source, destination) = if self.direction == "in" {
            (self.ips.clone(), Vec::new())
        } else {
            (Vec::new(), self.ips.clone())
        };
        json!({
            "direction": self.direction,
            "protocol": self.protocol,
            "port": self.port,
            "source_ips": source,
            "destination_ips": destination,
            "description": self.description,
        })
    }
}

/// What a firewall is applied to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One server by id.
    Server(u64),
    /// Every server whose labels match, now and later.
    Selector(String),
}

impl Target {
    /// Reads one `apply_to` / `remove_from` entry.
    ///
    /// # Errors
    /// What is wrong with it, for `invalid_input`.
    pub fn parse(value: &Value) -> Result<Target, String> {
        match value.get("type").and_then(Value::as_str) {
            Some("server") => value
                .pointer("/server/id")
                .and_then(Value::as_u64)
                .map(Target::Server)
                .ok_or_else(|| "type server needs server.id".to_owned()),
            Some("label_selector") => {
                let text = value
                    .pointer("/label_selector/selector")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        "type label_selector needs label_selector.selector".to_owned()
                    })?;
                Selector::parse(text)?;
                Ok(Target::Selector(text.to_owned()))
            }
            _ => Err("type must be server or label_selector".to_owned()),
        }
    }

    /// Whether this target covers the server `id` with `labels`.
    pub fn covers(&self, id: u64, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Target::Server(server) => *server == id,
            Target::Selector(text) => {
                Selector::parse(text).is_ok_and(|s| !s.0.is_empty() && s.matches(labels))
            }
        }
    }
}

/// One firewall.
#[derive(Debug, Clone, PartialEq)]
pub struct FirewallRecord {
    /// Firewall id.
    pub id: u64,
    /// Name, unique in the project.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Creation time.
    pub created: OffsetDateTime,
    /// Rules, in order.
    pub rules: Vec<Rule>,
    /// What it is applied to, in the order applied.
    pub targets: Vec<Target>,
    /// Servers covered, with the moment the cover takes effect (`pending` before).
    pub covered: BTreeMap<u64, Instant>,
}

impl FirewallRecord {
    /// Whether one of the targets covers the server `id` with `labels`.
    pub fn targets_cover(&self, id: u64, labels: &BTreeMap<String, String>) -> bool {
        self.targets.iter().any(|t| t.covers(id, labels))
    }

    /// `applied` or `pending` for a covered server at `now`.
    pub fn status(&self, server: u64, now: Instant) -> Option<&'static str> {
        self.covered
            .get(&server)
            .map(|at| if now >= *at { "applied" } else { "pending" })
    }

    /// Brings the covered set up to date with `wanted`, the servers that should be covered
    /// now: newly covered ones take effect at `from`; the others drop out.
    pub fn cover(&mut self, wanted: &[u64], from: Instant) {
        self.covered.retain(|id, _| wanted.contains(id));
        for id in wanted {
            self.covered.entry(*id).or_insert(from);
        }
    }
}

/// Reads a `rules` array.
///
/// # Errors
/// Every problem found, each prefixed with the rule's index.
pub fn parse_rules(value: &Value) -> Result<Vec<Rule>, Vec<String>> {
    let Some(items) = value.as_array() else {
        return Err(vec!["must be an array".to_owned()]);
    };
    if items.len() > MAX_RULES {
        return Err(vec![format!("at most {MAX_RULES} rules per firewall")]);
    }
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match parse_rule(item) {
            Ok(rule) => rules.push(rule),
            Err(found) => problems.extend(found.into_iter().map(|p| format!("rule {i}: {p}"))),
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

fn parse_rule(item: &Value) -> Result<Rule, Vec<String>> {
    let mut problems = Vec::new();
    let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
    let direction = text("direction").unwrap_or_default();
    if direction != "in" && direction != "out" {
        problems.push("direction must be in or out".to_owned());
    }
    let protocol = text("protocol").unwrap_or_default();
    if !["tcp", "udp", "icmp", "esp", "gre"].contains(&protocol.as_str()) {
        problems.push("protocol must be tcp, udp, icmp, esp or gre".to_owned());
    }
    let port = text("port");
    match (&port, protocol.as_str()) {
        (None, "tcp" | "udp") => problems.push("port is required for tcp and udp".to_owned()),
        (Some(p), "tcp" | "udp") => {
            if !port_ok(p) {
                problems.push(format!("port '{p}' is not a port or a range low-high"));
            }
        }
        (Some(_), _) => problems.push("port is only allowed for tcp and udp".to_owned()),
        (None, _) => {}
    }
    let (own, other) = if direction == "out" {
        ("destination_ips", "source_ips")
    } else {
        ("source_ips", "destination_ips")
    };
    let list = |key: &str| -> Vec<String> {
        item.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    if !list(other).is_empty() {
        problems.push(format!("{other} must be empty for direction {direction}"));
    }
    let raw = list(own);
    if raw.is_empty() {
        problems.push(format!("{own} must list at least one CIDR block"));
    }
    if raw.len() > MAX_CIDRS {
        problems.push(format!("{own}: at most {MAX_CIDRS} CIDR blocks"));
    }
    let mut ips = Vec::new();
    for cidr in &raw {
        match canonical_cidr(cidr) {
            Some(c) => ips.push(c),
            None => problems.push(format!("'{cidr}' is not a CIDR block")),
        }
    }
    let description = text("description");
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 255)
    {
        problems.push("description must be at most 255 characters".to_owned());
    }
    if problems.is_empty() {
        Ok(Rule {
            direction,
            protocol,
            port,
            ips,
            description,
        })
    } else {
        Err(problems)
    }
}

/// `22`, `1024-5000`: ports 1..=65535, low ≤ high.
fn port_ok(port: &str) -> bool {
    let one = |p: &str| p.parse::<u16>().is_ok_and(|n| n >= 1);
    match port.split_once('-') {
        Some((low, high)) => {
            one(low) && one(high) && low.parse::<u16>().ok() <= high.parse::<u16>().ok()
        }
        None => one(port),
    }
}

/// `addr/prefix` with no host bits set, in canonical form (RFC 5952 for IPv6).
fn canonical_cidr(cidr: &str) -> Option<String> {
    let (addr, prefix) = cidr.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let (bits, host) = match addr {
        IpAddr::V4(a) => (32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (128, u128::from(a)),
    };
    if prefix > bits {
        return None;
    }
    let host_mask = u128::MAX
        .checked_shr(u32::from(128 - bits + prefix))
        .unwrap_or(0);
    (host & host_mask == 0).then(|| format!("{addr}/{prefix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks_must_have_no_host_bits_and_are_canonical() {
        assert_eq!(canonical_cidr("0.0.0.0/0").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(
            canonical_cidr("2001:0db8:0000::/48").as_deref(),
            Some("2001:db8::/48")
        );
        assert_eq!(
            canonical_cidr("10.0.1.1/32").as_deref(),
            Some("10.0.1.1/32")
        );
        for bad in ["10.0.1.1/24", "10.0.0.0/33", "10.0.0.0", "nope/8", "::/129"] {
            assert_eq!(canonical_cidr(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_rule_problem_is_reported_with_its_index() {
        let rules = json!([
            {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["0.0.0.0/0"]},
            {"direction": "sideways", "protocol": "icmp", "port": "1", "source_ips": []},
            {"direction": "out", "protocol": "udp", "port": "9-3",
             "destination_ips": ["::/0"], "source_ips": ["::/0"]},
        ]);
        let problems = parse_rules(&rules).expect_err("two bad rules");
        assert_eq!(
            problems,
            [
                "rule 1: direction must be in or out",
                "rule 1: port is only allowed for tcp and udp",
                "rule 1: source_ips must list at least one CIDR block",
                "rule 2: port '9-3' is not a port or a range low-high",
                "rule 2: source_ips must be empty for direction out",
            ]
        );
    }

    #[test]
    fn a_label_selector_target_needs_a_valid_selector() {
        let ok = json!({"type": "label_selector", "label_selector": {"selector": "fleet=acme"}});
        assert_eq!(
            Target::parse(&ok),
            Ok(Target::Selector("fleet=acme".into()))
        );
        let bad = json!({"type": "label_selector", "label_selector": {"selector": "a in b"}});
        assert!(Target::parse(&bad).is_err());
        assert!(Target::parse(&json!({"type": "server"})).is_err());
    }
}
