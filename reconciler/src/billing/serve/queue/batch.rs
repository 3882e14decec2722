//! One batch of subscription events as one commit: decide each event against the ledger
//! (duplicate, stale or applied), write each applied subscription's spec from the state read
//! from Stripe for this batch, validate the whole fleet, commit with every applied event's
//! trailer and land the commit with the compare-and-swap of `billing::commit`; a checked-out
//! branch's work tree and index follow it. Start at [`commit_batch`].
//!
//! # Guarantees
//! - An event whose id is in the ledger changes nothing (duplicate). A copy of an event
//!   earlier in the same batch gets the same answer as that event.
//! - An event created strictly before the last one applied for its subscription changes
//!   nothing (stale): the read made for that one already saw its change. Events of the same
//!   second are never stale to each other (Stripe documents no order for their ids).
//! - Every other event is applied: the spec is what the subscription's state read from Stripe
//!   after the event arrived implies, every field from the price mapping or fleet.yaml's
//!   defaults; a subscription whose read failed is not applied (503, Stripe retries).
//! - Outcomes other than stale or duplicate are final only once the commit has landed; a lost
//!   race starts again from the new tip (nothing is forced).
//! - An event whose spec would make the fleet invalid is refused alone; the rest still land.
//! - On a branch checked out in a clone, paths with uncommitted edits refuse the batch before
//!   the branch moves; after it moved, exactly the changed paths are written and staged.

use super::super::events::SubscriptionEvent;
use super::super::mapping::Desired;
use super::super::mapping::MappingError;
use super::ledger::{Ledger, trailer};
use crate::billing::commit::{back_off, branch_tip, commit_on, gave_up, land, with_file};
use crate::billing::view::spec_subscription;
use crate::billing::{
    AgentRequest, BillingError, MAX_ATTEMPTS, TRAILER_SUBSCRIPTION, Target, agent_file, worktree,
};
use crate::source::git::tree_files;
use git2::{Oid, Repository};
use std::collections::{BTreeMap, HashMap};
use tether_schema::{Diagnostic, load_fleet};

/// An event waiting for its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The event.
    pub event: SubscriptionEvent,
}

/// What each subscription read for a batch asks of the fleet, or the outcome of its events
/// when it cannot be applied (unreadable, unmapped).
pub type States = HashMap<String, Result<Desired, Outcome>>;

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied in this commit, now on the branch.
    Applied {
        /// The commit.
        commit: Oid,
    },
    /// Its id was applied before.
    Duplicate,
    /// An event ordered after it was already applied for its subscription.
    Stale {
        /// That event's id.
        last: String,
    },
    /// Its spec would make the fleet invalid.
    Invalid(Vec<Diagnostic>),
    /// It could not be applied (an unreadable spec, a rename); a person must look.
    Refused(String),
    /// Its subscription's current price is not in the mapping (or maps to several servers).
    Unmapped(MappingError),
    /// Its subscription could not be read from Stripe; Stripe delivers it again.
    Unreadable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Apply,
    Duplicate,
    Stale,
    /// A copy of the batch's item at this index: the same answer.
    CopyOf(usize),
}

