//! The daemon over a fleet's Hetzner projects: after each pass, every project's requests are
//! counted into the metrics and the rate budget is set by the project that needs the longest
//! pause ([`slowest`]), so timed passes stay within every project's bucket.

use super::budget::{Cadence, RateBudget, interval};
use super::metrics::Metrics;
use crate::cloud::hetzner::ratelimit::Observed;
use crate::cloud::projects::Usage;
use std::collections::BTreeMap;
use std::time::Duration;

/// Requests already counted, by project and HTTP status.
pub(super) type Seen = BTreeMap<(String, Option<u16>), u64>;

/// Of each project's `(requests of the last pass, bucket)`, the one whose [`interval`] is the
/// longest: the pause every project can afford.
pub fn slowest(
    budget: &RateBudget,
    configured: Duration,
    projects: &[(u64, Observed)],
) -> Option<(u64, Observed)> {
    projects
        .iter()
        .copied()
        .max_by_key(|(requests, bucket)| interval(budget, configured, *requests, Some(*bucket)))
}

/// Counts the pass's requests of every project (`usage`, against `seen`) into `metrics` and
/// sets `cadence` from the slowest project.
pub(super) fn after_pass(
    usage: &[Usage],
    seen: &mut Seen,
    metrics: &Metrics,
    cadence: &Cadence,
    budget: &RateBudget,
    configured: Duration,
) {
    let mut per_project = Vec::new();
    for u in usage {
        let mut requests = 0;
        for (status, n) in &u.requests {
            let before = seen.insert((u.project.clone(), *status), *n).unwrap_or(0);
            requests += n.saturating_sub(before);
            for _ in before..*n {
                metrics.count_api_request("hetzner", *status);
            }
        }
        per_project.push((requests, u.bucket));
    }
    if let Some((requests, bucket)) = slowest(budget, configured, &per_project) {
        cadence.after_pass(requests, Some(bucket));
    }
    if let Some(least) = usage.iter().map(|u| u.bucket.remaining).min() {
        metrics.set_rate_limit_remaining("hetzner", u64::from(least));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_with_the_emptiest_bucket_sets_the_pace() {
        let budget = RateBudget::default();
        let minute = Duration::from_secs(60);
        let full = Observed {
            limit: 3600,
            remaining: 3600,
        };
        let drained = Observed {
            limit: 3600,
            remaining: 100,
        };
        let busy = (400, full);
        let low = (10, drained);
        assert_eq!(slowest(&budget, minute, &[busy, low]), Some(low));
        let pause = interval(&budget, minute, low.0, Some(low.1));
        assert!(pause > interval(&budget, minute, busy.0, Some(busy.1)));
        assert_eq!(slowest(&budget, minute, &[]), None);
    }
}
