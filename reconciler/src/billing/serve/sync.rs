//! `tether billing sync`: the periodic reconciliation with Stripe that catches what webhooks
//! missed (Stripe stops retrying a delivery after about three days). Lists every subscription
//! (paged, every status), works out the spec each one's state implies through the price
//! mapping, and corrects the specs that differ in one commit through the receiver's own
//! [`commit_batch`]. Start at [`plan`], then [`apply`].
//!
//! # Guarantees
//! - A plan changes nothing; [`apply`] commits exactly the planned corrections, validated like
//!   a receiver's batch, each recorded as an event `sync_<listed at>_<subscription>` in the
//!   `Tether-Stripe-Event` trailer (so a webhook created before the listing is `stale`).
//! - A spec whose subscription Stripe does not list is never touched (reported): the key may
//!   be of another account or mode.
//! - A subscription whose price is unmapped is reported and left as it is.

use super::events::{self, Status, SubscriptionEvent};
use super::mapping::{Desired, Mapping};
use super::queue::Destination;
use super::queue::batch::{Item, Outcome, States, commit_batch, spec_request};
use super::queue::ledger::Ledger;
use crate::billing::commit::branch_tip;
use crate::billing::stripe::{ReadError, StripeApi};
use crate::billing::view::spec_subscription;
use crate::billing::{BillingError, Target, agent_file};
use crate::source::git::tree_files;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Pages of the list tried again after a 429 or a 5xx before giving up.
const ATTEMPTS: u32 = 4;

/// Why a sync could not be planned or applied.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Stripe's subscription list could not be read.
    #[error("{0}; nothing was changed")]
    Stripe(#[from] ReadError),
    /// A listed subscription is not one tether can read.
    #[error("a subscription listed by Stripe is unusable: {0}; nothing was changed")]
    Subscription(String),
    /// The fleet repository could not be read or written.
    #[error(transparent)]
    Fleet(#[from] BillingError),
}

/// One spec that differs from what Stripe's state implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// The subscription.
    pub subscription: String,
    /// What Stripe says (status).
    pub status: Status,
    /// The spec file.
    pub path: String,
    /// The new text; empty to remove the file.
    pub content: String,
}

impl fmt::Display for Correction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.content.is_empty() {
            "remove"
        } else {
            "write"
        };
        write!(
            f,
            "{verb} {} (subscription {}: Stripe says `{}`)",
            self.path, self.subscription, self.status
        )
    }
}

/// What a sync would do.
#[derive(Debug, Default)]
pub struct SyncPlan {
    /// The specs to correct.
    pub corrections: Vec<Correction>,
    /// Subscriptions whose price is not in the mapping, with the reason: left as they are.
    pub unmapped: Vec<String>,
    /// Subscriptions of specs that Stripe does not list: left as they are.
    pub unknown: Vec<String>,
    /// Subscriptions listed.
    pub listed: usize,
    items: Vec<Item>,
    states: States,
}

/// Every subscription Stripe lists (every status), read page by page.
///
/// # Errors
/// A page stays unreadable after [`ATTEMPTS`] tries.
pub async fn list_all(api: &StripeApi) -> Result<Vec<serde_json::Value>, ReadError> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut attempt = 0;
        let (page, more) = loop {
            attempt += 1;
            match api.list_page(after.as_deref()).await {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "Stripe list page failed; trying again");
                    tokio::time::sleep(Duration::from_millis(250) * 2u32.pow(attempt)).await;
                }
                other => break other?,
            }
        };
        after = page
            .last()
            .and_then(|s| s["id"].as_str())
            .map(str::to_owned);
        all.extend(page);
        if !more || after.is_none() {
            return Ok(all);
        }
    }
}

