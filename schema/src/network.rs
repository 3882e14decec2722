//! Network exposure of agent VMs: the fleet firewall (`spec.firewall` of fleet.yaml) and public
//! addresses (`publicNet` of a server description). The raw forms are [`RawFirewall`] and
//! [`RawPublicNet`]; [`validate_firewall`] and [`validate_public_net`] check them.

use crate::diagnostic::{Code, Span};
use crate::names::Invalid;
use crate::report::Report;
use crate::spanned::{Spanned, Text};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Most rules of one direction (Hetzner allows 50 per firewall, both directions together).
pub const MAX_RULES: usize = 25;
/// Most CIDR blocks one rule may list (Hetzner's limit).
pub const MAX_CIDRS: usize = 100;

/// `spec.firewall` of the Fleet, as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawFirewall {
    /// Traffic allowed in; everything else is dropped. Default: none, so inbound SSH is
    /// dropped too (reach VMs over the tailnet).
    #[serde(default)]
    pub inbound: Option<Spanned<Vec<RawRule>>>,
    /// Traffic allowed out. Absent: all outbound traffic is allowed (Tailscale needs outbound
    /// UDP and HTTPS). Present: only what it lists.
    #[serde(default)]
    pub outbound: Option<Spanned<Vec<RawRule>>>,
}

/// One firewall rule, as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRule {
    /// `tcp`, `udp`, `icmp`, `esp` or `gre`.
    pub protocol: Text,
    /// tcp and udp only: a port (`443`) or a range (`60000-61000`).
    #[serde(default)]
    pub port: Option<Text>,
    /// Inbound rules: the CIDR blocks traffic may come from (`0.0.0.0/0`, `::/0`: anywhere).
    #[serde(default)]
    pub from: Option<Spanned<Vec<Text>>>,
    /// Outbound rules: the CIDR blocks traffic may go to.
    #[serde(default)]
    pub to: Option<Spanned<Vec<Text>>>,
    /// Free text shown in the Hetzner console, at most 255 characters.
    #[serde(default)]
    pub description: Option<Text>,
}

/// `publicNet` of a server description, as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPublicNet {
    /// A public IPv4 address (default `true`); `false` saves its monthly price.
    #[serde(default)]
    pub ipv4: Option<Spanned<bool>>,
    /// A public IPv6 /64 (default `true`).
    #[serde(default)]
    pub ipv6: Option<Spanned<bool>>,
}

/// A firewall protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (needs a port).
    Tcp,
    /// UDP (needs a port).
    Udp,
    /// ICMP.
    Icmp,
    /// IPsec ESP.
    Esp,
    /// GRE.
    Gre,
}

impl Protocol {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Esp => "esp",
            Protocol::Gre => "gre",
        }
    }

    fn parse(text: &str) -> Result<Protocol, Invalid> {
        match text {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "icmp" => Ok(Protocol::Icmp),
            "esp" => Ok(Protocol::Esp),
            "gre" => Ok(Protocol::Gre),
            other => Err(Invalid {
                message: format!("`{other}` is not a firewall protocol"),
                hint: "write tcp, udp, icmp, esp or gre".to_owned(),
            }),
        }
    }
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Rule {
    /// Protocol.
    pub protocol: Protocol,
    /// Port or `low-high` range, for tcp and udp.
    pub port: Option<String>,
    /// CIDR blocks in canonical form (no host bits; IPv6 per RFC 5952).
    pub cidrs: Vec<String>,
    /// Description, if any.
    pub description: Option<String>,
}

/// The validated fleet firewall.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Firewall {
    /// Inbound rules (none: every inbound connection is dropped).
    pub inbound: Vec<Rule>,
    /// Outbound rules; `None`: all outbound traffic is allowed.
    pub outbound: Option<Vec<Rule>>,
}

/// Which public addresses a server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicNet {
    /// A primary IPv4 address.
    pub ipv4: bool,
    /// A primary IPv6 /64.
    pub ipv6: bool,
}

impl Default for PublicNet {
    /// Both, as Hetzner and tether did before `publicNet` existed.
    fn default() -> Self {
        PublicNet {
            ipv4: true,
            ipv6: true,
        }
    }
}

