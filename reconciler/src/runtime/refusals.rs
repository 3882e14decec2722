//! The agent API's refusals, logged in aggregate: the first refusal of a quiet spell is logged
//! at once, then refusals are counted and logged as one line with the counts per
//! [`LOGGED_EVERY`] (and by every pass), never one warning per request. A fleet of VMs polling
//! with credentials the daemon cannot check yet would otherwise write thousands of lines.

use std::time::{Duration, SystemTime};

/// How often counted refusals are logged at most.
pub const LOGGED_EVERY: Duration = Duration::from_secs(60);

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` credential.
    Missing,
    /// A credential of no agent the daemon knows.
    Unknown,
    /// Another agent's credential.
    Foreign,
}

/// Refusals since the last log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Requests without a credential.
    pub missing: u64,
    /// Requests with an unknown credential.
    pub unknown: u64,
    /// Requests with another agent's credential.
    pub foreign: u64,
    /// When the spell began (the first refusal counted after the last line).
    since: Option<SystemTime>,
    /// When the last line was logged.
    logged: Option<SystemTime>,
}

impl Tally {
    /// Counts `refusal` at `now`; the counts to log now, if a line is due: the first refusal
    /// after a quiet [`LOGGED_EVERY`], or the counts once [`LOGGED_EVERY`] has passed since the
    /// last line.
    pub fn count(&mut self, refusal: Refusal, now: SystemTime) -> Option<Tally> {
        match refusal {
            Refusal::Missing => self.missing += 1,
            Refusal::Unknown => self.unknown += 1,
            Refusal::Foreign => self.foreign += 1,
        }
        self.since.get_or_insert(now);
        let due = self
            .logged
            .is_none_or(|last| now.duration_since(last).unwrap_or_default() >= LOGGED_EVERY);
        due.then(|| self.take(now)).flatten()
    }

    /// The counts since the last line, if any, and a fresh spell.
    pub fn take(&mut self, now: SystemTime) -> Option<Tally> {
        if self.total() == 0 {
            return None;
        }
        let taken = std::mem::take(self);
        self.logged = Some(now);
        Some(taken)
    }

    /// Refusals counted.
    pub fn total(&self) -> u64 {
        self.missing + self.unknown + self.foreign
    }

    /// Seconds the counted refusals span, up to `now`.
    pub fn seconds(&self, now: SystemTime) -> u64 {
        self.since
            .map_or(0, |s| now.duration_since(s).unwrap_or_default().as_secs())
    }
}

/// Logs `tally` as one warning.
pub fn log(tally: &Tally, now: SystemTime) {
    tracing::warn!(
        refused = tally.total(),
        unknown_credential = tally.unknown,
        other_agents_credential = tally.foreign,
        no_credential = tally.missing,
        seconds = tally.seconds(now),
        "agent API refused requests (an unknown credential is an agent the daemon cannot verify from its server's tether/agent-key label; counted, logged at most once a minute)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_refusals_is_one_line_then_one_line_a_minute_with_the_counts() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut tally = Tally::default();
        let first = tally
            .count(Refusal::Unknown, start)
            .expect("the first is logged");
        assert_eq!(first.total(), 1);
        let mut lines = 0;
        for i in 1..2_130u64 {
            let now = start + Duration::from_millis(i * 10);
            if tally.count(Refusal::Unknown, now).is_some() {
                lines += 1;
            }
        }
        assert_eq!(lines, 0, "21 s of refusals: counted, not logged");
        let now = start + Duration::from_secs(61);
        let line = tally.count(Refusal::Foreign, now).expect("a minute on");
        assert_eq!((line.unknown, line.foreign, line.missing), (2_129, 1, 0));
        assert_eq!(line.seconds(now), 60, "from the first counted refusal");
        assert_eq!(tally.take(now), None, "nothing left");
    }
}
