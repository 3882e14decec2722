//! The `Stripe-Signature` header, verified as Stripe documents it: `t=<unix seconds>` and one
//! or more `v1=<hex HMAC-SHA256("{t}.{raw body}")>` keyed with the endpoint secret (`whsec_…`,
//! used as-is). Start at [`verify`]; [`sign`] makes a header the same way (the emulator and
//! tests use it).
//!
//! Only `v1` counts (a `v0` entry is ignored, so no downgrade); any `v1` matching any configured
//! secret accepts (secret rotation); the comparison is constant-time (`subtle`'s `ct_eq`).
//! The timestamp is checked after the signature, against a tolerance on both sides of now.
//!
//! The header is untrusted and checked cheaply before any hashing: at most
//! [`MAX_HEADER_BYTES`] bytes and [`MAX_ENTRIES`] entries, or it is refused unread. The HMAC of
//! the body is then computed once per configured secret for the one timestamp, as Stripe's own
//! libraries do, and each `v1` is compared against those digests: the work is one HMAC of the
//! body per secret, whatever the header holds.

use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// The header Stripe sends.
pub const HEADER: &str = "stripe-signature";
/// How far a delivery's timestamp may be from now unless configured (Stripe's libraries: 300 s).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// The longest header read. Stripe sends `t=` and one `v1` per active endpoint secret, plus a
/// `v0` in test mode: about 150 bytes; rolling secrets adds 68 bytes per extra `v1`.
pub const MAX_HEADER_BYTES: usize = 2048;
/// The most comma-separated entries read (`t`, `v0`, `v1` or others together).
pub const MAX_ENTRIES: usize = 16;

/// A delivery whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The header's `t=`, in unix seconds.
    pub timestamp: i64,
    /// The `v1` signature that matched, lowercase hex: identifies this very delivery attempt
    /// (Stripe signs every attempt afresh), so a second sight of it is a replay.
    pub signature: String,
}

/// Why a delivery's signature is refused. No variant carries a secret or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=…,v1=…`.
    #[error(
        "the Stripe-Signature header is malformed ({0}); it must read `t=<unix seconds>,v1=<hex>`"
    )]
    Malformed(&'static str),
    /// The header is longer than [`MAX_HEADER_BYTES`]; refused before it is parsed.
    #[error(
        "the Stripe-Signature header is {bytes} bytes, past the {MAX_HEADER_BYTES}-byte limit; Stripe sends one `t=` and a few `v1=` entries"
    )]
    TooLong {
        /// Its length in bytes.
        bytes: usize,
    },
    /// The header has more than [`MAX_ENTRIES`] entries; refused before any signature is hashed.
    #[error(
        "the Stripe-Signature header has more than {MAX_ENTRIES} entries; Stripe sends one `t=` and a few `v1=` entries"
    )]
    TooManyEntries,
    /// No `v1` entry.
    #[error("the Stripe-Signature header has no v1 signature (only the v1 scheme is accepted)")]
    NoV1,
    /// No `v1` entry matches any configured secret.
    #[error(
        "no v1 signature matches the payload under any configured endpoint secret: check the endpoint's signing secret (whsec_…) in the Stripe dashboard"
    )]
    Mismatch,
    /// The timestamp is older than the tolerance.
    #[error(
        "the delivery is {age_seconds} s old, past the {tolerance_seconds} s tolerance (stale or replayed)"
    )]
    Stale {
        /// Its age.
        age_seconds: i64,
        /// The tolerance.
        tolerance_seconds: u64,
    },
    /// The timestamp is further in the future than the tolerance.
    #[error(
        "the delivery is dated {ahead_seconds} s in the future, past the {tolerance_seconds} s tolerance: check this machine's clock"
    )]
    Future {
        /// How far ahead.
        ahead_seconds: i64,
        /// The tolerance.
        tolerance_seconds: u64,
    },
}

