//! What `status/runtime.yaml` shows of each agent, so the status branch grows only when the
//! fleet changes, not each time a VM varies its report. Start at [`settle`].
//!
//! An agent's entry is its state (the version served, the version running, the heartbeat) and
//! the error it reported when it entered that state:
//! - the same state with another error text changes nothing;
//! - a new version served (tether's own change) and an agent's first report are shown at once;
//! - a VM-driven change is shown at once when the entry has not changed for [`FLAP_WINDOW`];
//!   within it, only once the VM's report has held its new state for the settle time (three
//!   poll intervals, as long as a heartbeat stays fresh). A VM flapping its report thus changes
//!   its entry at most once per [`FLAP_WINDOW`].

use std::time::{Duration, SystemTime};

/// After one VM-driven change, how long further changes must hold before they are shown.
pub const FLAP_WINDOW: Duration = Duration::from_secs(600);

/// One agent's entry as `status/runtime.yaml` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The version tether serves it.
    pub desired: Option<String>,
    /// The version it reports running.
    pub running: Option<String>,
    /// `healthy`, `unhealthy`, `stale` or `unknown`.
    pub heartbeat: &'static str,
    /// Its error when it entered this state.
    pub error: Option<String>,
    /// When this entry was first shown; `None` when the next change may be shown at once.
    pub since: Option<SystemTime>,
}

impl Shown {
    fn same_state(&self, other: &Shown) -> bool {
        (&self.desired, &self.running, self.heartbeat)
            == (&other.desired, &other.running, other.heartbeat)
    }
}

/// What to show at `now`, given what was shown (`previous`), what the reports say now
/// (`proposed`), since when the agent's reports have held their state (`steady_since`) and the
/// settle time.
pub fn settle(
    previous: Option<&Shown>,
    proposed: Shown,
    steady_since: Option<SystemTime>,
    now: SystemTime,
    settle: Duration,
) -> Shown {
    let Some(previous) = previous else {
        return Shown {
            since: Some(now),
            ..proposed
        };
    };
    if previous.same_state(&proposed) {
        return previous.clone();
    }
    if previous.desired != proposed.desired {
        // tether served another version: the next change the VM makes follows from it.
        return Shown {
            since: None,
            ..proposed
        };
    }
    let age = |t: SystemTime| now.duration_since(t).unwrap_or_default();
    // A first report after none (`unknown`) is news, not a flap.
    let quiet =
        previous.heartbeat == "unknown" || previous.since.is_none_or(|t| age(t) >= FLAP_WINDOW);
    let steady = steady_since.is_none_or(|t| age(t) >= settle);
    if quiet || steady {
        Shown {
            since: Some(now),
            ..proposed
        }
    } else {
        previous.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(heartbeat: &'static str, error: &str) -> Shown {
        Shown {
            desired: Some("1.0".to_owned()),
            running: Some("1.0".to_owned()),
            heartbeat,
            error: Some(error.to_owned()),
            since: None,
        }
    }

    #[test]
    fn another_error_text_in_the_same_state_changes_nothing() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let s = Duration::from_secs(30);
        let first = settle(None, entry("unhealthy", "a"), Some(t0), t0, s);
        let next = settle(
            Some(&first),
            entry("unhealthy", "b"),
            Some(t0),
            t0 + s * 3,
            s,
        );
        assert_eq!(next, first);
    }

    #[test]
    fn a_flapping_report_changes_the_entry_at_most_once_per_window() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let s = Duration::from_secs(30);
        let mut shown = settle(None, entry("healthy", "x"), Some(t0), t0, s);
        let mut changes = 0;
        for second in 1..3600u64 {
            let now = t0 + Duration::from_secs(second);
            let beat = if second % 2 == 0 {
                "healthy"
            } else {
                "unhealthy"
            };
            let next = settle(Some(&shown), entry(beat, "e"), Some(now), now, s);
            changes += usize::from(next != shown);
            shown = next;
        }
        assert!(changes <= 6, "{changes} changes in an hour");
    }

    #[test]
    fn a_change_that_holds_is_shown_and_a_new_version_at_once() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let s = Duration::from_secs(30);
        let first = settle(None, entry("healthy", "x"), Some(t0), t0, s);
        let down = settle(Some(&first), entry("unhealthy", "x"), Some(t0), t0 + s, s);
        assert_eq!(down.heartbeat, "unhealthy");
        let up_early = settle(
            Some(&down),
            entry("healthy", "x"),
            Some(t0 + s * 3 / 2),
            t0 + s * 2,
            s,
        );
        assert_eq!(up_early.heartbeat, "unhealthy");
        let up = settle(
            Some(&down),
            entry("healthy", "x"),
            Some(t0 + s * 3 / 2),
            t0 + s * 3,
            s,
        );
        assert_eq!(up.heartbeat, "healthy");
        let served = Shown {
            desired: Some("2.0".to_owned()),
            ..entry("unhealthy", "x")
        };
        assert_eq!(
            settle(Some(&up), served.clone(), Some(t0), t0 + s * 3, s).desired,
            served.desired
        );
    }
}
