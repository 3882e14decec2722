//! The price mapping: which subscription statuses keep an agent (powered on or off) and which
//! prices give which server, read from a validated YAML file documented in `docs/billing.md`.
//! Start at [`Mapping::load`] and [`Mapping::resolve`].
//!
//! Every status must be mapped (nothing defaults), and every price of a subscription that keeps
//! an agent must be mapped, to exactly one server: an unmapped or ambiguous price is an error
//! reported back to Stripe, never a guess.

use super::events::{Price, Status, SubscriptionEvent};
use super::file::{self, FileError, Problems};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use tether_schema::Power;
use tether_schema::spanned::Spanned;

/// What a status means for the subscription's agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The agent exists and runs.
    Present,
    /// The agent exists, powered off.
    Off,
    /// No agent.
    Absent,
}

/// The server a price buys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The `plan` label.
    pub plan: String,
    /// Server type (`None`: fleet.yaml's default).
    pub server_type: Option<String>,
    /// Location (`None`: fleet.yaml's default).
    pub location: Option<String>,
    /// Image (`None`: fleet.yaml's default).
    pub image: Option<String>,
    /// Runtime version every agent on this price runs (required: tether pins versions).
    pub runtime: String,
}

/// Builds a [`Matcher`] from its value.
type MakeMatcher = fn(String) -> Matcher;

/// What a price entry matches on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Matcher {
    LookupKey(String),
    Price(String),
    Product(String),
}

impl Matcher {
    fn matches(&self, price: &Price) -> bool {
        match self {
            Matcher::LookupKey(k) => price.lookup_key.as_deref() == Some(k),
            Matcher::Price(id) => price.id == *id,
            Matcher::Product(id) => price.product == *id,
        }
    }
}

/// What a subscription event asks of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desired {
    /// No agent for the subscription.
    Absent,
    /// This agent.
    Agent {
        /// The customer (label and folder).
        customer: String,
        /// The server.
        server: Server,
        /// Power.
        power: Power,
    },
}

/// Why an event cannot be mapped: answered to Stripe with 422 and logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A price of the subscription is in no entry.
    #[error(
        "subscription {subscription}: price {price} (lookup_key {lookup_key}, product {product}) is not in the price mapping; add an entry for it (lookupKey, price or product) and let Stripe retry"
    )]
    Unmapped {
        /// The subscription.
        subscription: String,
        /// The price id.
        price: String,
        /// Its lookup key, or `none`.
        lookup_key: String,
        /// Its product.
        product: String,
    },
    /// No price, or several mapped prices.
    #[error(
        "subscription {subscription} has {count} mapped prices; tether needs exactly one to choose a server"
    )]
    NotOne {
        /// The subscription.
        subscription: String,
        /// How many.
        count: usize,
    },
}

