//! What the cloud offers, and the check that a plan asks only for that: every server a plan
//! creates, replaces or resizes must have a server type, location and image Hetzner offers
//! now (the type in that location, and not deprecated). Pure: the catalog is read once per
//! pass by `tether::observe`. A plan that fails the check is a plan error, so `apply` never
//! starts a change Hetzner would refuse halfway (a resize that powered the server off).

use super::{Action, Plan};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use tether_schema::{Agent, Fleet};

/// Hetzner's catalog as the planner needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offer {
    /// Server types by name.
    pub server_types: BTreeMap<String, OfferedType>,
    /// Location names.
    pub locations: BTreeSet<String>,
    /// System image names, and their ids as text.
    pub images: BTreeSet<String>,
}

/// One server type on offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferedType {
    /// The locations a new server of this type can be created in.
    pub locations: BTreeSet<String>,
    /// When deprecated: the date after which it cannot be ordered.
    pub deprecated_after: Option<String>,
    /// Its disk in GB: a server can change to it in place only if its disk is no bigger.
    pub disk_gb: Option<u64>,
    /// Where its disk lives (`local`, `network`); a type change keeps it. Empty: unknown.
    pub storage_type: String,
    /// Its CPU architecture (`x86`, `arm`); a type change keeps it. Empty: unknown.
    pub architecture: String,
}

/// One field of one agent that asks for something not on offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unoffered {
    /// The spec file.
    pub file: String,
    /// The field, e.g. `spec.server.type`.
    pub field: &'static str,
    /// The value asked for.
    pub value: String,
    /// Why it is not offered, and what is.
    pub why: String,
}

impl fmt::Display for Unoffered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} `{}` {}",
            self.file, self.field, self.value, self.why
        )
    }
}

/// The plan asks for what Hetzner does not offer: every problem, in agent order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the plan asks Hetzner for what it does not offer, so nothing was changed; fix the spec or the fleet defaults:{}",
    lines(.0)
)]
pub struct NotOffered(pub Vec<Unoffered>);

fn lines(problems: &[Unoffered]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

/// Every agent the plan creates a server for, replaces, or resizes, checked against `offer`;
/// the problems in agent order. Agents the plan leaves alone are not checked: a server of a
/// type Hetzner has since deprecated keeps running untouched.
pub fn check(fleet: &Fleet, offer: &Offer, plan: &Plan) -> Vec<Unoffered> {
    let touched: BTreeSet<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { agent, .. }
            | Action::Replace { agent, .. }
            | Action::Resize { agent, .. } => Some(agent.as_str()),
            _ => None,
        })
        .collect();
    fleet
        .agents
        .values()
        .filter(|a| touched.contains(a.name.as_str()))
        .flat_map(|a| check_agent(a, offer))
        .collect()
}

fn check_agent(agent: &Agent, offer: &Offer) -> Vec<Unoffered> {
    let server = &agent.server;
    let (kind, location, image) = (
        server.server_type.to_string(),
        server.location.to_string(),
        server.image.to_string(),
    );
    let problem = |field, value: &str, why| Unoffered {
        file: agent.source.clone(),
        field,
        value: value.to_owned(),
        why,
    };
    let mut problems = Vec::new();
    if !offer.locations.contains(&location) {
        problems.push(problem(
            "spec.server.location",
            &location,
            format!(
                "is not a Hetzner location; offered: {}",
                list(&offer.locations)
            ),
        ));
    }
    match offer.server_types.get(&kind) {
        None => problems.push(problem(
            "spec.server.type",
            &kind,
            format!(
                "is not offered by Hetzner; offered: {}",
                list(offer.server_types.keys())
            ),
        )),
        Some(t) => {
            if let Some(after) = &t.deprecated_after {
                problems.push(problem(
                    "spec.server.type",
                    &kind,
                    format!(
                        "is deprecated by Hetzner (no new servers after {after}); offered in {location}: {}",
                        list(offered_in(offer, &location))
                    ),
                ));
            } else if offer.locations.contains(&location) && !t.locations.contains(&location) {
                problems.push(problem(
                    "spec.server.type",
                    &kind,
                    format!(
                        "is not offered in {location} (it is in: {}); offered in {location}: {}",
                        list(&t.locations),
                        list(offered_in(offer, &location))
                    ),
                ));
            }
        }
    }
    if !offer.images.contains(&image) {
        let names = offer
            .images
            .iter()
            .filter(|i| !i.bytes().all(|b| b.is_ascii_digit()));
        problems.push(problem(
            "spec.server.image",
            &image,
            format!("is not a Hetzner system image; offered: {}", list(names)),
        ));
    }
    problems
}