/// Commits `items` to `target` as one commit (or none when nothing applies), each applied
/// subscription's spec from `states`, keeping `ledger` in step with the branch. The outcomes
/// are in the order of `items`.
///
/// # Errors
/// git failed, a checked-out work tree has edits in the way, or the branch kept moving for
/// [`MAX_ATTEMPTS`] attempts; then nothing of this batch is acknowledged and Stripe retries.
pub fn commit_batch(
    target: &Target<'_>,
    ledger: &mut Ledger,
    items: &[Item],
    states: &States,
) -> Result<Vec<Outcome>, BillingError> {
    let repo = Repository::open(target.repo)?;
    let checkout = worktree::of(&repo, target.branch)?;
    let mut refused: HashMap<usize, Outcome> = HashMap::new();
    let mut attempt = 0;
    loop {
        let (tip, existed) = branch_tip(&repo, target)?;
        ledger.catch_up(&repo, tip.id())?;
        let decisions = decide(ledger, items, &refused);
        let applied: Vec<usize> = order(items)
            .into_iter()
            .filter(|i| decisions[*i] == Decision::Apply)
            .collect();
        if applied.is_empty() {
            return Ok(outcomes(items, ledger, &decisions, refused, None));
        }
        let tree = tip.tree()?;
        let files = tree_files(&repo, &tree)?;
        let mut specs: HashMap<String, (String, String)> = HashMap::new();
        for f in &files {
            if let Some((text, sub)) = spec_subscription(f) {
                specs.insert(sub.to_owned(), (f.path.clone(), text.to_owned()));
            }
        }
        // The newest applied event of each subscription decides its spec.
        let mut finals: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in &applied {
            finals.insert(&items[i].event.subscription, i);
        }
        let mut new_tree = tree.id();
        let mut paths: HashMap<String, &str> = HashMap::new();
        let mut retry = false;
        for sub in finals.keys() {
            let existing = specs.get(*sub).cloned();
            let file = match states.get(*sub) {
                None => Err(Outcome::Unreadable(format!(
                    "subscription {sub} was not read from Stripe for this batch"
                ))),
                Some(Err(outcome)) => Err(outcome.clone()),
                Some(Ok(Desired::Absent)) => Ok(existing.map(|(path, _)| (path, String::new()))),
                Some(Ok(desired @ Desired::Agent { .. })) => {
                    agent_file(existing, &spec_request(sub, desired))
                        .map(Some)
                        .map_err(|e| Outcome::Refused(e.to_string()))
                }
            };
            match file {
                Ok(Some((path, content))) => {
                    new_tree = with_file(&repo, &repo.find_tree(new_tree)?, &path, &content)?;
                    paths.insert(path, sub);
                }
                Ok(None) => {}
                Err(outcome) => {
                    refuse(&mut refused, items, &applied, sub, &outcome);
                    retry = true;
                }
            }
        }
        if retry {
            continue;
        }
        if new_tree != tree.id() {
            let new_files = tree_files(&repo, &repo.find_tree(new_tree)?)?;
            if let Err(e) = load_fleet(&new_files) {
                blame(&mut refused, items, &applied, &paths, e.diagnostics);
                continue;
            }
        }
        let message = message(items, &applied, &finals);
        let oid = commit_on(&repo, target, &tip, new_tree, &message)?;
        if let Some(c) = &checkout {
            c.check(&repo, tip.id(), oid)?;
        }
        let summary = message.lines().next().unwrap_or_default();
        if land(&repo, target, &tip, existed, oid, summary)? {
            if let Some(c) = &checkout {
                c.follow(&repo, oid)?;
            }
            // The new commit's trailers record every applied event.
            ledger.catch_up(&repo, oid)?;
            return Ok(outcomes(items, ledger, &decisions, refused, Some(oid)));
        }
        attempt += 1;
        if attempt == MAX_ATTEMPTS {
            return Err(gave_up(&repo, target));
        }
        back_off(attempt);
    }
}

/// Indexes of `items` in per-subscription order: `created`, then id.
fn order(items: &[Item]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..items.len()).collect();
    idx.sort_by(|a, b| items[*a].event.order().cmp(&items[*b].event.order()));
    idx
}

/// Whether `event` is stale against `ledger`: created strictly before the last event applied
/// for its subscription, whose read already saw its change.
pub fn is_stale(ledger: &Ledger, event: &SubscriptionEvent) -> bool {
    ledger
        .last(&event.subscription)
        .is_some_and(|(created, _)| event.created < created)
}

