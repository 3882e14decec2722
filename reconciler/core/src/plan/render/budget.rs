//! The plan's API-call estimate at the current rate-limit budget, for `tether plan`'s text
//! output: `Rate limit: ~120 API calls, ≈ 2 min at 3,600/h with 40 left.` It is drawn from the
//! bucket read while observing, so it stays out of the plan's JSON and hash, which must not
//! change between `tether plan` and `tether apply`.

use crate::ratelimit::{Observed, time_to_send};
use std::time::Duration;

/// The line for a plan's `calls` (`summary.apiCalls`), counting every call against Hetzner's
/// bucket: an upper bound, as the Tailscale calls among them do not spend it.
pub fn line(calls: u32, bucket: Observed) -> String {
    let wait = time_to_send(calls, bucket);
    let at = format!(
        "at {}/h with {} left",
        thousands(bucket.limit),
        thousands(bucket.remaining)
    );
    if wait.is_zero() {
        format!("Rate limit: ~{calls} API calls, no wait {at}.")
    } else {
        format!("Rate limit: ~{calls} API calls, ≈ {} {at}.", human(wait))
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs_f64().ceil() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h {} min", s / 3600, (s % 3600).div_ceil(60)),
    }
}

fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_calls_the_time_the_limit_and_the_balance() {
        let bucket = |remaining| Observed {
            limit: 3600,
            remaining,
        };
        assert_eq!(
            line(120, bucket(40)),
            "Rate limit: ~120 API calls, ≈ 2 min at 3,600/h with 40 left."
        );
        assert_eq!(
            line(12, bucket(3540)),
            "Rate limit: ~12 API calls, no wait at 3,600/h with 3,540 left."
        );
        assert_eq!(
            line(5000, bucket(0)),
            "Rate limit: ~5000 API calls, ≈ 1 h 24 min at 3,600/h with 0 left."
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