/// The non-deprecated types offered in `location`.
fn offered_in<'a>(offer: &'a Offer, location: &'a str) -> impl Iterator<Item = &'a String> {
    offer
        .server_types
        .iter()
        .filter(move |(_, t)| t.deprecated_after.is_none() && t.locations.contains(location))
        .map(|(name, _)| name)
}

fn list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let all: Vec<&str> = items.into_iter().map(String::as_str).collect();
    if all.is_empty() {
        "none".to_owned()
    } else {
        all.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Context, Observed, plan};
    use std::path::Path;

    fn example_fleet() -> Fleet {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fleet");
        tether_schema::load_fleet(&crate::testing::fleet_files(&dir)).expect("valid example fleet")
    }

    /// Everything the fleet uses, offered everywhere it uses it.
    fn offer_of(fleet: &Fleet) -> Offer {
        let mut offer = Offer::default();
        for agent in fleet.agents.values() {
            let s = &agent.server;
            offer.locations.insert(s.location.to_string());
            offer.images.insert(s.image.to_string());
            for t in ["cpx11", "cpx21", "cpx31"] {
                offer
                    .server_types
                    .entry(t.to_owned())
                    .or_default()
                    .locations
                    .insert(s.location.to_string());
            }
        }
        offer
    }

    fn problems(fleet: &Fleet, offer: &Offer) -> Vec<String> {
        let plan = plan(fleet, &Observed::default(), &Context::default());
        check(fleet, offer, &plan)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_fleet_within_the_offer_passes() {
        let fleet = example_fleet();
        assert_eq!(problems(&fleet, &offer_of(&fleet)), Vec::<String>::new());
    }

    #[test]
    fn a_type_not_offered_names_the_file_the_field_and_what_is_offered() {
        let fleet = example_fleet();
        let mut offer = offer_of(&fleet);
        offer.server_types.remove("cpx31");
        let found = problems(&fleet, &offer);
        assert!(
            found.contains(
                &"agents/acme/acme-prod.yaml: spec.server.type `cpx31` is not offered by Hetzner; offered: cpx11, cpx21"
                    .to_owned()
            ),
            "{found:?}"
        );
    }

    #[test]
    fn a_deprecated_type_or_one_missing_from_the_location_is_a_problem() {
        let fleet = example_fleet();
        let mut offer = offer_of(&fleet);
        if let Some(t) = offer.server_types.get_mut("cpx31") {
            t.deprecated_after = Some("2026-12-01T00:00:00Z".to_owned());
        }
        if let Some(t) = offer.server_types.get_mut("cpx21") {
            t.locations.remove("fsn1");
        }
        let found = problems(&fleet, &offer).join("\n");
        assert!(
            found.contains("`cpx31` is deprecated by Hetzner (no new servers after 2026-12-01T00:00:00Z); offered in fsn1: cpx11"),
            "{found}"
        );
        assert!(found.contains("`cpx21` is not offered in fsn1"), "{found}");
    }

    #[test]
    fn agents_the_plan_leaves_alone_are_not_checked() {
        let fleet = example_fleet();
        let plan = Plan {
            actions: Vec::new(),
            ..plan(&fleet, &Observed::default(), &Context::default())
        };
        assert!(check(&fleet, &Offer::default(), &plan).is_empty());
    }
}