/// Each item's fate against `ledger`; a copy of an earlier item of the batch shares its fate.
fn decide(ledger: &Ledger, items: &[Item], refused: &HashMap<usize, Outcome>) -> Vec<Decision> {
    let mut out = vec![Decision::Duplicate; items.len()];
    let mut first: HashMap<&str, usize> = HashMap::new();
    for i in order(items) {
        let e = &items[i].event;
        if let Some(&original) = first.get(e.id.as_str()) {
            out[i] = Decision::CopyOf(original);
            continue;
        }
        first.insert(&e.id, i);
        if refused.contains_key(&i) {
            continue;
        }
        out[i] = if ledger.seen(&e.id) {
            Decision::Duplicate
        } else if is_stale(ledger, e) {
            Decision::Stale
        } else {
            Decision::Apply
        };
    }
    out
}

/// The request writing `desired` as `subscription`'s whole spec: every server field from the
/// mapping, one it leaves out removed so fleet.yaml's default applies.
pub(crate) fn spec_request(subscription: &str, desired: &Desired) -> AgentRequest {
    let Desired::Agent {
        customer,
        server,
        power,
    } = desired
    else {
        return AgentRequest::default();
    };
    AgentRequest {
        subscription: subscription.to_owned(),
        customer: customer.clone(),
        name: None,
        server_type: server.server_type.clone(),
        location: server.location.clone(),
        image: server.image.clone(),
        plan: Some(server.plan.clone()),
        runtime_version: Some(server.runtime.clone()),
        idempotency_key: None,
        power: Some(*power),
        whole_server: true,
    }
}

/// Refuses every applied item of `sub` with `outcome`.
fn refuse(
    refused: &mut HashMap<usize, Outcome>,
    items: &[Item],
    applied: &[usize],
    sub: &str,
    outcome: &Outcome,
) {
    for &i in applied {
        if items[i].event.subscription == sub {
            refused.insert(i, outcome.clone());
        }
    }
}

/// Refuses the subscriptions whose files the diagnostics name; all applied items when none
/// of them is named (the fleet was invalid before this batch).
fn blame(
    refused: &mut HashMap<usize, Outcome>,
    items: &[Item],
    applied: &[usize],
    paths: &HashMap<String, &str>,
    diagnostics: Vec<Diagnostic>,
) {
    let mut by_sub: BTreeMap<&str, Vec<Diagnostic>> = BTreeMap::new();
    for d in &diagnostics {
        if let Some(sub) = paths.get(&d.file) {
            by_sub.entry(sub).or_default().push(d.clone());
        }
    }
    if by_sub.is_empty() {
        for &i in applied {
            refused.insert(i, Outcome::Invalid(diagnostics.clone()));
        }
        return;
    }
    for (sub, diags) in by_sub {
        refuse(refused, items, applied, sub, &Outcome::Invalid(diags));
    }
}

fn message(items: &[Item], applied: &[usize], finals: &BTreeMap<&str, usize>) -> String {
    let mut m = format!(
        "billing: {} Stripe event(s) for {} subscription(s)\n\n",
        applied.len(),
        finals.len()
    );
    for sub in finals.keys() {
        m.push_str(&format!("{TRAILER_SUBSCRIPTION}: {sub}\n"));
    }
    for &i in applied {
        m.push_str(&trailer(&items[i].event));
        m.push('\n');
    }
    m
}

fn outcomes(
    items: &[Item],
    ledger: &Ledger,
    decisions: &[Decision],
    refused: HashMap<usize, Outcome>,
    commit: Option<Oid>,
) -> Vec<Outcome> {
    (0..items.len())
        .map(|i| {
            let i = match decisions[i] {
                Decision::CopyOf(original) => original,
                _ => i,
            };
            if let Some(outcome) = refused.get(&i) {
                return outcome.clone();
            }
            match (decisions[i], commit) {
                (Decision::Apply, Some(commit)) => Outcome::Applied { commit },
                (Decision::Stale, _) | (Decision::Apply, None) => Outcome::Stale {
                    last: ledger
                        .last(&items[i].event.subscription)
                        .map(|(_, id)| id.to_owned())
                        .unwrap_or_default(),
                },
                (Decision::Duplicate | Decision::CopyOf(_), _) => Outcome::Duplicate,
            }
        })
        .collect()
}
