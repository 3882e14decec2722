//! The `Tether-Signature` header on every event delivery, shaped like Stripe's:
//! `t=<unix seconds>,v1=<hex HMAC-SHA256("{t}.{raw body}")>`, with one `v1` per configured
//! secret so a receiver can rotate its secret without losing a delivery. [`sign`] makes it;
//! [`verify`] is the documented verifier a Rust receiver can call (the Python and TypeScript
//! ones in `docs/events.md` do the same). The HMAC and its constant-time comparison are the
//! Stripe receiver's ([`crate::billing::serve::signature`]): one implementation of the scheme.

use crate::billing::serve::signature::{self as stripe, SignatureError};
use crate::secret::Secret;
use std::time::{Duration, SystemTime};

/// The header tether sends.
pub const HEADER: &str = "tether-signature";
/// How far a delivery's timestamp may be from the receiver's clock (as Stripe's libraries).
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// Why a delivery is refused by [`verify`]. No variant carries a secret or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header is not `t=…,v1=…`.
    #[error(
        "the Tether-Signature header is malformed ({0}); it must read `t=<unix seconds>,v1=<hex>`"
    )]
    Malformed(&'static str),
    /// No `v1` signature matches the body under any of the receiver's secrets.
    #[error(
        "no v1 signature matches the body under any of the receiver's secrets: check the secret (events.secretsEnv on the daemon) and that the body is the raw bytes received"
    )]
    Mismatch,
    /// The timestamp is outside the tolerance: a replay, or a clock off.
    #[error(
        "the delivery is dated {skew_seconds} s from this machine's clock, past the {tolerance_seconds} s tolerance (a replay, or a clock off)"
    )]
    Stale {
        /// How far off, in seconds (positive: in the past).
        skew_seconds: i64,
        /// The tolerance.
        tolerance_seconds: u64,
    },
}

/// The header for `body` at `timestamp`, one `v1` per secret, in the order given.
pub fn sign(secrets: &[Secret<String>], timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let one = stripe::sign(secret, timestamp, body);
        if let Some((_, v1)) = one.split_once(",v1=") {
            header.push_str(",v1=");
            header.push_str(v1);
        }
    }
    header
}

/// Checks `header` against the raw `body` under any of `secrets`, then its timestamp against
/// `now` within [`TOLERANCE`]. Returns the signed timestamp.
///
/// # Errors
/// See [`VerifyError`].
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[Secret<String>],
    now: SystemTime,
) -> Result<i64, VerifyError> {
    match stripe::verify(header, body, secrets, now, TOLERANCE) {
        Ok(v) => Ok(v.timestamp),
        Err(SignatureError::Malformed(what)) => Err(VerifyError::Malformed(what)),
        Err(SignatureError::NoV1) => Err(VerifyError::Malformed("no v1 entry")),
        Err(SignatureError::TooLong { .. }) => {
            Err(VerifyError::Malformed("longer than the header limit"))
        }
        Err(SignatureError::TooManyEntries) => {
            Err(VerifyError::Malformed("more entries than the header limit"))
        }
        Err(SignatureError::Mismatch) => Err(VerifyError::Mismatch),
        Err(SignatureError::Stale {
            age_seconds,
            tolerance_seconds,
        }) => Err(VerifyError::Stale {
            skew_seconds: age_seconds,
            tolerance_seconds,
        }),
        Err(SignatureError::Future {
            ahead_seconds,
            tolerance_seconds,
        }) => Err(VerifyError::Stale {
            skew_seconds: -ahead_seconds,
            tolerance_seconds,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn a_delivery_signed_with_two_secrets_verifies_under_either_and_not_after_a_change() {
        let old = Secret::new("whsec_old".to_owned());
        let new = Secret::new("whsec_new".to_owned());
        let body = br#"{"type":"agent.ready"}"#;
        let header = sign(&[new.clone(), old.clone()], 1_800_000_000, body);
        assert_eq!(header.matches("v1=").count(), 2, "{header}");
        assert_eq!(
            verify(&header, body, std::slice::from_ref(&old), at(1_800_000_010)),
            Ok(1_800_000_000)
        );
        assert_eq!(
            verify(&header, body, &[new], at(1_800_000_010)),
            Ok(1_800_000_000)
        );
        let tampered = br#"{"type":"agent.deleted"}"#;
        assert_eq!(
            verify(
                &header,
                tampered,
                std::slice::from_ref(&old),
                at(1_800_000_010)
            ),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&header, body, &[old], at(1_800_000_400)),
            Err(VerifyError::Stale {
                skew_seconds: 400,
                tolerance_seconds: 300
            })
        );
    }

    /// The Python verifier of docs/events.md (`docs/events/verify.py`), run on tether's own
    /// signatures: a receiver following the docs accepts what tether sends, and only that.
    #[test]
    fn the_documented_python_verifier_accepts_tethers_signature_and_refuses_a_changed_body() {
        use std::io::Write;
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events/verify.py");
        let docs = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events.md"),
        )
        .expect("docs/events.md");
        let source = std::fs::read_to_string(&script).expect("verify.py");
        let function = &source[source.find("def verify").expect("def")
            ..source.find("\n\nif __name__").expect("main")];
        assert!(
            docs.contains(function),
            "docs/events.md shows verify.py's function as it is"
        );
        let secrets = [
            Secret::new("rotated-new-0123456789".to_owned()),
            Secret::new("rotated-old-0123456789".to_owned()),
        ];
        let body = br#"{"specversion":"1.0","type":"agent.ready"}"#;
        let now = crate::billing::serve::signature::unix(SystemTime::now());
        let header = sign(&secrets, now, body);
        let run = |body: &[u8], secret: &str| {
            let mut child = std::process::Command::new("python3")
                .arg(&script)
                .arg(&header)
                .env("TETHER_EVENTS_SECRETS", secret)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("python3 runs (CI installs it)");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(body)
                .expect("write body");
            let out = child.wait_with_output().expect("wait");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        };
        assert_eq!(
            run(body, "rotated-old-0123456789"),
            (Some(0), "verified\n".to_owned())
        );
        let (code, said) = run(
            br#"{"specversion":"1.0","type":"agent.deleted"}"#,
            "rotated-new-0123456789",
        );
        assert_eq!(code, Some(1), "{said}");
        assert!(said.contains("no signature matches"), "{said}");
        assert_eq!(run(body, "another-secret-0123456789").0, Some(1));
    }

    #[test]
    fn the_header_holds_no_secret() {
        let header = sign(&[Secret::new("whsec_topsecret".into())], 1, b"{}");
        assert!(!header.contains("topsecret"), "{header}");
        assert!(
            !VerifyError::Mismatch.to_string().contains("topsecret"),
            "errors name no secret"
        );
    }
}
