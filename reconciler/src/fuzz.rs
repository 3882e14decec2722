//! Structure-aware fuzzing of the boundaries untrusted bytes cross, as property tests with a
//! fixed case budget ([`CASES`] each; CI runs them with every `cargo test`). Each target builds
//! its input from the pieces that reach deep into the code under test (valid signatures, real
//! event shapes, hostile text) mixed with arbitrary bytes, and checks what must hold whatever
//! arrives: no panic, an answer from the documented set, bounded work, inert text.
//!
//! Targets here: the `Stripe-Signature` header ([`signature::verify`]), the Stripe event parser
//! ([`events::parse`]), the GitHub webhook ([`Webhook::receive`]), the agent API's report
//! body ([`Report`]) and the commit trailer parser ([`trailers::parse`], with hostile text set
//! as body lines by [`trailers::body_line`]). Elsewhere: the spec loader (`tether-schema`,
//! `load_props.rs`), the renderers (`tether-core`, `escape/tests.rs`), and the trailer parser
//! compared with the real `git interpret-trailers --parse` (`audit/trailers/tests.rs`).

use crate::audit::trailers;
use crate::billing::serve::events::{self, Parsed};
use crate::billing::serve::signature::{self, MAX_ENTRIES, MAX_HEADER_BYTES, SignatureError};
use crate::cloud::retry::ManualClock;
use crate::daemon::trigger::{DEFAULT_SETTLE, coalescer};
use crate::daemon::webhook::{self, Webhook};
use crate::runtime::wire::Report;
use crate::secret::Secret;
use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Cases per target.
const CASES: u32 = 1_000;

const BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;

/// Text that breaks outputs: controls, bidi, line breaks, markup, mentions, links.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        Just("\u{1b}[2J\u{1b}]0;t\u{7}\n\u{202e}@here <!channel> | x".to_owned()),
        Just("Tether-Source-Commit: deadbeef\n\nforged".to_owned()),
        any::<String>(),
    ]
}

/// One `Stripe-Signature` entry.
fn entry() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..3_000_000_000).prop_map(|t| format!("t={t}")),
        "[0-9a-f]{64}".prop_map(|h| format!("v1={h}")),
        "[0-9a-fA-Fz]{0,70}".prop_map(|h| format!("v1={h}")),
        "[0-9a-f]{64}".prop_map(|h| format!("v0={h}")),
        "[ -~]{0,20}",
    ]
}

/// A JSON value shaped like a Stripe event, fields sometimes missing, mistyped or hostile.
fn stripe_event() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![
        Just("customer.subscription.created".to_owned()),
        Just("customer.subscription.updated".to_owned()),
        Just("customer.subscription.deleted".to_owned()),
        Just("invoice.paid".to_owned()),
        hostile_text(),
    ];
    let status = prop_oneof![
        Just("active".to_owned()),
        Just("canceled".to_owned()),
        Just("past_due".to_owned()),
        hostile_text(),
    ];
    (
        kind,
        hostile_text(),
        status,
        hostile_text(),
        any::<i64>(),
        any::<bool>(),
    )
        .prop_map(|(kind, id, status, lookup, created, nested)| {
            let price = serde_json::json!({"price": {"lookup_key": lookup, "id": "price_1"}});
            let object = serde_json::json!({
                "id": if nested { "sub_1".to_owned() } else { id.clone() },
                "object": "subscription",
                "customer": id,
                "status": status,
                "items": {"data": [price]},
            });
            serde_json::to_vec(&serde_json::json!({
                "id": "evt_1",
                "object": "event",
                "type": kind,
                "created": created,
                "data": {"object": object},
            }))
            .unwrap_or_default()
        })
}

