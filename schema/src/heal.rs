//! Self-healing policy (`spec.policy.heal`): when tether remedies a server that never joined
//! the tailnet or a device that went offline while its server runs, with what, how often and
//! how many times. The raw form is [`RawHeal`]; [`validate`] turns it into [`HealPolicy`].

use crate::diagnostic::Code;
use crate::names::Invalid;
use crate::report::Report;
use crate::spanned::{Spanned, Text};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The validated self-healing policy. Durations are in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealPolicy {
    /// Whether tether remedies at all (default on).
    pub enabled: bool,
    /// How long after its creation (or its last remedy) a running server may go without any
    /// device of its own before it is remedied (default 15 minutes).
    pub enrolment_deadline: u64,
    /// How long a device must have been disconnected (`lastSeen`) to count as offline
    /// (default 10 minutes).
    pub offline_threshold: u64,
    /// Consecutive passes that must see the same problem, on a complete device listing,
    /// before a remedy (default 3).
    pub observations: u32,
    /// Remedies per agent before it is marked failed (default 3).
    pub max_attempts: u32,
    /// Wait after the first remedy before the next; doubles with each attempt (default 5m).
    pub backoff: u64,
    /// How many of the first attempts on a server that never enrolled are re-keys (a rebuild
    /// with a fresh key, same server); the rest are replacements (default 1).
    pub rekeys: u32,
    /// How many of the first attempts on an offline device are power cycles; the rest are
    /// replacements (default 1).
    pub power_cycles: u32,
}

impl Default for HealPolicy {
    fn default() -> Self {
        HealPolicy {
            enabled: true,
            enrolment_deadline: 15 * 60,
            offline_threshold: 10 * 60,
            observations: 3,
            max_attempts: 3,
            backoff: 5 * 60,
            rekeys: 1,
            power_cycles: 1,
        }
    }
}

/// `spec.policy.heal` of the Fleet, as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHeal {
    /// `false` turns self-healing off: problems are reported, never remedied (default `true`).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// How long a running server may go without joining the tailnet, after its creation or its
    /// last remedy, before it is remedied: `15m` (default).
    #[serde(default)]
    pub enrolment_deadline: Option<Text>,
    /// How long a device must have been disconnected to count as offline: `10m` (default).
    #[serde(default)]
    pub offline_threshold: Option<Text>,
    /// Consecutive passes that must see the problem before a remedy (default 3, at least 1).
    #[serde(default)]
    pub observations: Option<Spanned<u32>>,
    /// Remedies per agent before it is marked failed (default 3, at least 1).
    #[serde(default)]
    pub max_attempts: Option<Spanned<u32>>,
    /// Wait after a remedy before the next, doubling each time: `5m` (default).
    #[serde(default)]
    pub backoff: Option<Text>,
    /// How many first attempts on a server that never joined are re-keys before replacements
    /// (default 1).
    #[serde(default)]
    pub rekeys: Option<u32>,
    /// How many first attempts on an offline device are power cycles before replacements
    /// (default 1).
    #[serde(default)]
    pub power_cycles: Option<u32>,
}

const HINT: &str = "write a duration such as `15m`, `10m`, `1h` or `30s` (units s, m, h, d, w; whole seconds, at most 90d), or `0`";

/// Parses a heal duration into seconds.
///
/// # Errors
/// The text is not a duration of whole units, or is longer than 90 days.
pub fn parse_duration(text: &str) -> Result<u64, Invalid> {
    crate::grace::parse(text).map_err(|e| Invalid {
        message: e
            .message
            .replace("the grace period", "the duration")
            .replace("grace period", "duration"),
        hint: HINT.to_owned(),
    })
}

/// Validates `raw` into a [`HealPolicy`], reporting every problem to `r`.
pub(crate) fn validate(raw: &RawHeal, r: &mut Report<'_>) -> HealPolicy {
    let mut heal = HealPolicy::default();
    if let Some(on) = raw.enabled {
        heal.enabled = on;
    }
    let mut duration = |path: &str, text: &Option<Text>, into: &mut u64| {
        if let Some(text) = text
            && let Some(seconds) = r.parse(path, text, parse_duration)
        {
            *into = seconds;
        }
    };
    duration(
        "spec.policy.heal.enrolmentDeadline",
        &raw.enrolment_deadline,
        &mut heal.enrolment_deadline,
    );
    duration(
        "spec.policy.heal.offlineThreshold",
        &raw.offline_threshold,
        &mut heal.offline_threshold,
    );
    duration("spec.policy.heal.backoff", &raw.backoff, &mut heal.backoff);
    for (path, value, into) in [
        (
            "spec.policy.heal.observations",
            &raw.observations,
            &mut heal.observations,
        ),
        (
            "spec.policy.heal.maxAttempts",
            &raw.max_attempts,
            &mut heal.max_attempts,
        ),
    ] {
        match value {
            Some(v) if v.value == 0 => r.push(
                v.span,
                path,
                Code::InvalidValue,
                "must be at least 1".into(),
                "write 1 or more; to turn self-healing off, write `enabled: false`".into(),
            ),
            Some(v) => *into = v.value,
            None => {}
        }
    }
    if let Some(n) = raw.rekeys {
        heal.rekeys = n;
    }
    if let Some(n) = raw.power_cycles {
        heal.power_cycles = n;
    }
    heal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heal_durations_parse_and_name_themselves_in_errors() {
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("0"), Ok(0));
        let e = parse_duration("soon").expect_err("not a duration");
        assert!(e.hint.contains("15m"), "{e:?}");
        assert!(!e.message.contains("grace"), "{e:?}");
    }
}
