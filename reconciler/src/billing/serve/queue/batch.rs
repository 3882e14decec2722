//! One batch of subscription events as one commit: decide each event against the ledger
//! (duplicate, stale or applied, in per-subscription order), write the resulting specs,
//! validate the whole fleet, commit with every applied event's trailer and land the commit
//! with the compare-and-swap of `billing::commit`. Start at [`commit_batch`].
//!
//! # Guarantees
//! - An event whose id is in the ledger, or earlier in the batch, changes nothing (duplicate).
//! - An event ordered (`created`, then id) at or before the last one applied for its
//!   subscription changes nothing (stale); events of one batch are applied in that order, so
//!   the newest decides the spec.
//! - Outcomes other than stale or duplicate are final only once the commit has landed; a lost
//!   race starts again from the new tip (nothing is forced).
//! - An event whose spec would make the fleet invalid is refused alone; the rest still land.

use super::super::events::SubscriptionEvent;
use super::super::mapping::Desired;
use super::ledger::{Ledger, trailer};
use crate::billing::commit::{back_off, branch_tip, commit_on, land, with_file};
use crate::billing::view::spec_subscription;
use crate::billing::{
    AgentRequest, BillingError, MAX_ATTEMPTS, TRAILER_SUBSCRIPTION, Target, agent_file,
};
use crate::source::git::tree_files;
use git2::{Oid, Repository};
use std::collections::{BTreeMap, HashMap, HashSet};
use tether_schema::{Diagnostic, load_fleet};

/// An event and what it asks of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The event.
    pub event: SubscriptionEvent,
    /// What its subscription's agent should be.
    pub desired: Desired,
}

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Apply,
    Duplicate,
    Stale,
}

/// Commits `items` to `target` as one commit (or none when nothing applies), keeping `ledger`
/// in step with the branch. The outcomes are in the order of `items`.
///
/// # Errors
/// git failed, or the branch kept moving for [`MAX_ATTEMPTS`] attempts; then nothing of this
/// batch is acknowledged and Stripe retries.
pub fn commit_batch(
    target: &Target<'_>,
    ledger: &mut Ledger,
    items: &[Item],
) -> Result<Vec<Outcome>, BillingError> {
    let repo = Repository::open(target.repo)?;
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
        for (sub, &i) in &finals {
            let existing = specs.get(*sub).cloned();
            let file = match &items[i].desired {
                Desired::Absent => Ok(existing.map(|(path, _)| (path, String::new()))),
                Desired::Agent { .. } => agent_file(existing, &request(&items[i])).map(Some),
            };
            match file {
                Ok(Some((path, content))) => {
                    new_tree = with_file(&repo, &repo.find_tree(new_tree)?, &path, &content)?;
                    paths.insert(path, sub);
                }
                Ok(None) => {}
                Err(e) => {
                    refuse(
                        &mut refused,
                        items,
                        &applied,
                        sub,
                        &Outcome::Refused(e.to_string()),
                    );
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
        let summary = message.lines().next().unwrap_or_default();
        if land(&repo, target, &tip, existed, oid, summary)? {
            // The new commit's trailers record every applied event.
            ledger.catch_up(&repo, oid)?;
            return Ok(outcomes(items, ledger, &decisions, refused, Some(oid)));
        }
        attempt += 1;
        if attempt == MAX_ATTEMPTS {
            return Err(BillingError::Contended(target.branch.to_owned()));
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

/// Each item's fate against `ledger`, taking earlier items of the batch into account.
fn decide(ledger: &Ledger, items: &[Item], refused: &HashMap<usize, Outcome>) -> Vec<Decision> {
    let mut out = vec![Decision::Duplicate; items.len()];
    let mut ids: HashSet<&str> = HashSet::new();
    let mut last: HashMap<&str, (i64, &str)> = HashMap::new();
    for i in order(items) {
        let e = &items[i].event;
        if refused.contains_key(&i) {
            continue;
        }
        if ledger.seen(&e.id) || !ids.insert(&e.id) {
            out[i] = Decision::Duplicate;
            continue;
        }
        let newest = last
            .get(e.subscription.as_str())
            .copied()
            .or_else(|| ledger.last(&e.subscription));
        if newest.is_some_and(|l| e.order() <= l) {
            out[i] = Decision::Stale;
            continue;
        }
        last.insert(&e.subscription, e.order());
        out[i] = Decision::Apply;
    }
    out
}

fn request(item: &Item) -> AgentRequest {
    let Desired::Agent {
        customer,
        server,
        power,
    } = &item.desired
    else {
        return AgentRequest::default();
    };
    AgentRequest {
        subscription: item.event.subscription.clone(),
        customer: customer.clone(),
        name: None,
        server_type: server.server_type.clone(),
        location: server.location.clone(),
        image: server.image.clone(),
        plan: Some(server.plan.clone()),
        runtime_version: Some(server.runtime.clone()),
        idempotency_key: None,
        power: Some(*power),
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
    mut refused: HashMap<usize, Outcome>,
    commit: Option<Oid>,
) -> Vec<Outcome> {
    (0..items.len())
        .map(|i| {
            if let Some(outcome) = refused.remove(&i) {
                return outcome;
            }
            match (decisions[i], commit) {
                (Decision::Apply, Some(commit)) => Outcome::Applied { commit },
                (Decision::Stale, _) | (Decision::Apply, None) => Outcome::Stale {
                    last: ledger
                        .last(&items[i].event.subscription)
                        .map(|(_, id)| id.to_owned())
                        .unwrap_or_default(),
                },
                (Decision::Duplicate, _) => Outcome::Duplicate,
            }
        })
        .collect()
}
