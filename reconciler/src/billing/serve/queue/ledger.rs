//! What the fleet branch says billing already did: the last event applied per subscription
//! (its `created` time and id) and every event id applied, read from commit trailers so the
//! order and idempotency survive restarts and are visible in `git log`.
//!
//! Each applied event leaves `Tether-Stripe-Event: <event id> <subscription> <created>` on the
//! commit that applied it. Ids given to `tether agent add/remove --idempotency-key` count as
//! applied too. The ledger follows the branch incrementally; if the branch was rewritten (the
//! old tip is no longer an ancestor) it is read again from scratch.

use super::super::events::SubscriptionEvent;
use crate::billing::TRAILER_IDEMPOTENCY;
use git2::{Oid, Repository};
use std::collections::{HashMap, HashSet};

/// The trailer recording one applied Stripe event.
pub const TRAILER_EVENT: &str = "Tether-Stripe-Event";

/// The trailer line for `event`.
pub fn trailer(event: &SubscriptionEvent) -> String {
    format!(
        "{TRAILER_EVENT}: {} {} {}",
        event.id, event.subscription, event.created
    )
}

/// The billing history of one branch, as of [`Ledger::tip`].
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    tip: Option<Oid>,
    last: HashMap<String, (i64, String)>,
    seen: HashSet<String>,
}

impl Ledger {
    /// The commit this ledger is up to date with.
    pub fn tip(&self) -> Option<Oid> {
        self.tip
    }

    /// Whether event `id` was applied.
    pub fn seen(&self, id: &str) -> bool {
        self.seen.contains(id)
    }

    /// The order (`created`, id) of the last event applied for `subscription`.
    pub fn last(&self, subscription: &str) -> Option<(i64, &str)> {
        self.last
            .get(subscription)
            .map(|(created, id)| (*created, id.as_str()))
    }

    /// Records an applied event.
    pub fn record(&mut self, id: &str, subscription: &str, created: i64) {
        self.seen.insert(id.to_owned());
        let newer = self
            .last(subscription)
            .is_none_or(|last| (created, id) > last);
        if newer {
            self.last
                .insert(subscription.to_owned(), (created, id.to_owned()));
        }
    }

    /// Reads the commits between the ledger's tip and `tip`, so it describes `tip`.
    ///
    /// # Errors
    /// libgit2 failed to walk the history.
    pub fn catch_up(&mut self, repo: &Repository, tip: Oid) -> Result<(), git2::Error> {
        if self.tip == Some(tip) {
            return Ok(());
        }
        let mut walk = repo.revwalk()?;
        walk.push(tip)?;
        match self.tip {
            Some(old) if repo.graph_descendant_of(tip, old)? => walk.hide(old)?,
            Some(_) => *self = Ledger::default(),
            None => {}
        }
        for oid in walk {
            let commit = repo.find_commit(oid?)?;
            for line in commit.message().unwrap_or_default().lines() {
                self.read_trailer(line.trim());
            }
        }
        self.tip = Some(tip);
        Ok(())
    }

    fn read_trailer(&mut self, line: &str) {
        if let Some(rest) = line
            .strip_prefix(TRAILER_EVENT)
            .and_then(|r| r.strip_prefix(": "))
        {
            let mut parts = rest.split(' ');
            if let (Some(id), Some(sub), Some(Ok(created))) = (
                parts.next(),
                parts.next(),
                parts.next().map(str::parse::<i64>),
            ) {
                self.record(id, sub, created);
            }
        } else if let Some(key) = line
            .strip_prefix(TRAILER_IDEMPOTENCY)
            .and_then(|r| r.strip_prefix(": "))
        {
            self.seen.insert(key.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_event_wins_whatever_order_trailers_are_read_in() {
        let mut ledger = Ledger::default();
        ledger.read_trailer("Tether-Stripe-Event: evt_b sub_1 200");
        ledger.read_trailer("Tether-Stripe-Event: evt_a sub_1 100");
        ledger.read_trailer("Tether-Stripe-Event: evt_c sub_1 200");
        ledger.read_trailer("Tether-Idempotency-Key: evt_cli");
        assert_eq!(ledger.last("sub_1"), Some((200, "evt_c")));
        for id in ["evt_a", "evt_b", "evt_c", "evt_cli"] {
            assert!(ledger.seen(id), "{id}");
        }
        assert!(!ledger.seen("evt_d"));
    }
}