/// Compares what Stripe lists (read at `now`, unix seconds) with the specs on `target`'s branch.
///
/// # Errors
/// See [`SyncError`].
pub fn plan(
    target: &Target<'_>,
    mapping: &Mapping,
    listed: Vec<serde_json::Value>,
    now: i64,
) -> Result<SyncPlan, SyncError> {
    let repo = git2::Repository::open(target.repo).map_err(BillingError::from)?;
    let (tip, _) = branch_tip(&repo, target)?;
    let files =
        tree_files(&repo, &tip.tree().map_err(BillingError::from)?).map_err(BillingError::from)?;
    let mut specs: BTreeMap<String, (String, String)> = BTreeMap::new();
    for f in &files {
        if let Some((text, sub)) = spec_subscription(f) {
            specs.insert(sub.to_owned(), (f.path.clone(), text.to_owned()));
        }
    }
    let mut out = SyncPlan {
        listed: listed.len(),
        ..SyncPlan::default()
    };
    for object in listed {
        let id = object["id"].as_str().unwrap_or_default().to_owned();
        if !events::is_plain_id(&id) {
            return Err(SyncError::Subscription(
                "an id that is not a plain Stripe id".to_owned(),
            ));
        }
        let trigger = SubscriptionEvent {
            id: format!("sync_{now}_{id}"),
            kind: "tether.billing.sync".to_owned(),
            created: now,
            subscription: id.clone(),
            customer: String::new(),
            status: Status::Active,
            prices: Vec::new(),
        };
        let event = events::current(&trigger, object)
            .map_err(|e| SyncError::Subscription(e.to_string()))?;
        let existing = specs.remove(&id);
        let desired = match mapping.resolve(&event) {
            Ok(d) => d,
            Err(e) => {
                out.unmapped.push(e.to_string());
                continue;
            }
        };
        let wanted = match &desired {
            Desired::Absent => existing.clone().map(|(path, _)| (path, String::new())),
            Desired::Agent { .. } => {
                Some(agent_file(existing.clone(), &spec_request(&id, &desired))?)
            }
        };
        let Some((path, content)) = wanted else {
            continue;
        };
        if existing.as_ref().map(|(_, text)| text.as_str()) == Some(content.as_str())
            || (content.is_empty() && existing.is_none())
        {
            continue;
        }
        out.corrections.push(Correction {
            subscription: id.clone(),
            status: event.status,
            path,
            content,
        });
        out.states.insert(id, Ok(desired));
        out.items.push(Item { event });
    }
    out.unknown = specs.into_keys().collect();
    Ok(out)
}

/// Commits the plan's corrections as one commit; each correction with its outcome.
///
/// # Errors
/// git failed, or the branch kept moving; nothing was committed.
pub fn apply(
    target: &Target<'_>,
    plan: &SyncPlan,
) -> Result<Vec<(Correction, Outcome)>, BillingError> {
    if plan.items.is_empty() {
        return Ok(Vec::new());
    }
    let mut ledger = Ledger::default();
    let outcomes = commit_batch(target, &mut ledger, &plan.items, &plan.states)?;
    Ok(plan.corrections.iter().cloned().zip(outcomes).collect())
}

/// The receiver's schedule: every `period` (the first after one period), list, plan and apply;
/// each correction and failure is logged, none stops the receiver.
pub async fn every(period: Duration, api: StripeApi, mapping: Mapping, destination: Destination) {
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        timer.tick().await;
        let now = super::signature::unix(std::time::SystemTime::now());
        let listed = match list_all(&api).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = %e, "scheduled Stripe sync skipped; the next one tries again");
                continue;
            }
        };
        let (dest, mapping) = (destination.clone(), mapping.clone());
        let done = tokio::task::spawn_blocking(move || {
            let target = dest.target();
            let plan = plan(&target, &mapping, listed, now)?;
            let applied = apply(&target, &plan)?;
            Ok::<_, SyncError>((plan, applied))
        })
        .await;
        match done {
            Ok(Ok((plan, applied))) => {
                for (c, outcome) in applied {
                    tracing::info!(correction = %c, outcome = ?outcome, "scheduled Stripe sync corrected a spec");
                }
                for u in plan.unmapped {
                    tracing::warn!(problem = %u, "scheduled Stripe sync left a subscription as it is");
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "scheduled Stripe sync failed; the next one tries again")
            }
            Err(e) => {
                tracing::warn!(error = %e, "scheduled Stripe sync stopped; the next one tries again")
            }
        }
    }
}