/// Checks `header` against `body` under any of `secrets`, then the timestamp against `now`.
///
/// # Errors
/// See [`SignatureError`].
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[Secret<String>],
    now: SystemTime,
    tolerance: Duration,
) -> Result<Verified, SignatureError> {
    let Header { t, t_text, v1 } = parse(header)?;
    let digests: Vec<[u8; 32]> = secrets
        .iter()
        .filter_map(|secret| mac(secret, t_text, body))
        .map(|m| m.finalize().into_bytes().into())
        .collect();
    let matched = v1.iter().find(|candidate| {
        decode_hex(candidate).is_some_and(|given| {
            digests.iter().fold(false, |any, digest| {
                any | bool::from(digest[..].ct_eq(&given))
            })
        })
    });
    let Some(signature) = matched else {
        return Err(SignatureError::Mismatch);
    };
    let now = unix(now);
    let tolerance_seconds = tolerance.as_secs();
    let limit = i64::try_from(tolerance_seconds).unwrap_or(i64::MAX);
    if now.saturating_sub(t) > limit {
        return Err(SignatureError::Stale {
            age_seconds: now - t,
            tolerance_seconds,
        });
    }
    if t.saturating_sub(now) > limit {
        return Err(SignatureError::Future {
            ahead_seconds: t - now,
            tolerance_seconds,
        });
    }
    Ok(Verified {
        timestamp: t,
        signature: signature.to_ascii_lowercase(),
    })
}

/// A header's entries that count, read within the caps.
#[derive(Debug, PartialEq, Eq)]
struct Header<'a> {
    /// The timestamp.
    t: i64,
    /// The timestamp as sent (what was signed).
    t_text: &'a str,
    /// The `v1` signatures, as sent.
    v1: Vec<&'a str>,
}

/// Reads `header` within [`MAX_HEADER_BYTES`] and [`MAX_ENTRIES`]: no HMAC is computed here.
fn parse(header: &str) -> Result<Header<'_>, SignatureError> {
    if header.len() > MAX_HEADER_BYTES {
        return Err(SignatureError::TooLong {
            bytes: header.len(),
        });
    }
    if header.split(',').nth(MAX_ENTRIES).is_some() {
        return Err(SignatureError::TooManyEntries);
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            return Err(SignatureError::Malformed("an entry without `=`"));
        };
        match key {
            "t" if timestamp.is_some() => {
                return Err(SignatureError::Malformed("two `t=` entries"));
            }
            "t" => {
                let t = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("`t=` is not a number"))?;
                timestamp = Some((t, value));
            }
            "v1" => v1.push(value),
            _ => {}
        }
    }
    let Some((t, t_text)) = timestamp else {
        return Err(SignatureError::Malformed("no `t=` entry"));
    };
    if v1.is_empty() {
        return Err(SignatureError::NoV1);
    }
    Ok(Header { t, t_text, v1 })
}

