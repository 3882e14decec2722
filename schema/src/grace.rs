//! The quarantine grace period: how long a server whose spec was removed waits, powered off,
//! before tether deletes it. Written as `humantime` reads durations: `24h`, `90m`, `7d`, `2w`,
//! `30s`, a sum like `1d12h` or `1h 30m`, or a fraction like `1.5h`; whole seconds only. `0` or
//! `off` turn quarantine off (the server is deleted at once, as before).

use crate::names::Invalid;

/// The default grace period: one day.
pub const DEFAULT_SECONDS: u64 = 24 * 3600;
/// The longest grace period accepted: 90 days.
pub const MAX_SECONDS: u64 = 90 * 24 * 3600;

const HINT: &str = "write a duration such as `24h`, `90m`, `7d` or `1d12h` (units s, m, h, d, w; whole seconds, at most 90d), or `0` / `off` to delete at once without quarantine";

/// Parses a grace period into seconds; `0` means quarantine is off.
///
/// # Errors
/// The text is not a duration (see [`humantime::parse_duration`]), is not a whole number of
/// seconds, or is longer than 90 days.
pub fn parse(text: &str) -> Result<u64, Invalid> {
    let bad = |message: String| Invalid {
        message,
        hint: HINT.to_owned(),
    };
    let text = text.trim();
    if text == "off" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err(bad("the grace period is empty".to_owned()));
    }
    let duration = humantime::parse_duration(text)
        .map_err(|e| bad(format!("`{text}` is not a duration: {e}")))?;
    if duration.subsec_nanos() != 0 {
        return Err(bad(format!("`{text}` is not a whole number of seconds")));
    }
    if duration.as_secs() > MAX_SECONDS {
        return Err(bad(format!("`{text}` is longer than 90 days")));
    }
    Ok(duration.as_secs())
}

/// `seconds` as the shortest duration text [`parse`] reads back (`off` for zero): the compact
/// `1d12h` that plans and status show, where `humantime` would print `1day 12h`.
pub fn format(seconds: u64) -> String {
    if seconds == 0 {
        return "off".to_owned();
    }
    let mut out = String::new();
    let mut left = seconds;
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if left >= size {
            out.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse_to_seconds_and_read_back_from_humantime() {
        for (text, seconds) in [
            ("24h", 86_400),
            ("2s", 2),
            ("1d12h", 129_600),
            ("1h 30m", 5400),
            ("90m", 5400),
            ("1.5h", 5400),
            ("2w", 1_209_600),
            ("0", 0),
            ("off", 0),
        ] {
            assert_eq!(parse(text), Ok(seconds), "{text}");
            let printed = humantime::format_duration(Duration::from_secs(seconds)).to_string();
            assert_eq!(parse(&printed), Ok(seconds), "{text} printed as {printed}");
            assert_eq!(parse(&format(seconds)), Ok(seconds), "{text}");
        }
        assert_eq!(format(129_600), "1d12h");
    }

    #[test]
    fn nonsense_and_overlong_durations_are_refused_with_a_hint() {
        for text in [
            "",
            "h",
            "24",
            "1x",
            "-1h",
            "91d",
            "1500ms",
            "99999999999999999999d",
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.hint.contains("24h"), "{text}: {e:?}");
        }
    }
}
