//! `spec.policy.confirmDeletes`: a removed agent's server is deleted only once the system of
//! record (Stripe) confirmed its subscription ended. The lookups are I/O and happen before
//! planning (`tether::billing::confirm`); the planner only reads their results from
//! [`super::Context::subscriptions`]. Start at [`subscriptions_to_confirm`].

use super::Observed;
use super::inventory::managed_servers;
use crate::compute::Server;
use std::collections::BTreeSet;
use tether_schema::{ConfirmDeletes, Fleet, labels};

/// What billing said about one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// The subscription ended: its server may be deleted.
    Ended,
    /// Not confirmed, and why (still active, unknown to billing, the lookup failed).
    NotEnded(String),
}

/// The subscriptions whose confirmation the plan needs: those of the fleet's servers whose
/// agent spec is gone, when the policy asks for confirmation; empty otherwise.
pub fn subscriptions_to_confirm(fleet: &Fleet, observed: &Observed) -> BTreeSet<String> {
    if fleet.settings.policy.confirm_deletes.is_none() {
        return BTreeSet::new();
    }
    managed_servers(fleet, observed)
        .into_iter()
        .filter(|(agent, _)| !fleet.agents.keys().any(|n| n.as_str() == *agent))
        .filter_map(|(_, server)| server.labels.get(labels::SUBSCRIPTION).cloned())
        .collect()
}

/// Why `server` (whose spec is gone) must be kept under the policy; `None` when it may go.
pub(super) fn unconfirmed(
    fleet: &Fleet,
    server: &Server,
    subscriptions: &std::collections::BTreeMap<String, Confirmation>,
) -> Option<String> {
    let Some(ConfirmDeletes::Stripe) = fleet.settings.policy.confirm_deletes else {
        return None;
    };
    let Some(sub) = server.labels.get(labels::SUBSCRIPTION) else {
        return Some(format!(
            "`spec.policy.confirmDeletes: stripe`: server {} carries no `{}` label, so Stripe cannot confirm its end; delete it by hand if it should go",
            server.name,
            labels::SUBSCRIPTION
        ));
    };
    match subscriptions.get(sub) {
        Some(Confirmation::Ended) => None,
        Some(Confirmation::NotEnded(why)) => Some(format!(
            "`spec.policy.confirmDeletes: stripe`: subscription {sub} has not ended ({why}); the spec was removed but billing does not confirm it"
        )),
        None => Some(format!(
            "`spec.policy.confirmDeletes: stripe`: subscription {sub} was not looked up"
        )),
    }
}