/// The header Stripe would send for `body` signed with `secret` at `timestamp`.
pub fn sign(secret: &Secret<String>, timestamp: i64, body: &[u8]) -> String {
    let hex = mac(secret, &timestamp.to_string(), body)
        .map(|m| encode_hex(&m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("t={timestamp},v1={hex}")
}

/// The HMAC over `"{t}.{body}"`; `None` only if the key were refused (HMAC takes any length).
fn mac(secret: &Secret<String>, t: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).ok()?;
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// Seconds since the UNIX epoch (negative before it).
pub fn unix(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;

    fn secret(s: &str) -> Secret<String> {
        Secret::from(s)
    }

    fn at(t: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or_default())
    }

    #[test]
    fn a_signature_from_the_documented_recipe_is_accepted() {
        // HMAC-SHA256("whsec_test", "1700000000.{body}") computed independently with Python's
        // hmac module, the way stripe.WebhookSignature._compute_signature does.
        let header = sign(&secret("whsec_test"), 1_700_000_000, BODY);
        assert_eq!(
            header,
            "t=1700000000,v1=4c15fb2a43f93ef61eaa3e0893866d57cad9cad4223242cfb96f362480cb4021"
        );
        let verified = verify(
            &header,
            BODY,
            &[secret("whsec_test")],
            at(1_700_000_010),
            DEFAULT_TOLERANCE,
        );
        assert_eq!(verified.map(|v| v.timestamp), Ok(1_700_000_000));
    }

    #[test]
    fn any_v1_under_any_secret_accepts_during_rotation() {
        let old = sign(&secret("whsec_old"), 100, BODY);
        let new = sign(&secret("whsec_new"), 100, BODY);
        let v1_new = new.split_once(",v1=").map(|(_, s)| s).unwrap_or_default();
        let header = format!("{old},v1={v1_new},v0=deadbeef");
        for secrets in [
            vec![secret("whsec_new")],
            vec![secret("whsec_x"), secret("whsec_old")],
        ] {
            assert!(verify(&header, BODY, &secrets, at(100), DEFAULT_TOLERANCE).is_ok());
        }
    }

    #[test]
    fn tampered_wrong_secret_stale_and_future_deliveries_are_refused() {
        let good = [secret("whsec_a")];
        let header = sign(&good[0], 1000, BODY);
        let tampered = verify(
            &header,
            b"{\"id\":\"evt_2\"}",
            &good,
            at(1000),
            DEFAULT_TOLERANCE,
        );
        assert_eq!(tampered, Err(SignatureError::Mismatch));
        let wrong = verify(
            &header,
            BODY,
            &[secret("whsec_b")],
            at(1000),
            DEFAULT_TOLERANCE,
        );
        assert_eq!(wrong, Err(SignatureError::Mismatch));
        let stale = verify(&header, BODY, &good, at(1301), DEFAULT_TOLERANCE);
        assert!(matches!(
            stale,
            Err(SignatureError::Stale {
                age_seconds: 301,
                ..
            })
        ));
        assert!(verify(&header, BODY, &good, at(1300), DEFAULT_TOLERANCE).is_ok());
        let future = verify(&header, BODY, &good, at(600), DEFAULT_TOLERANCE);
        assert!(matches!(
            future,
            Err(SignatureError::Future {
                ahead_seconds: 400,
                ..
            })
        ));
    }

    #[test]
    fn a_header_past_either_cap_is_refused_before_any_hmac() {
        let sixty_thousand = format!("t=1000{}", ",v1=00".repeat(60_000));
        assert_eq!(
            parse(&sixty_thousand),
            Err(SignatureError::TooLong {
                bytes: sixty_thousand.len()
            })
        );
        let short_but_many = format!("t=1000{}", ",v1=0".repeat(MAX_ENTRIES));
        assert!(short_but_many.len() <= MAX_HEADER_BYTES);
        assert_eq!(parse(&short_but_many), Err(SignatureError::TooManyEntries));
        let at_the_cap = format!("t=1000{}", ",v1=0".repeat(MAX_ENTRIES - 1));
        assert_eq!(parse(&at_the_cap).map(|h| h.v1.len()), Ok(MAX_ENTRIES - 1));
    }

    #[test]
    fn a_rolled_secret_header_with_a_v0_fits_the_caps_and_verifies() {
        let secrets = [secret("whsec_a"), secret("whsec_b"), secret("whsec_c")];
        let mut header = sign(&secrets[2], 1000, BODY);
        for other in &secrets[..2] {
            let v1 = sign(other, 1000, BODY);
            header.push_str(v1.trim_start_matches("t=1000"));
        }
        header.push_str(&format!(",v0={}", "ab".repeat(32)));
        assert!(header.len() <= MAX_HEADER_BYTES, "{}", header.len());
        let verified = verify(&header, BODY, &secrets[..1], at(1000), DEFAULT_TOLERANCE);
        assert_eq!(verified.map(|v| v.timestamp), Ok(1000));
    }

    #[test]
    fn malformed_headers_and_other_schemes_are_refused() {
        let good = [secret("whsec_a")];
        let v0_only = "t=1000,v0=00ff";
        assert_eq!(
            verify(v0_only, BODY, &good, at(1000), DEFAULT_TOLERANCE),
            Err(SignatureError::NoV1)
        );
        for header in ["", "v1=00", "t=abc,v1=00", "t=1,t=2,v1=00", "garbage"] {
            assert!(
                matches!(
                    verify(header, BODY, &good, at(1000), DEFAULT_TOLERANCE),
                    Err(SignatureError::Malformed(_))
                ),
                "{header}"
            );
        }
        assert_eq!(
            verify("t=1000,v1=zz", BODY, &good, at(1000), DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
    }
}
