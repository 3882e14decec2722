//! Stage two: raw documents → validated [`crate::model`] types, reporting every broken rule.
//!
//! Each function takes the raw document and a [`Report`] to add problems to; it returns a value
//! only when that document is entirely valid.

mod catalog;

use crate::cloud_init;
use crate::diagnostic::{Code, Span};
use crate::model::{Agent, ConfirmDeletes, FleetSettings, Labels, Policy, Runtime, ServerSpec};
use crate::names::{
    AgentName, EnvName, FleetName, ImageName, Invalid, LabelKey, LabelValue, LocationName,
    RuntimeVersion, ServerTypeName, SshKeyName, Subscription, Tailnet, TailnetTag,
};
use crate::raw::{self, RawAgent, RawFleet};
use crate::report::Report;
use crate::spanned::{Spanned, Text};
use crate::text;
use catalog::{catalog, defaults, in_catalog};
use std::collections::BTreeMap;

/// Checks a document's `apiVersion` and `kind`.
fn header(r: &mut Report<'_>, api_version: &Text, kind: &Text, expected_kind: &str) {
    if api_version.value != raw::API_VERSION {
        r.push(
            api_version.span,
            "apiVersion",
            Code::WrongKind,
            format!("unsupported apiVersion `{}`", api_version.value),
            format!("use `apiVersion: {}`", raw::API_VERSION),
        );
    }
    if kind.value != expected_kind {
        r.push(
            kind.span,
            "kind",
            Code::WrongKind,
            format!("expected kind `{expected_kind}`, found `{}`", kind.value),
            format!("this file must hold a `kind: {expected_kind}` document"),
        );
    }
}

/// The fleet's validated settings plus the defaults agents inherit.
pub(crate) struct FleetContext {
    pub settings: FleetSettings,
    pub defaults: Defaults,
}

/// `spec.defaults.server` of the fleet, validated.
#[derive(Default)]
pub(crate) struct Defaults {
    server_type: Option<ServerTypeName>,
    location: Option<LocationName>,
    image: Option<ImageName>,
    ssh_keys: Option<Vec<SshKeyName>>,
    public_net: crate::network::PublicNet,
}

pub(crate) fn fleet(raw: RawFleet, r: &mut Report<'_>) -> Option<FleetContext> {
    header(r, &raw.api_version, &raw.kind, "Fleet");
    let name = r.parse("metadata.name", &raw.metadata.name, FleetName::parse);
    let spec = raw.spec;
    let tailnet = match &spec.tailscale.tailnet {
        Some(t) => r.parse("spec.tailscale.tailnet", t, Tailnet::parse),
        None => Tailnet::parse("-").ok(),
    };
    let tags = r.parse_all(
        "spec.tailscale.tags",
        &spec.tailscale.tags.value,
        TailnetTag::parse,
    );
    if spec.tailscale.tags.value.is_empty() {
        r.push(
            spec.tailscale.tags.span,
            "spec.tailscale.tags",
            Code::InvalidValue,
            "the fleet allows no Tailscale tags".into(),
            "list at least one tag, e.g. `tags: [\"tag:agent\"]`: auth keys minted by an OAuth client must be tagged".into(),
        );
    }
    let mut policy = Policy::default();
    if let Some(p) = spec.policy.prune {
        policy.prune = p;
    }
    if let Some(n) = spec.policy.max_deletions_per_run {
        policy.max_deletions_per_run = n;
    }
    if let Some(n) = spec.policy.max_deletions_per_hour {
        policy.max_deletions_per_hour = n;
    }
    if let Some(n) = spec.policy.max_disruptions_per_run {
        policy.max_disruptions_per_run = n;
    }
    if let Some(pct) = &spec.policy.max_deletion_percent {
        policy.max_deletion_percent = percent(pct, "spec.policy.maxDeletionPercent", r);
    }
    if let Some(pct) = &spec.policy.max_disruption_percent {
        policy.max_disruption_percent = percent(pct, "spec.policy.maxDisruptionPercent", r);
    }
    if let Some(by) = &spec.policy.confirm_deletes {
        match by.value.as_str() {
            "stripe" => policy.confirm_deletes = Some(ConfirmDeletes::Stripe),
            other => r.push(
                by.span,
                "spec.policy.confirmDeletes",
                Code::InvalidValue,
                format!("`{other}` is not a system tether can ask"),
                "write `stripe` (the subscription lookup of the Stripe API), or remove the key"
                    .into(),
            ),
        }
    }
    if let Some(text) = &spec.policy.quarantine_grace {
        policy.quarantine_grace = r
            .parse("spec.policy.quarantineGrace", text, crate::grace::parse)
            .unwrap_or_default();
    }
    policy.heal = crate::heal::validate(&spec.policy.heal, r);
    let catalog = catalog(&spec.catalog, r);
    let defaults = defaults(&spec.defaults.server, &catalog, r);
    let projects = crate::projects::validate(spec.projects.as_ref(), r);
    let firewall = spec
        .firewall
        .as_ref()
        .map(|f| crate::network::validate_firewall(f, r));
    let public_env = crate::public_env::validate(spec.public_env.as_ref(), r);
    let settings = FleetSettings {
        name: name?,
        tailnet: tailnet?,
        tags,
        policy,
        catalog,
        suspend: spec.suspend.unwrap_or(false),
        projects,
        firewall,
        public_env,
    };
    r.ok().then_some(FleetContext { settings, defaults })
}

