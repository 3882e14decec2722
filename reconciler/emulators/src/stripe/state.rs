//! The emulator's subscriptions and the events their changes produce. Event `created` times
//! never go backwards and strictly increase per subscription, as an ordering consumer needs.

use super::signature;
use super::wire;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// One event, ready to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `evt_…`.
    pub id: String,
    /// The event type.
    pub kind: String,
    /// The subscription it is about.
    pub subscription: String,
    /// The JSON body, exactly as delivered.
    pub body: String,
}

/// One subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// `sub_…`.
    pub id: String,
    /// `cus_…`.
    pub customer: String,
    /// Stripe status.
    pub status: String,
    /// The price's lookup key.
    pub lookup_key: String,
    /// Unix seconds of creation.
    pub created: i64,
}

impl Subscription {
    /// The API's subscription object.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "subscription",
            "customer": self.customer,
            "status": self.status,
            "created": self.created,
            "cancel_at_period_end": false,
            "metadata": {},
            "items": {"object": "list", "has_more": false, "data": [{
                "id": format!("si_{}", &self.id[4..]),
                "object": "subscription_item",
                "price": {
                    "id": format!("price_{}", self.lookup_key),
                    "object": "price",
                    "lookup_key": self.lookup_key,
                    "product": format!("prod_{}", self.lookup_key),
                },
            }]},
        })
    }
}

/// Every subscription and the event clock.
#[derive(Debug, Default)]
pub struct State {
    subscriptions: BTreeMap<String, Subscription>,
    next_id: u64,
    last_created: i64,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_emu{:06}", self.next_id)
    }

    fn tick(&mut self, now: SystemTime) -> i64 {
        self.last_created = signature::unix(now).max(self.last_created + 1);
        self.last_created
    }

    /// The subscription `id`.
    pub fn subscription(&self, id: &str) -> Option<&Subscription> {
        self.subscriptions.get(id)
    }

    /// Every subscription, by id.
    pub fn subscriptions(&self) -> impl Iterator<Item = &Subscription> {
        self.subscriptions.values()
    }

    /// A price change and its `customer.subscription.updated` event.
    pub fn change_price(&mut self, id: &str, lookup_key: &str, now: SystemTime) -> Option<Event> {
        self.subscriptions.get(id)?;
        let created = self.tick(now);
        self.subscriptions.get_mut(id)?.lookup_key = lookup_key.to_owned();
        Some(self.event(id, "customer.subscription.updated", created))
    }

    /// A new active subscription and its `created` event.
    pub fn sign_up(&mut self, customer: &str, lookup_key: &str, now: SystemTime) -> Event {
        let id = self.id("sub");
        let created = self.tick(now);
        let sub = Subscription {
            id: id.clone(),
            customer: customer.to_owned(),
            status: "active".to_owned(),
            lookup_key: lookup_key.to_owned(),
            created,
        };
        self.subscriptions.insert(id.clone(), sub);
        self.event(&id, "customer.subscription.created", created)
    }

    /// An `active` subscription with the id given, and no event.
    pub fn seed(&mut self, id: &str, customer: &str, lookup_key: &str, now: SystemTime) {
        let created = self.tick(now);
        let sub = Subscription {
            id: id.to_owned(),
            customer: customer.to_owned(),
            status: "active".to_owned(),
            lookup_key: lookup_key.to_owned(),
            created,
        };
        self.subscriptions.insert(id.to_owned(), sub);
    }

    /// A status change and its event.
    pub fn set_status(&mut self, id: &str, status: &str, now: SystemTime) -> Option<Event> {
        let before = self.subscriptions.get(id)?.status.clone();
        let kind = match (before.as_str(), status) {
            (_, "canceled") => "customer.subscription.deleted",
            (_, "paused") => "customer.subscription.paused",
            ("paused", _) => "customer.subscription.resumed",
            _ => "customer.subscription.updated",
        };
        let created = self.tick(now);
        self.subscriptions.get_mut(id)?.status = status.to_owned();
        Some(self.event(id, kind, created))
    }

    fn event(&mut self, sub: &str, kind: &str, created: i64) -> Event {
        let id = self.id("evt");
        let object = self
            .subscriptions
            .get(sub)
            .map(Subscription::to_json)
            .unwrap_or_default();
        Event {
            body: wire::event(&id, kind, created, object).to_string(),
            id,
            kind: kind.to_owned(),
            subscription: sub.to_owned(),
        }
    }
}