/// A validated mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    statuses: BTreeMap<Status, Presence>,
    prices: Vec<(Matcher, Server)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMapping {
    statuses: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    prices: Vec<RawPrice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPrice {
    lookup_key: Option<Spanned<String>>,
    price: Option<Spanned<String>>,
    product: Option<Spanned<String>>,
    plan: Option<String>,
    #[serde(rename = "type")]
    server_type: Option<String>,
    location: Option<String>,
    image: Option<String>,
    runtime: Option<String>,
}

const PRESENCE_HINT: &str = "map it to `present`, `off` or `absent`";

impl Mapping {
    /// Reads and validates the mapping file.
    ///
    /// # Errors
    /// The file cannot be read, or holds problems (all listed).
    pub fn load(path: &Path) -> Result<Mapping, FileError> {
        let mut problems = Problems::default();
        let raw = file::read::<RawMapping>(path, &mut problems, |_| String::new())?;
        let mapping = raw.and_then(|raw| validate(raw, &mut problems));
        problems.finish(path, mapping)
    }

    /// Like [`Mapping::load`], with the text given (`path` names it in problems).
    ///
    /// # Errors
    /// The text holds problems (all listed).
    pub fn parse(path: &Path, text: &str) -> Result<Mapping, FileError> {
        let mut problems = Problems::default();
        let raw = file::parse::<RawMapping>(text, &mut problems, |_| String::new());
        let mapping = raw.and_then(|raw| validate(raw, &mut problems));
        problems.finish(path, mapping)
    }

    /// What `event` asks of the fleet.
    ///
    /// # Errors
    /// See [`MappingError`]; never for a status mapped to `absent`.
    pub fn resolve(&self, event: &SubscriptionEvent) -> Result<Desired, MappingError> {
        let power = match self.statuses.get(&event.status) {
            Some(Presence::Present) => Power::On,
            Some(Presence::Off) => Power::Off,
            Some(Presence::Absent) | None => return Ok(Desired::Absent),
        };
        let mut servers = Vec::new();
        for price in &event.prices {
            let Some((_, server)) = self.prices.iter().find(|(m, _)| m.matches(price)) else {
                return Err(MappingError::Unmapped {
                    subscription: event.subscription.clone(),
                    price: price.id.clone(),
                    lookup_key: price
                        .lookup_key
                        .clone()
                        .unwrap_or_else(|| "none".to_owned()),
                    product: price.product.clone(),
                });
            };
            servers.push(server);
        }
        servers.dedup();
        match servers.as_slice() {
            [server] => Ok(Desired::Agent {
                customer: event.customer.clone(),
                server: (*server).clone(),
                power,
            }),
            _ => Err(MappingError::NotOne {
                subscription: event.subscription.clone(),
                count: servers.len(),
            }),
        }
    }
}

fn validate(raw: RawMapping, problems: &mut Problems) -> Option<Mapping> {
    let mut statuses = BTreeMap::new();
    for (status, presence) in raw.statuses {
        let key = format!("statuses.{}", status.value);
        let Some(s) = Status::parse(&status.value) else {
            let known: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            let hint = format!("Stripe's statuses are {}", known.join(", "));
            problems.push(
                &key,
                Some(status.span),
                "not a Stripe subscription status".to_owned(),
                &hint,
            );
            continue;
        };
        let p = match presence.value.as_str() {
            "present" => Presence::Present,
            "off" => Presence::Off,
            "absent" => Presence::Absent,
            other => {
                problems.push(
                    &key,
                    Some(presence.span),
                    format!("`{other}` is not a presence"),
                    PRESENCE_HINT,
                );
                continue;
            }
        };
        statuses.insert(s, p);
    }
    for s in Status::ALL {
        if !statuses.contains_key(&s) && problems.0.iter().all(|p| p.key != format!("statuses.{s}"))
        {
            problems.push(
                &format!("statuses.{s}"),
                None,
                "is not mapped; every status must be, so nothing is guessed".to_owned(),
                PRESENCE_HINT,
            );
        }
    }
    let mut prices: Vec<(Matcher, Server)> = Vec::new();
    for (i, p) in raw.prices.into_iter().enumerate() {
        let key = format!("prices[{i}]");
        let matchers: Vec<(Spanned<String>, MakeMatcher)> = [
            p.lookup_key.map(|v| (v, Matcher::LookupKey as MakeMatcher)),
            p.price.map(|v| (v, Matcher::Price as MakeMatcher)),
            p.product.map(|v| (v, Matcher::Product as MakeMatcher)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let [(value, make)] = matchers.as_slice() else {
            problems.push(
                &key,
                matchers.first().map(|(v, _)| v.span),
                format!("names {} of lookupKey, price and product", matchers.len()),
                "give exactly one: lookupKey (preferred), price (price_…) or product (prod_…)",
            );
            continue;
        };
        let matcher = make(value.value.clone());
        if prices.iter().any(|(m, _)| *m == matcher) {
            problems.push(
                &key,
                Some(value.span),
                format!("`{}` is mapped twice", value.value),
                "keep one entry per price",
            );
            continue;
        }
        let Some(runtime) = p.runtime else {
            problems.push(
                &key,
                Some(value.span),
                format!("`{}` has no runtime", value.value),
                "add `runtime: <version>` (e.g. 1.4.2): tether pins the version every VM installs and never guesses one",
            );
            continue;
        };
        let plan = p.plan.unwrap_or_else(|| value.value.clone());
        prices.push((
            matcher,
            Server {
                plan,
                server_type: p.server_type,
                location: p.location,
                image: p.image,
                runtime,
            },
        ));
    }
    Some(Mapping { statuses, prices })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::serve::file::FileError;

    const TEXT: &str = "statuses:\n  active: present\n  trialing: present\n  past_due: present\n  unpaid: off\n  paused: off\n  canceled: absent\n  incomplete: absent\n  incomplete_expired: absent\nprices:\n  - lookupKey: pro_monthly\n    plan: pro\n    type: cpx21\n    location: fsn1\n    runtime: 1.4.2\n  - product: prod_small\n    type: cx22\n    runtime: 1.4.2\n";

    fn event(status: Status, prices: Vec<Price>) -> SubscriptionEvent {
        SubscriptionEvent {
            id: "evt_1".to_owned(),
            kind: "customer.subscription.updated".to_owned(),
            created: 1,
            subscription: "sub_1".to_owned(),
            customer: "cus_1".to_owned(),
            status,
            prices,
        }
    }

    fn price(id: &str, lookup: Option<&str>, product: &str) -> Price {
        Price {
            id: id.to_owned(),
            lookup_key: lookup.map(str::to_owned),
            product: product.to_owned(),
        }
    }

    #[test]
    fn statuses_and_prices_resolve_to_agents() -> Result<(), FileError> {
        let m = Mapping::parse(Path::new("mapping.yaml"), TEXT)?;
        let pro = vec![price("price_9", Some("pro_monthly"), "prod_x")];
        let Ok(Desired::Agent { server, power, .. }) =
            m.resolve(&event(Status::Unpaid, pro.clone()))
        else {
            panic!("unpaid should keep a powered-off agent");
        };
        assert_eq!(
            (server.plan.as_str(), server.server_type.as_deref(), power),
            ("pro", Some("cpx21"), Power::Off)
        );
        assert_eq!(
            m.resolve(&event(Status::Canceled, vec![])),
            Ok(Desired::Absent)
        );
        let small = m.resolve(&event(
            Status::Active,
            vec![price("price_2", None, "prod_small")],
        ));
        assert!(
            matches!(small, Ok(Desired::Agent { server, power: Power::On, .. }) if server.plan == "prod_small")
        );
        Ok(())
    }

    #[test]
    fn an_unmapped_or_ambiguous_price_is_an_error_not_a_guess() -> Result<(), FileError> {
        let m = Mapping::parse(Path::new("mapping.yaml"), TEXT)?;
        let unmapped = m.resolve(&event(
            Status::Active,
            vec![price("price_7", Some("gold"), "prod_g")],
        ));
        assert!(unmapped.is_err_and(|e| e.to_string().contains("price price_7 (lookup_key gold")));
        let two = vec![
            price("price_9", Some("pro_monthly"), "prod_x"),
            price("price_2", None, "prod_small"),
        ];
        assert_eq!(
            m.resolve(&event(Status::Active, two)),
            Err(MappingError::NotOne {
                subscription: "sub_1".to_owned(),
                count: 2
            })
        );
        Ok(())
    }

    #[test]
    fn every_problem_in_the_file_is_reported_with_its_line() {
        let text = "statuses:\n  active: present\n  sleeping: off\n  unpaid: maybe\nprices:\n  - lookupKey: a\n    price: price_1\n  - {}\n  - lookupKey: b\n";
        let Err(FileError::Invalid { problems, .. }) = Mapping::parse(Path::new("m.yaml"), text)
        else {
            panic!("the mapping should be refused");
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "statuses.sleeping",
            "statuses.unpaid",
            "statuses.canceled",
            "prices[0]",
            "prices[1]",
            "prices[2]",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        let unpaid = problems
            .iter()
            .find(|p| p.key == "statuses.unpaid")
            .map(|p| p.span.map(|s| s.line));
        assert_eq!(unpaid, Some(Some(4)));
    }
}
