//! [`Webhook::receive`] on signed, unsigned, replayed and foreign deliveries.

use super::*;
use crate::cloud::retry::ManualClock;
use crate::daemon::trigger::{Coalescer, DEFAULT_SETTLE, coalescer};
use http::HeaderValue;
use std::time::SystemTime;

const SECRET: &str = "It's a Secret to Everybody";

fn endpoint() -> (Webhook, Coalescer<ManualClock>) {
    let (sender, triggers) = coalescer(ManualClock::new(SystemTime::UNIX_EPOCH), DEFAULT_SETTLE);
    (Webhook::new(Secret::from(SECRET), "main", sender), triggers)
}

/// `sha256=` + hex HMAC of `body` with `secret`, as GitHub computes it.
pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn headers(event: &str, delivery: &str, signature: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(EVENT_HEADER, HeaderValue::from_str(event).expect("ascii"));
    headers.insert(
        DELIVERY_HEADER,
        HeaderValue::from_str(delivery).expect("ascii"),
    );
    if let Some(signature) = signature {
        headers.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(signature).expect("ascii"),
        );
    }
    headers
}

fn push_body(branch: &str, after: &str) -> Vec<u8> {
    json!({"ref": format!("refs/heads/{branch}"), "before": "0".repeat(40), "after": after})
        .to_string()
        .into_bytes()
}

fn deliver(hook: &Webhook, event: &str, delivery: &str, body: &[u8]) -> (StatusCode, Value) {
    let signature = sign(SECRET, body);
    hook.receive(&headers(event, delivery, Some(&signature)), body)
}

#[test]
fn the_github_documentation_test_vector_verifies() {
    let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert!(verify_signature(
        SECRET.as_bytes(),
        b"Hello, World!",
        signature
    ));
    assert_eq!(sign(SECRET, b"Hello, World!"), signature);
    assert!(!verify_signature(
        b"another secret",
        b"Hello, World!",
        signature
    ));
    assert!(!verify_signature(
        SECRET.as_bytes(),
        b"Hello, World?",
        signature
    ));
    for malformed in ["", "sha256=", "sha1=757107ea", "sha256=zz", "sha256=757"] {
        assert!(!verify_signature(
            SECRET.as_bytes(),
            b"Hello, World!",
            malformed
        ));
    }
}

#[test]
fn missing_and_invalid_signatures_are_refused_with_401_and_a_clear_error() {
    let (hook, mut triggers) = endpoint();
    let body = push_body("main", "abc");
    let (status, answer) = hook.receive(&headers("push", "d-1", None), &body);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error"], "missing X-Hub-Signature-256 header");

    let forged = sign("guessed", &body);
    let (status, answer) = hook.receive(&headers("push", "d-1", Some(&forged)), &body);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error"], "invalid signature");
    assert!(!answer.to_string().contains(SECRET));
    assert_eq!(triggers.try_next(), None);

    // Refused deliveries are not remembered: the genuine one with the same id still counts.
    let (status, _) = deliver(&hook, "push", "d-1", &body);
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[test]
fn a_push_to_the_watched_branch_triggers_once_and_its_replay_is_a_duplicate() {
    let (hook, mut triggers) = endpoint();
    let body = push_body("main", "c0ffee");
    let (status, answer) = deliver(&hook, "push", "d-7", &body);
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(answer, json!({"status": "accepted", "commit": "c0ffee"}));
    let batch = triggers.try_next().expect("a trigger");
    assert_eq!(
        batch.triggers(),
        [Trigger::Webhook {
            delivery: "d-7".into(),
            commit: "c0ffee".into()
        }]
    );

    let (status, answer) = deliver(&hook, "push", "d-7", &body);
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"status": "duplicate"}))
    );
    assert_eq!(triggers.try_next(), None);
}

#[test]
fn pings_other_branches_and_other_events_do_not_trigger() {
    let (hook, mut triggers) = endpoint();
    let (status, answer) = deliver(
        &hook,
        "ping",
        "d-1",
        br#"{"zen":"Keep it logically awesome."}"#,
    );
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"status": "pong"}))
    );

    let (status, answer) = deliver(&hook, "push", "d-2", &push_body("feature", "abc"));
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(answer["status"], "ignored");
    assert_eq!(
        answer["reason"],
        "push to refs/heads/feature; watching refs/heads/main"
    );

    let (status, answer) = deliver(&hook, "pull_request", "d-3", b"{}");
    assert_eq!(
        (status, &answer["status"]),
        (StatusCode::ACCEPTED, &json!("ignored"))
    );
    assert_eq!(triggers.try_next(), None);
}

#[test]
fn form_encoded_pushes_are_read_and_garbage_is_a_400() {
    let (hook, mut triggers) = endpoint();
    let payload = String::from_utf8(push_body("main", "f00d")).expect("utf-8");
    let body = serde_urlencoded::to_string([("payload", payload)]).expect("encode");
    let mut h = headers("push", "d-1", Some(&sign(SECRET, body.as_bytes())));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let (status, _) = hook.receive(&h, body.as_bytes());
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        triggers
            .try_next()
            .and_then(|b| b.latest_webhook_commit().map(str::to_owned)),
        Some("f00d".to_owned())
    );

    let (status, answer) = deliver(&hook, "push", "d-2", b"not json");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"], "the push payload is not readable");
}

#[test]
fn remembered_deliveries_are_bounded() {
    let mut deliveries = Deliveries::default();
    for n in 0..=REMEMBERED_DELIVERIES {
        assert!(deliveries.insert(&format!("d-{n}")));
    }
    assert_eq!(deliveries.order.len(), REMEMBERED_DELIVERIES);
    assert_eq!(deliveries.seen.len(), REMEMBERED_DELIVERIES);
    assert!(deliveries.insert("d-0"), "the oldest id was forgotten");
    assert!(!deliveries.insert("d-10000"), "recent ids are remembered");
}
