//! The receiver over real HTTP against a real bare repository and the Stripe emulator's API:
//! signed deliveries in, commits and answers out, each spec from Stripe's state.

use super::harness::{Harness, KEY, SECRET, event, harness, receiver_on};
use super::http::MAX_BODY_BYTES;
use super::signature;
use crate::secret::Secret;
use std::time::SystemTime;

#[tokio::test]
async fn a_sign_up_becomes_a_spec_in_one_commit_with_its_trailer() {
    let h = harness(50).await;
    h.stripe_says("sub_a", "active", "pro_monthly");
    let (status, body) = h
        .deliver(&event(
            "evt_1",
            "customer.subscription.created",
            100,
            "sub_a",
            "active",
            "pro_monthly",
        ))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    let spec = h.spec("sub_a").expect("the spec exists");
    for part in [
        "subscription: sub_a",
        "type: cpx21",
        "location: fsn1",
        "version: \"1.4.2\"",
        "plan: \"pro\"",
    ] {
        assert!(spec.contains(part), "{part} missing from\n{spec}");
    }
    assert!(
        h.head_message()
            .contains("Tether-Stripe-Event: evt_1 sub_a 100"),
        "{}",
        h.head_message()
    );
    h.stripe_says("sub_a", "unpaid", "pro_monthly");
    let (status, body) = h
        .deliver(&event(
            "evt_2",
            "customer.subscription.updated",
            200,
            "sub_a",
            "unpaid",
            "pro_monthly",
        ))
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("applied")));
    assert!(h.spec("sub_a").is_some_and(|s| s.contains("power: off")));
    assert_eq!(h.commits(), 2);
}

#[tokio::test]
async fn a_cancellation_before_a_delayed_retry_of_the_sign_up_recreates_nothing() {
    let h = harness(50).await;
    h.stripe_says("sub_b", "active", "pro_monthly");
    let created = event(
        "evt_c",
        "customer.subscription.created",
        100,
        "sub_b",
        "active",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&created).await.0, 200);
    h.stripe_says("sub_b", "canceled", "pro_monthly");
    let deleted = event(
        "evt_d",
        "customer.subscription.deleted",
        300,
        "sub_b",
        "canceled",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&deleted).await.1["status"], "applied");
    assert!(h.spec("sub_b").is_none());
    // A sign-up update from before the cancellation, delivered late, and a retry of the
    // sign-up itself: neither brings the VM back.
    let late = event(
        "evt_u",
        "customer.subscription.updated",
        200,
        "sub_b",
        "active",
        "big_monthly",
    );
    let (status, body) = h.deliver(&late).await;
    assert_eq!(
        (status, body["status"].as_str(), body["last"].as_str()),
        (200, Some("stale"), Some("evt_d"))
    );
    assert_eq!(h.redeliver(&created, 60).await.1["status"], "duplicate");
    assert!(h.spec("sub_b").is_none());
    assert_eq!(h.commits(), 2, "stale and duplicate events commit nothing");
}

#[tokio::test]
async fn order_and_idempotency_survive_a_restart() {
    let h = harness(50).await;
    h.stripe_says("sub_s", "canceled", "pro_monthly");
    let created = event(
        "evt_s1",
        "customer.subscription.created",
        100,
        "sub_s",
        "active",
        "pro_monthly",
    );
    let deleted = event(
        "evt_s2",
        "customer.subscription.deleted",
        200,
        "sub_s",
        "canceled",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&deleted).await.1["status"], "applied");
    let Harness {
        dir,
        server,
        stripe,
        ..
    } = h;
    server.abort();
    let restarted = receiver_on(dir, stripe, 50, 100).await;
    assert_eq!(
        restarted.redeliver(&created, 10).await.1["status"],
        "stale",
        "the order came back from the trailers"
    );
    assert_eq!(
        restarted.redeliver(&deleted, 10).await.1["status"],
        "duplicate"
    );
    assert!(restarted.spec("sub_s").is_none());
    assert_eq!(restarted.commits(), 1);
}

#[tokio::test]
async fn a_redelivery_is_a_duplicate_and_a_replay_is_recognised() {
    let h = harness(50).await;
    h.stripe_says("sub_r", "trialing", "pro_monthly");
    let body = event(
        "evt_r",
        "customer.subscription.created",
        100,
        "sub_r",
        "trialing",
        "pro_monthly",
    );
    let header = signature::sign(
        &Secret::from(SECRET),
        signature::unix(SystemTime::now()),
        body.as_bytes(),
    );
    assert_eq!(h.send(&body, &header).await.1["status"], "applied");
    assert_eq!(h.send(&body, &header).await.1["status"], "replay");
    assert_eq!(h.redeliver(&body, 30).await.1["status"], "duplicate");
    assert_eq!(h.commits(), 1);
    let metrics = h.metrics.render();
    for line in [
        "tether_billing_deliveries_total{outcome=\"replay\"} 1",
        "tether_billing_commits_total 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    crate::daemon::metrics::exposition::parse(&metrics).expect("a valid exposition");
}

#[tokio::test]
async fn forged_stale_oversized_unmapped_and_invalid_deliveries_are_refused() {
    let h = harness(50).await;
    h.stripe_says("sub_g", "active", "gold");
    h.stripe_says("sub_x", "active", "broken");
    let body = event(
        "evt_f",
        "customer.subscription.created",
        100,
        "sub_f",
        "active",
        "pro_monthly",
    );
    let now = signature::unix(SystemTime::now());
    let wrong = signature::sign(&Secret::from("whsec_wrong"), now, body.as_bytes());
    assert_eq!(h.send(&body, &wrong).await.0, 400);
    let stale = signature::sign(&Secret::from(SECRET), now - 301, body.as_bytes());
    let (status, answer) = h.send(&body, &stale).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("tolerance")),
        "{answer}"
    );
    let tampered = body.replace("sub_f", "sub_g");
    let header = signature::sign(&Secret::from(SECRET), now, body.as_bytes());
    assert_eq!(h.send(&tampered, &header).await.0, 400);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
    assert_eq!(h.deliver(&big).await.0, 413);
    let gold = event(
        "evt_g",
        "customer.subscription.created",
        100,
        "sub_g",
        "active",
        "gold",
    );
    let (status, answer) = h.deliver(&gold).await;
    assert_eq!(status, 422);
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("lookup_key gold")),
        "{answer}"
    );
    let broken = event(
        "evt_b",
        "customer.subscription.created",
        100,
        "sub_x",
        "active",
        "broken",
    );
    let (status, answer) = h.deliver(&broken).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["problems"].to_string().contains("mars1"), "{answer}");
    assert_eq!(h.commits(), 0);
}