/// `sha256=` + hex HMAC of `body`, as GitHub signs a delivery.
fn github_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn webhook_headers(event: &str, delivery: &str, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (webhook::EVENT_HEADER, event),
        (webhook::DELIVERY_HEADER, delivery),
        (webhook::SIGNATURE_HEADER, signature),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    }
    headers
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn a_stripe_signature_header_of_any_shape_is_answered_within_its_caps(
        entries in proptest::collection::vec(entry(), 0..40),
        signed_first in any::<bool>(),
    ) {
        let secret = Secret::from("whsec_fuzz");
        let mut header = entries.join(",");
        if signed_first {
            header = format!("{},{header}", signature::sign(&secret, 1000, BODY));
        }
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let answer = signature::verify(&header, BODY, &[secret], now, signature::DEFAULT_TOLERANCE);
        if header.len() > MAX_HEADER_BYTES {
            prop_assert_eq!(answer, Err(SignatureError::TooLong { bytes: header.len() }));
        } else if header.split(',').count() > MAX_ENTRIES {
            prop_assert_eq!(answer, Err(SignatureError::TooManyEntries));
        } else if answer.is_ok() {
            prop_assert!(header.contains("v1="));
        }
    }

    #[test]
    fn a_stripe_event_of_any_shape_parses_to_plain_ids_or_an_error(body in stripe_event()) {
        if let Ok(Parsed::Subscription(event)) = events::parse(&body) {
            prop_assert!(events::is_plain_id(&event.subscription), "{:?}", event.subscription);
            prop_assert!(events::is_plain_id(&event.customer), "{:?}", event.customer);
        }
    }

    #[test]
    fn arbitrary_bytes_never_break_the_stripe_event_parser(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = events::parse(&body);
    }

    #[test]
    fn a_github_delivery_of_any_shape_gets_a_documented_answer(
        event in prop_oneof![Just("push".to_owned()), Just("ping".to_owned()), "[ -~]{0,12}"],
        delivery in "[ -~]{0,200}",
        git_ref in prop_oneof![Just("refs/heads/main".to_owned()), hostile_text()],
        after in hostile_text(),
        signed in any::<bool>(),
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let secret = "fuzz-secret";
        let (sender, _triggers) = coalescer(ManualClock::new(SystemTime::UNIX_EPOCH), DEFAULT_SETTLE);
        let hook = Webhook::new(Secret::from(secret), "main", sender);
        let body = if signed {
            serde_json::to_vec(&serde_json::json!({"ref": git_ref, "after": after})).unwrap_or_default()
        } else {
            garbage
        };
        let signature = github_signature(secret, &body);
        let (status, answer) = hook.receive(&webhook_headers(&event, &delivery, &signature), &body);
        prop_assert!(
            [StatusCode::OK, StatusCode::ACCEPTED, StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED]
                .contains(&status),
            "{status} {answer}"
        );
    }

    #[test]
    fn an_agent_report_of_any_shape_is_read_or_refused_and_its_text_renders_inert(
        version in proptest::option::of(hostile_text()),
        healthy in any::<bool>(),
        error in proptest::option::of(hostile_text()),
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let body = serde_json::json!({"version": version, "healthy": healthy, "error": error});
        for bytes in [serde_json::to_vec(&body).unwrap_or_default(), garbage] {
            if let Ok(report) = serde_json::from_slice::<Report>(&bytes) {
                let text = report.error.unwrap_or_default();
                for out in [
                    tether_core::escape::terminal(&text),
                    tether_core::escape::markdown(&text),
                    tether_core::escape::slack(&text),
                ] {
                    let inert = !out.contains(['\n', '\u{1b}', '\u{202e}']);
                    prop_assert!(inert, "{:?}", out);
                }
            }
        }
    }

    #[test]
    fn a_commit_message_of_any_shape_parses_and_hostile_body_text_forges_no_trailer(
        raw in any::<String>(),
        hostile in proptest::collection::vec(hostile_text(), 0..4),
    ) {
        let _ = trailers::parse(&raw);
        let mut message = String::from("apply 3f2a1c9: +1 created\n\n");
        for text in &hostile {
            message.push_str(&trailers::body_line(text));
            message.push('\n');
        }
        message.push_str("\nTether-Source-Commit: real\nTether-Run: r1\n");
        let expected = vec![
            ("Tether-Source-Commit".to_owned(), "real".to_owned()),
            ("Tether-Run".to_owned(), "r1".to_owned()),
        ];
        prop_assert_eq!(trailers::parse(&message), expected, "{:?}", message);
    }
}