impl PublicNet {
    /// Whether this is the default (both addresses): then it is left out of serialized
    /// specs, so specs written before `publicNet` existed keep their form.
    pub fn is_default(&self) -> bool {
        *self == PublicNet::default()
    }
}

/// Validates `spec.firewall`, reporting every problem to `r`.
pub(crate) fn validate_firewall(raw: &RawFirewall, r: &mut Report<'_>) -> Firewall {
    let inbound = raw
        .inbound
        .as_ref()
        .map(|rules| direction(rules, "spec.firewall.inbound", Side::From, r))
        .unwrap_or_default();
    let outbound = raw
        .outbound
        .as_ref()
        .map(|rules| direction(rules, "spec.firewall.outbound", Side::To, r));
    Firewall { inbound, outbound }
}

/// Validates a `publicNet` at `path` over `base` (the fleet default, or Hetzner's).
pub(crate) fn validate_public_net(
    raw: Option<&RawPublicNet>,
    base: PublicNet,
    path: &str,
    span: Span,
    r: &mut Report<'_>,
) -> PublicNet {
    let Some(raw) = raw else {
        return base;
    };
    let net = PublicNet {
        ipv4: raw.ipv4.as_ref().map_or(base.ipv4, |b| b.value),
        ipv6: raw.ipv6.as_ref().map_or(base.ipv6, |b| b.value),
    };
    if !net.ipv4 && !net.ipv6 {
        let at = raw
            .ipv4
            .as_ref()
            .or(raw.ipv6.as_ref())
            .map_or(span, |b| b.span);
        r.push(
            at,
            path,
            Code::InvalidValue,
            "a server with neither IPv4 nor IPv6 has no way out: it cannot reach the tailnet, \
             its install sources, or carry a firewall"
                .into(),
            "keep `ipv6: true` (the default) when turning IPv4 off".into(),
        );
    }
    net
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    From,
    To,
}