#[tokio::test]
async fn a_60000_entry_signature_header_gets_a_400_naming_the_limit_and_writes_nothing() {
    let h = harness(50).await;
    h.stripe_says("sub_d", "active", "pro_monthly");
    let body = event(
        "evt_d",
        "customer.subscription.created",
        100,
        "sub_d",
        "active",
        "pro_monthly",
    );
    let now = signature::unix(SystemTime::now());
    let header = format!("t={now}{}", ",v1=00".repeat(60_000));
    let (status, answer) = h.send(&body, &header).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("2048-byte limit")),
        "{answer}"
    );
    let valid = signature::sign(&Secret::from(SECRET), now, body.as_bytes());
    let many = format!("{valid}{}", ",v0=00".repeat(signature::MAX_ENTRIES));
    let (status, answer) = h.send(&body, &many).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("more than 16 entries")),
        "{answer}"
    );
    assert_eq!(h.commits(), 0);
    assert_eq!(h.deliver(&body).await.0, 200);
}

#[tokio::test]
async fn a_downgrade_takes_the_new_price_whole_and_leaves_type_and_location_to_the_defaults() {
    let h = harness(50).await;
    h.stripe_says("sub_d", "active", "big_monthly");
    let up = event(
        "evt_d1",
        "customer.subscription.created",
        100,
        "sub_d",
        "active",
        "big_monthly",
    );
    assert_eq!(h.deliver(&up).await.1["status"], "applied");
    let big = h.spec("sub_d").expect("spec");
    assert!(
        big.contains("type: cpx31") && big.contains("location: hel1"),
        "{big}"
    );
    h.stripe_says("sub_d", "active", "basic_monthly");
    // The downgrade's event arrives in its own batch and says nothing about the server: the
    // spec is what the price Stripe now bills implies.
    let down = event(
        "evt_d2",
        "customer.subscription.updated",
        200,
        "sub_d",
        "active",
        "big_monthly",
    );
    assert_eq!(h.deliver(&down).await.1["status"], "applied");
    let basic = h.spec("sub_d").expect("spec");
    assert!(
        !basic.contains("type:") && !basic.contains("location:"),
        "{basic}"
    );
    assert!(basic.contains("plan: \"basic\""), "{basic}");
}

#[tokio::test]
async fn a_same_second_event_whose_id_sorts_first_still_gets_the_paying_customer_a_spec() {
    let h = harness(50).await;
    h.stripe_says("sub_t", "incomplete", "pro_monthly");
    let created = event(
        "evt_t9",
        "customer.subscription.created",
        500,
        "sub_t",
        "incomplete",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&created).await.1["status"], "applied");
    assert!(h.spec("sub_t").is_none(), "incomplete: no agent yet");
    h.stripe_says("sub_t", "active", "pro_monthly");
    let paid = event(
        "evt_t1",
        "customer.subscription.updated",
        500,
        "sub_t",
        "active",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&paid).await.1["status"], "applied");
    assert!(
        h.spec("sub_t").is_some(),
        "the payment of the same second is not stale"
    );
}

#[tokio::test]
async fn two_copies_in_one_batch_get_the_same_answer() {
    let h = harness(50).await;
    h.stripe_says("sub_c", "active", "pro_monthly");
    let body = event(
        "evt_c1",
        "customer.subscription.created",
        100,
        "sub_c",
        "active",
        "pro_monthly",
    );
    let (a, b) = tokio::join!(h.deliver(&body), h.redeliver(&body, 1));
    assert_eq!((a.0, b.0), (200, 200));
    let answers = [a.1["status"].clone(), b.1["status"].clone()];
    assert!(
        answers.iter().all(|s| s == "applied")
            || answers.contains(&"duplicate".into()) && answers.contains(&"applied".into()),
        "{answers:?}"
    );
    assert!(h.head_message().contains("evt_c1"));
}

#[tokio::test]
async fn stripe_unreadable_answers_503_and_the_retry_applies_once_it_reads_again() {
    let h = harness(50).await;
    h.stripe_says("sub_u", "active", "pro_monthly");
    h.stripe
        .faults()
        .set(vec![tether_emulators::emulator::FaultRule {
            error_rate: 1.0,
            ..tether_emulators::emulator::FaultRule::everywhere()
        }]);
    let body = event(
        "evt_u1",
        "customer.subscription.created",
        100,
        "sub_u",
        "active",
        "pro_monthly",
    );
    let (status, answer) = h.deliver(&body).await;
    assert_eq!(status, 503, "{answer}");
    assert!(!answer.to_string().contains(KEY), "the API key never shows");
    assert_eq!(h.commits(), 0);
    h.stripe.faults().set(Vec::new());
    assert_eq!(h.redeliver(&body, 5).await.1["status"], "applied");
    assert!(h.spec("sub_u").is_some());
}
