//! Stripe events as they arrive (wire types) and the one thing tether takes from them: a
//! [`SubscriptionEvent`], a snapshot of one subscription at the event's `created` time. Start
//! at [`parse`].
//!
//! Every `customer.subscription.*` event carries the whole subscription object, so each of the
//! handled lifecycle events is read the same way: the `status` and the prices decide the agent.
//! Ids are checked to be plain Stripe ids (letters, digits, `_`), because they go into commit
//! trailers and spec files.

use serde::Deserialize;
use std::fmt;

/// A subscription's `status`, as Stripe names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// `active`.
    Active,
    /// `trialing`.
    Trialing,
    /// `past_due`.
    PastDue,
    /// `unpaid`.
    Unpaid,
    /// `canceled`.
    Canceled,
    /// `incomplete`.
    Incomplete,
    /// `incomplete_expired`.
    IncompleteExpired,
    /// `paused`.
    Paused,
}

impl Status {
    /// Every status, in Stripe's documentation order.
    pub const ALL: [Status; 8] = [
        Status::Incomplete,
        Status::IncompleteExpired,
        Status::Trialing,
        Status::Active,
        Status::PastDue,
        Status::Canceled,
        Status::Unpaid,
        Status::Paused,
    ];

    /// Stripe's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Trialing => "trialing",
            Status::PastDue => "past_due",
            Status::Unpaid => "unpaid",
            Status::Canceled => "canceled",
            Status::Incomplete => "incomplete",
            Status::IncompleteExpired => "incomplete_expired",
            Status::Paused => "paused",
        }
    }

    /// The status spelled `text`.
    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The subscription event types tether acts on.
pub const HANDLED: [&str; 5] = [
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
];

/// One subscription item's price, as far as the mapping looks at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    /// `price.id` (`price_…`).
    pub id: String,
    /// `price.lookup_key`, when set.
    pub lookup_key: Option<String>,
    /// `price.product`'s id (`prod_…`).
    pub product: String,
}

/// A subscription as of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionEvent {
    /// The event id (`evt_…`): the idempotency key.
    pub id: String,
    /// The event type, one of [`HANDLED`].
    pub kind: String,
    /// The event's `created` time (unix seconds): with `id`, its place in the order.
    pub created: i64,
    /// The subscription id (`sub_…`).
    pub subscription: String,
    /// The customer id (`cus_…`).
    pub customer: String,
    /// The subscription's status.
    pub status: Status,
    /// Its items' prices.
    pub prices: Vec<Price>,
}

impl SubscriptionEvent {
    /// Its place in the subscription's order: `created`, ties broken by id.
    pub fn order(&self) -> (i64, &str) {
        (self.created, &self.id)
    }
}

/// What a verified body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A subscription lifecycle event.
    Subscription(SubscriptionEvent),
    /// Any other event: acknowledged, nothing done.
    Ignored {
        /// The event id.
        id: String,
        /// Its type.
        kind: String,
    },
}

/// Why a verified body is not a usable event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not an event object.
    #[error("the body is not a Stripe event: {0}")]
    NotAnEvent(String),
    /// A subscription event without a usable subscription.
    #[error("event {event} ({kind}): {problem}")]
    BadSubscription {
        /// The event id.
        event: String,
        /// Its type.
        kind: String,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Debug, Deserialize)]
struct WireEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: WireData,
}

