//! The quarantine grace period: how long a server whose spec was removed waits, powered off,
//! before tether deletes it. Written `24h`, `90m`, `7d`, `30s` (or a sum like `1d12h`); `0` or
//! `off` turn quarantine off (the server is deleted at once, as before).

use crate::names::Invalid;

/// The default grace period: one day.
pub const DEFAULT_SECONDS: u64 = 24 * 3600;
/// The longest grace period accepted: 90 days.
pub const MAX_SECONDS: u64 = 90 * 24 * 3600;

const HINT: &str = "write a duration such as `24h`, `90m`, `7d` or `1d12h` (units s, m, h, d; at most 90d), or `0` / `off` to delete at once without quarantine";

/// Parses a grace period into seconds; `0` means quarantine is off.
///
/// # Errors
/// The text is not a duration of whole units, or is longer than 90 days.
pub fn parse(text: &str) -> Result<u64, Invalid> {
    let bad = |message: String| Invalid {
        message,
        hint: HINT.to_owned(),
    };
    let text = text.trim();
    if text == "0" || text == "off" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err(bad("the grace period is empty".to_owned()));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            other => return Err(bad(format!("`{text}`: `{other}` is not a unit"))),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| bad(format!("`{text}`: a number must come before `{c}`")))?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| bad(format!("`{text}` is too long")))?;
    }
    if digits == text {
        return Err(bad(format!("`{text}` has no unit")));
    }
    if !digits.is_empty() {
        return Err(bad(format!(
            "`{text}`: the trailing `{digits}` has no unit"
        )));
    }
    if total > MAX_SECONDS {
        return Err(bad(format!("`{text}` is longer than 90 days")));
    }
    Ok(total)
}

/// `seconds` as the shortest duration text [`parse`] reads back (`off` for zero).
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

    #[test]
    fn durations_parse_to_seconds_and_format_back() {
        for (text, seconds) in [
            ("24h", 86_400),
            ("2s", 2),
            ("1d12h", 129_600),
            ("90m", 5400),
            ("0", 0),
            ("off", 0),
        ] {
            assert_eq!(parse(text), Ok(seconds), "{text}");
            assert_eq!(parse(&format(seconds)), Ok(seconds), "{text}");
        }
        assert_eq!(format(129_600), "1d12h");
    }

    #[test]
    fn nonsense_and_overlong_durations_are_refused_with_a_hint() {
        for text in ["", "h", "24", "1w", "-1h", "91d", "99999999999999999999d"] {
            let e = parse(text).expect_err(text);
            assert!(e.hint.contains("24h"), "{text}: {e:?}");
        }
    }
}