/// A percentage field's value, reported when above 100.
fn percent(pct: &Spanned<u32>, path: &str, r: &mut Report<'_>) -> u32 {
    if pct.value > 100 {
        r.push(
            pct.span,
            path,
            Code::InvalidValue,
            format!("{} is not a percentage", pct.value),
            "use a whole number from 0 to 100".into(),
        );
    }
    pct.value
}

/// What the fleet offers for one server field: its default and its catalog, or nothing when
/// fleet.yaml itself failed to load.
struct FleetChoice<'f, T> {
    default: Option<&'f T>,
    allowed: &'f [T],
}

/// One server field resolved from the agent or the fleet default.
fn server_field<T: AsRef<str> + Clone>(
    r: &mut Report<'_>,
    own: Option<&Text>,
    fleet: Option<FleetChoice<'_, T>>,
    field: &str,
    parse: fn(&str) -> Result<T, Invalid>,
    what: &str,
    spec_span: Span,
) -> Option<T> {
    let path = format!("spec.server.{field}");
    match (own, fleet) {
        (Some(text), fleet) => {
            let v = r.parse(&path, text, parse);
            match fleet {
                Some(f) => in_catalog(r, &path, text, v, f.allowed, what),
                None => v,
            }
        }
        (
            None,
            Some(FleetChoice {
                default: Some(d), ..
            }),
        ) => Some(d.clone()),
        (None, Some(_)) => {
            r.push(
                spec_span,
                &path,
                Code::MissingField,
                format!("no {what}: the agent sets none and fleet.yaml has no default"),
                format!(
                    "set `spec.server.{field}` here or `spec.defaults.server.{field}` in fleet.yaml"
                ),
            );
            None
        }
        (None, None) => None,
    }
}

/// Validates one agent document; `fleet` is `None` when fleet.yaml itself failed, in which
/// case checks that need it (defaults, catalog, allowed tags, user_data size) are skipped.
pub(crate) fn agent(
    raw: RawAgent,
    source: &str,
    fleet: Option<&FleetContext>,
    r: &mut Report<'_>,
) -> Option<Agent> {
    header(r, &raw.api_version, &raw.kind, "Agent");
    let name = r.parse("metadata.name", &raw.metadata.name, AgentName::parse);
    let labels = labels(&raw.metadata.labels, r);
    let spec = raw.spec;
    let subscription = r.parse("spec.subscription", &spec.subscription, Subscription::parse);
    let spec_span = spec.subscription.span;
    let s = &spec.server;
    let server_type = server_field(
        r,
        s.server_type.as_ref(),
        fleet.map(|f| FleetChoice {
            default: f.defaults.server_type.as_ref(),
            allowed: &f.settings.catalog.server_types,
        }),
        "type",
        ServerTypeName::parse,
        "server type",
        spec_span,
    );
    let location = server_field(
        r,
        s.location.as_ref(),
        fleet.map(|f| FleetChoice {
            default: f.defaults.location.as_ref(),
            allowed: &f.settings.catalog.locations,
        }),
        "location",
        LocationName::parse,
        "location",
        spec_span,
    );
    let image = server_field(
        r,
        s.image.as_ref(),
        fleet.map(|f| FleetChoice {
            default: f.defaults.image.as_ref(),
            allowed: &f.settings.catalog.images,
        }),
        "image",
        ImageName::parse,
        "image",
        spec_span,
    );
    let ssh_keys = match &spec.server.ssh_keys {
        Some(keys) => r.parse_all("spec.server.sshKeys", keys, SshKeyName::parse),
        None => fleet
            .and_then(|f| f.defaults.ssh_keys.clone())
            .unwrap_or_default(),
    };
    let project = crate::projects::pin(
        s.project.as_ref(),
        fleet.map(|f| f.settings.projects.as_slice()),
        r,
    );
    let public_net = crate::network::validate_public_net(
        s.public_net.as_ref(),
        fleet.map(|f| f.defaults.public_net).unwrap_or_default(),
        "spec.server.publicNet",
        spec_span,
        r,
    );
    let tags = tags(spec.tailscale.as_ref().map(|t| &t.tags), fleet, r);
    let runtime = runtime(&spec.runtime, r);
    let power = spec.power.map(|p| p.value).unwrap_or_default();
    let protect = spec.protect.unwrap_or(false);
    let quarantine_grace = spec
        .quarantine_grace
        .as_ref()
        .and_then(|text| r.parse("spec.quarantineGrace", text, crate::grace::parse));
    let fleet = fleet?;
    if !r.ok() {
        return None;
    }
    let agent = Agent {
        name: name?,
        source: source.to_owned(),
        labels,
        subscription: subscription?,
        server: ServerSpec {
            server_type: server_type?,
            location: location?,
            image: image?,
            ssh_keys,
            project,
            public_net,
        },
        tags,
        runtime: runtime?,
        power,
        protect,
        quarantine_grace,
    };
    if let Some(size) = cloud_init::oversize(&agent, &fleet.settings) {
        r.push(
            spec.runtime.version.span,
            "spec.runtime",
            Code::UserDataTooLarge,
            format!(
                "the rendered cloud-init is {size} bytes; Hetzner accepts at most {} bytes of user_data",
                cloud_init::MAX_USER_DATA_BYTES
            ),
            "shorten `spec.runtime.env`".into(),
        );
        return None;
    }
    Some(agent)
}

