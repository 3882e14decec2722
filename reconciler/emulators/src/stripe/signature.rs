//! The `Stripe-Signature` header of a webhook delivery, made as Stripe documents it:
//! `t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{raw body}">`, keyed with the endpoint's
//! signing secret (`whsec_…`, its bytes used as-is).

use crate::Token;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// The header value for `body` sent at `timestamp` (unix seconds), signed with `secret`.
pub fn sign(secret: &Token, timestamp: i64, body: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        for byte in mac.finalize().into_bytes() {
            let _ = write!(hex, "{byte:02x}");
        }
    }
    format!("t={timestamp},v1={hex}")
}

/// `at` in unix seconds (negative before 1970).
pub fn unix(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected value was computed independently (Python's `hmac` module).
    #[test]
    fn the_signature_is_the_hmac_sha256_of_timestamp_dot_payload() {
        let header = sign(
            &Token::from("whsec_test"),
            1_700_000_000,
            br#"{"id":"evt_1"}"#.as_slice(),
        );
        assert_eq!(
            header,
            "t=1700000000,v1=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
        );
    }
}