#[derive(Debug, Deserialize)]
struct WireData {
    object: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct WireSubscription {
    id: String,
    customer: Expandable,
    status: String,
    items: WireList,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    fn id(self) -> String {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

#[derive(Debug, Deserialize)]
struct WireList {
    data: Vec<WireItem>,
}

#[derive(Debug, Deserialize)]
struct WireItem {
    price: WirePrice,
}

#[derive(Debug, Deserialize)]
struct WirePrice {
    id: String,
    lookup_key: Option<String>,
    product: Expandable,
}

/// Whether `id` is a plain Stripe id: 1 to 255 ASCII letters, digits and `_`.
pub fn is_plain_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads a verified body.
///
/// # Errors
/// See [`EventError`].
pub fn parse(body: &[u8]) -> Result<Parsed, EventError> {
    let event: WireEvent =
        serde_json::from_slice(body).map_err(|e| EventError::NotAnEvent(e.to_string()))?;
    if !is_plain_id(&event.id) {
        return Err(EventError::NotAnEvent(
            "`id` is not a plain Stripe id (letters, digits, `_`)".to_owned(),
        ));
    }
    if !HANDLED.contains(&event.kind.as_str()) {
        return Ok(Parsed::Ignored {
            id: event.id,
            kind: event.kind,
        });
    }
    let bad = |problem: String| EventError::BadSubscription {
        event: event.id.clone(),
        kind: event.kind.clone(),
        problem,
    };
    let state = snapshot(event.data.object, &bad)?;
    Ok(Parsed::Subscription(SubscriptionEvent {
        id: event.id,
        kind: event.kind,
        created: event.created,
        subscription: state.subscription,
        customer: state.customer,
        status: state.status,
        prices: state.prices,
    }))
}

/// `event` with its subscription's state replaced by `object`, the subscription as Stripe's
/// API answers it now: the spec follows Stripe's current state, the event only triggered the
/// read.
///
/// # Errors
/// `object` is not a usable subscription, or another subscription than the event's.
pub fn current(
    event: &SubscriptionEvent,
    object: serde_json::Value,
) -> Result<SubscriptionEvent, EventError> {
    let bad = |problem: String| EventError::BadSubscription {
        event: event.id.clone(),
        kind: "the subscription read from Stripe".to_owned(),
        problem,
    };
    let state = snapshot(object, &bad)?;
    if state.subscription != event.subscription {
        return Err(bad(format!(
            "Stripe answered subscription {} for {}",
            state.subscription, event.subscription
        )));
    }
    Ok(SubscriptionEvent {
        customer: state.customer,
        status: state.status,
        prices: state.prices,
        ..event.clone()
    })
}

/// A subscription object's id, customer, status and prices.
struct Snapshot {
    subscription: String,
    customer: String,
    status: Status,
    prices: Vec<Price>,
}

fn snapshot(
    object: serde_json::Value,
    bad: &dyn Fn(String) -> EventError,
) -> Result<Snapshot, EventError> {
    let sub: WireSubscription = serde_json::from_value(object)
        .map_err(|e| bad(format!("`data.object` is not a subscription: {e}")))?;
    let status = Status::parse(&sub.status)
        .ok_or_else(|| bad(format!("unknown subscription status `{}`", sub.status)))?;
    let customer = sub.customer.id();
    for (what, id) in [("subscription id", &sub.id), ("customer id", &customer)] {
        if !is_plain_id(id) {
            return Err(bad(format!("the {what} is not a plain Stripe id")));
        }
    }
    let prices = sub
        .items
        .data
        .into_iter()
        .map(|item| Price {
            id: item.price.id,
            lookup_key: item.price.lookup_key,
            product: item.price.product.id(),
        })
        .collect();
    Ok(Snapshot {
        subscription: sub.id,
        customer,
        status,
        prices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(kind: &str, status: &str) -> Vec<u8> {
        json!({
            "id": "evt_1", "object": "event", "type": kind, "created": 1_700_000_000,
            "livemode": false, "api_version": "2024-06-20",
            "data": {"object": {
                "id": "sub_1", "object": "subscription", "customer": {"id": "cus_9", "object": "customer"},
                "status": status, "metadata": {},
                "items": {"object": "list", "data": [{"price": {"id": "price_1", "lookup_key": "pro", "product": "prod_1"}}]}
            }}
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_subscription_event_reads_as_a_snapshot() {
        let parsed = parse(&body("customer.subscription.updated", "past_due"));
        let Ok(Parsed::Subscription(e)) = parsed else {
            panic!("not a subscription event: {parsed:?}");
        };
        assert_eq!(
            (e.subscription.as_str(), e.customer.as_str()),
            ("sub_1", "cus_9")
        );
        assert_eq!((e.status, e.created), (Status::PastDue, 1_700_000_000));
        assert_eq!(e.prices[0].lookup_key.as_deref(), Some("pro"));
    }

    #[test]
    fn other_events_are_ignored_and_bad_ones_named() {
        assert!(matches!(
            parse(&body("invoice.paid", "active")),
            Ok(Parsed::Ignored { ref kind, .. }) if kind == "invoice.paid"
        ));
        let err = parse(&body("customer.subscription.created", "sleeping"));
        assert!(err.is_err_and(|e| {
            e.to_string()
                .contains("unknown subscription status `sleeping`")
        }));
        assert!(parse(b"{}").is_err());
    }

    #[test]
    fn ids_that_could_break_a_trailer_are_refused() {
        let text = String::from_utf8(body("customer.subscription.created", "active"))
            .unwrap_or_default()
            .replace("sub_1", "sub_1\\nTether-Stripe-Event: x");
        assert!(parse(text.as_bytes()).is_err());
    }
}