fn labels(raw: &BTreeMap<Text, Text>, r: &mut Report<'_>) -> Labels {
    let mut labels = Labels::new();
    for (key, value) in raw {
        let path = format!("metadata.labels.{}", key.value);
        let k = r.parse(&path, key, LabelKey::parse);
        let v = r.parse(&path, value, LabelValue::parse);
        if let (Some(k), Some(v)) = (k, v) {
            labels.insert(k, v);
        }
    }
    labels
}

fn tags(
    own: Option<&Spanned<Vec<Text>>>,
    fleet: Option<&FleetContext>,
    r: &mut Report<'_>,
) -> Vec<TailnetTag> {
    let Some(own) = own else {
        return fleet.map(|f| f.settings.tags.clone()).unwrap_or_default();
    };
    if own.value.is_empty() {
        r.push(
            own.span,
            "spec.tailscale.tags",
            Code::InvalidValue,
            "the agent has no Tailscale tags".into(),
            "list at least one tag, or leave `spec.tailscale` out to use the fleet's tags".into(),
        );
    }
    let mut tags = Vec::new();
    for (i, text) in own.value.iter().enumerate() {
        let path = format!("spec.tailscale.tags[{i}]");
        let Some(tag) = r.parse(&path, text, TailnetTag::parse) else {
            continue;
        };
        if let Some(f) = fleet
            && !f.settings.tags.contains(&tag)
        {
            let allowed: Vec<&str> = f.settings.tags.iter().map(TailnetTag::as_str).collect();
            r.push(
                text.span,
                &path,
                Code::TagNotAllowed,
                format!("tag `{tag}` is not allowed by the fleet"),
                format!(
                    "use one of [{}], or add it to `spec.tailscale.tags` in fleet.yaml",
                    allowed.join(", ")
                ),
            );
            continue;
        }
        tags.push(tag);
    }
    tags
}

fn runtime(raw: &raw::RawRuntime, r: &mut Report<'_>) -> Option<Runtime> {
    let version = r.parse("spec.runtime.version", &raw.version, RuntimeVersion::parse);
    let mut env = BTreeMap::new();
    for (key, value) in &raw.env {
        let path = format!("spec.runtime.env.{}", key.value);
        let name = r.parse(&path, key, EnvName::parse);
        if let Some(c) = value
            .value
            .chars()
            .find(|c| c.is_control() || text::forbidden(*c).is_some())
        {
            r.push(
                value.span,
                &text::printable(&path),
                Code::InvalidValue,
                format!(
                    "environment values must be one line of printable text; this one holds {}",
                    text::describe(c)
                ),
                "remove newlines, tabs and other control or invisible characters from the value"
                    .into(),
            );
            continue;
        }
        if let Some(name) = name {
            env.insert(name, value.value.clone());
        }
    }
    Some(Runtime {
        version: version?,
        env,
    })
}