fn direction(
    rules: &Spanned<Vec<RawRule>>,
    path: &str,
    side: Side,
    r: &mut Report<'_>,
) -> Vec<Rule> {
    if rules.value.len() > MAX_RULES {
        r.push(
            rules.span,
            path,
            Code::InvalidValue,
            format!(
                "{} rules; at most {MAX_RULES} per direction",
                rules.value.len()
            ),
            "merge rules: one rule may list up to 100 CIDR blocks".into(),
        );
    }
    let mut out: Vec<Rule> = rules
        .value
        .iter()
        .enumerate()
        .filter_map(|(i, raw)| rule(raw, &format!("{path}[{i}]"), side, r))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn rule(raw: &RawRule, path: &str, side: Side, r: &mut Report<'_>) -> Option<Rule> {
    let protocol = r.parse(&format!("{path}.protocol"), &raw.protocol, Protocol::parse);
    let needs_port = matches!(protocol, Some(Protocol::Tcp | Protocol::Udp));
    let port = match (&raw.port, needs_port) {
        (Some(p), true) => r.parse(&format!("{path}.port"), p, parse_port),
        (None, true) => {
            r.push(
                raw.protocol.span,
                &format!("{path}.port"),
                Code::MissingField,
                "tcp and udp rules need a port".into(),
                "write `port: \"443\"` or a range `port: \"60000-61000\"`".into(),
            );
            None
        }
        (Some(p), false) => {
            r.push(
                p.span,
                &format!("{path}.port"),
                Code::InvalidValue,
                "only tcp and udp rules have ports".into(),
                "remove `port`".into(),
            );
            None
        }
        (None, false) => None,
    };
    let (own, own_key, other, other_key) = match side {
        Side::From => (&raw.from, "from", &raw.to, "to"),
        Side::To => (&raw.to, "to", &raw.from, "from"),
    };
    if let Some(o) = other {
        r.push(
            o.span,
            &format!("{path}.{other_key}"),
            Code::InvalidValue,
            format!("`{other_key}` does not belong in this direction"),
            format!("use `{own_key}` for the CIDR blocks of this rule"),
        );
    }
    let cidr_path = format!("{path}.{own_key}");
    let cidrs = match own {
        None => {
            r.push(
                raw.protocol.span,
                &cidr_path,
                Code::MissingField,
                format!("the rule lists no `{own_key}`"),
                format!(
                    "list CIDR blocks, e.g. `{own_key}: [\"0.0.0.0/0\", \"::/0\"]` for anywhere"
                ),
            );
            Vec::new()
        }
        Some(list) if list.value.is_empty() || list.value.len() > MAX_CIDRS => {
            r.push(
                list.span,
                &cidr_path,
                Code::InvalidValue,
                format!(
                    "{} CIDR blocks; a rule lists 1 to {MAX_CIDRS}",
                    list.value.len()
                ),
                "split the rule or widen the blocks".into(),
            );
            Vec::new()
        }
        Some(list) => r.parse_all(&cidr_path, &list.value, parse_cidr),
    };
    let description = raw.description.as_ref().and_then(|d| {
        if d.value.chars().count() > 255 || d.value.chars().any(char::is_control) {
            r.push(
                d.span,
                &format!("{path}.description"),
                Code::InvalidValue,
                "the description is longer than 255 characters or holds control characters".into(),
                "shorten it to one line of at most 255 characters".into(),
            );
            None
        } else {
            Some(d.value.clone())
        }
    });
    Some(Rule {
        protocol: protocol?,
        port: if needs_port { Some(port?) } else { None },
        cidrs,
        description,
    })
}

/// `443` or `60000-61000`: ports 1 to 65535, low ≤ high.
fn parse_port(text: &str) -> Result<String, Invalid> {
    let one = |p: &str| p.parse::<u16>().ok().filter(|n| *n >= 1);
    let ok = match text.split_once('-') {
        Some((low, high)) => matches!((one(low), one(high)), (Some(l), Some(h)) if l <= h),
        None => one(text).is_some(),
    };
    if ok {
        Ok(text.to_owned())
    } else {
        Err(Invalid {
            message: format!("`{text}` is not a port or a port range"),
            hint: "write a port from 1 to 65535 (`443`) or a range low-high (`60000-61000`)"
                .to_owned(),
        })
    }
}

/// `addr/prefix` with no host bits set, returned in canonical form.
fn parse_cidr(text: &str) -> Result<String, Invalid> {
    let invalid = |why: &str| Invalid {
        message: format!("`{text}` is not a CIDR block: {why}"),
        hint: "write a network such as `203.0.113.0/24` or `2001:db8::/32`, or one address as \
               `203.0.113.7/32`; `0.0.0.0/0` and `::/0` mean anywhere"
            .to_owned(),
    };
    let (addr, prefix) = text
        .split_once('/')
        .ok_or_else(|| invalid("no `/prefix`"))?;
    let addr: IpAddr = addr.parse().map_err(|_| invalid("not an IP address"))?;
    let prefix: u8 = prefix
        .parse()
        .map_err(|_| invalid("the prefix is not a number"))?;
    let (bits, value) = match addr {
        IpAddr::V4(a) => (32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (128, u128::from(a)),
    };
    if prefix > bits {
        return Err(invalid("the prefix is too long"));
    }
    let host = u128::MAX
        .checked_shr(u32::from(128 - bits + prefix))
        .unwrap_or(0);
    if value & host != 0 {
        return Err(invalid("host bits are set"));
    }
    Ok(format!("{addr}/{prefix}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Content, SourceFile, load_fleet};

    const AGENT: &str = "apiVersion: tether/v1\nkind: Agent\nmetadata: {name: a1}\nspec:\n  subscription: sub_1\n  runtime: {version: \"1.0\"}\n";

    fn load(fleet_extra: &str, agent_extra: &str) -> Result<crate::Fleet, crate::LoadError> {
        load_with("", fleet_extra, agent_extra)
    }

    /// `defaults` is added to `spec.defaults.server`.
    fn load_with(
        defaults: &str,
        fleet_extra: &str,
        agent_extra: &str,
    ) -> Result<crate::Fleet, crate::LoadError> {
        let fleet = format!(
            "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: f}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04{defaults}}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  catalog: {{serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}}\n{fleet_extra}"
        );
        let file = |path: &str, text: String| SourceFile {
            path: path.into(),
            content: Content::Bytes(text.into_bytes()),
        };
        load_fleet(&[
            file("fleet.yaml", fleet),
            file("agents/a1.yaml", format!("{AGENT}{agent_extra}")),
        ])
    }

    #[test]
    fn a_fleet_without_a_firewall_keeps_both_addresses_and_no_firewall() {
        let fleet = load("", "").expect("valid");
        assert_eq!(fleet.settings.firewall, None);
        let agent = fleet.agents.values().next().expect("one agent");
        assert!(agent.server.public_net.is_default());
    }

    #[test]
    fn an_empty_firewall_drops_all_inbound_and_leaves_outbound_open() {
        let fleet = load("  firewall: {}\n", "").expect("valid");
        assert_eq!(fleet.settings.firewall, Some(Firewall::default()));
    }

    #[test]
    fn agents_inherit_the_fleet_public_net_and_may_override_it() {
        let fleet = load_with(", publicNet: {ipv4: false}", "", "").expect("valid");
        let agent = fleet.agents.values().next().expect("one agent");
        assert_eq!(
            agent.server.public_net,
            PublicNet {
                ipv4: false,
                ipv6: true
            }
        );
        let own = load("", "  server: {publicNet: {ipv4: false}}\n").expect("valid");
        let agent = own.agents.values().next().expect("one agent");
        assert!(!agent.server.public_net.ipv4);
    }

    #[test]
    fn bad_rules_are_each_reported_at_their_line_with_the_field_path() {
        let firewall = "  firewall:\n    inbound:\n      - {protocol: tcp, from: [\"0.0.0.0/0\"]}\n      - {protocol: icmp, port: \"1\", from: [\"10.0.0.1/8\"]}\n    outbound:\n      - {protocol: udp, port: \"41641\", from: [\"::/0\"]}\n";
        let e = load(firewall, "").expect_err("three bad rules");
        let found: Vec<(String, usize)> = e
            .diagnostics
            .iter()
            .map(|d| (d.path.clone(), d.span.map_or(0, |s| s.line)))
            .collect();
        assert_eq!(
            found,
            [
                ("spec.firewall.inbound[0].port".to_owned(), 10),
                ("spec.firewall.inbound[1].port".to_owned(), 11),
                ("spec.firewall.inbound[1].from[0]".to_owned(), 11),
                ("spec.firewall.outbound[0].to".to_owned(), 13),
                ("spec.firewall.outbound[0].from".to_owned(), 13),
            ]
        );
        assert!(e.diagnostics.iter().all(|d| d.file == "fleet.yaml"));
        assert!(e.diagnostics[2].message.contains("host bits"), "{e}");
    }

    #[test]
    fn a_server_with_neither_address_is_refused_naming_the_agent_file() {
        let e = load("", "  server: {publicNet: {ipv4: false, ipv6: false}}\n")
            .expect_err("no address at all");
        assert_eq!(e.diagnostics.len(), 1, "{e}");
        let d = &e.diagnostics[0];
        assert_eq!(
            (d.file.as_str(), d.path.as_str()),
            ("agents/a1.yaml", "spec.server.publicNet")
        );
        assert!(d.hint.as_deref().is_some_and(|h| h.contains("ipv6: true")));
    }

    #[test]
    fn cidr_blocks_are_canonical_and_have_no_host_bits() {
        assert_eq!(parse_cidr("::/0").as_deref(), Ok("::/0"));
        assert_eq!(parse_cidr("2001:0db8::/32").as_deref(), Ok("2001:db8::/32"));
        assert_eq!(
            parse_cidr("203.0.113.7/32").as_deref(),
            Ok("203.0.113.7/32")
        );
        let e = parse_cidr("203.0.113.7/24").expect_err("host bits");
        assert!(e.message.contains("host bits"), "{e:?}");
        for bad in ["203.0.113.0", "x/8", "10.0.0.0/40", "10.0.0.0/x"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_are_single_or_ordered_ranges() {
        assert!(parse_port("443").is_ok());
        assert!(parse_port("60000-61000").is_ok());
        for bad in ["0", "70000", "9-3", "ssh", ""] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_public_net_has_both_addresses() {
        assert!(PublicNet::default().is_default());
        assert!(
            !PublicNet {
                ipv4: false,
                ipv6: true
            }
            .is_default()
        );
    }
}
