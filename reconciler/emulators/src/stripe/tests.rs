//! The Stripe emulator: the subscription lookup in Stripe's shapes, and events that verify.

use super::*;
use crate::billing::serve::events::{self, Parsed};
use crate::billing::serve::signature::DEFAULT_TOLERANCE;
use axum::routing::post;
use bytes::Bytes;
use std::sync::Mutex;

const KEY: &str = "sk_test_emulator";

async fn get(url: &str, auth: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(auth) = auth {
        request = request.bearer_auth(auth);
    }
    let response = request.send().await.expect("the emulator answers");
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_subscription_lookup_answers_like_stripe() {
    let stripe = StripeEmulator::start(Secret::from(KEY))
        .await
        .expect("start");
    let signed_up = stripe.sign_up("cus_1", "pro_monthly");
    let url = format!(
        "{}/v1/subscriptions/{}",
        stripe.url(),
        signed_up.subscription
    );
    let (status, body) = get(&url, Some(KEY)).await;
    assert_eq!(
        (status, body["status"].as_str(), body["object"].as_str()),
        (200, Some("active"), Some("subscription"))
    );
    assert!(stripe.cancel(&signed_up.subscription).is_some());
    assert_eq!(
        get(&url, Some(KEY)).await.1["status"],
        "canceled",
        "a cancelled subscription stays retrievable"
    );
    let (status, body) = get(
        &format!("{}/v1/subscriptions/sub_nope", stripe.url()),
        Some(KEY),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "resource_missing");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "id");
    assert_eq!(body["error"]["message"], "No such subscription: 'sub_nope'");
    assert_eq!(get(&url, Some("sk_test_other")).await.0, 401);
    assert_eq!(get(&url, None).await.0, 401);
    let basic = reqwest::Client::new()
        .get(&url)
        .basic_auth(KEY, Some(""))
        .send()
        .await
        .expect("answer");
    assert_eq!(
        basic.status().as_u16(),
        200,
        "the key as the basic-auth user, as Stripe's curl examples do"
    );
}

#[tokio::test]
async fn delivered_events_are_signed_and_ordered_as_stripe_sends_them() {
    let received: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
    let sink = received.clone();
    let app = Router::new().route(
        "/stripe",
        post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let sig = headers
                    .get("stripe-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((sig, body));
                axum::Json(serde_json::json!({"status": "ok"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}/stripe", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let stripe = StripeEmulator::start(Secret::from(KEY))
        .await
        .expect("start");
    let sender = WebhookSender::new(&endpoint, Secret::from("whsec_emulated"));
    let created = stripe.sign_up("cus_2", "pro_monthly");
    let paused = stripe
        .set_status(&created.subscription, "paused")
        .expect("known");
    let resumed = stripe
        .set_status(&created.subscription, "active")
        .expect("known");
    for event in [&created, &paused, &resumed] {
        assert_eq!(sender.deliver(event).await.expect("delivered").0, 200);
    }
    let got = received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut last = 0;
    for ((header, body), kind) in got.iter().zip(["created", "paused", "resumed"]) {
        let ok = signature::verify(
            header,
            body,
            &[Secret::from("whsec_emulated")],
            SystemTime::now(),
            DEFAULT_TOLERANCE,
        );
        assert!(ok.is_ok(), "{ok:?}");
        let Ok(Parsed::Subscription(e)) = events::parse(body) else {
            panic!("not a subscription event");
        };
        assert_eq!(e.kind, format!("customer.subscription.{kind}"));
        assert!(e.created > last, "created times increase");
        last = e.created;
    }
    server.abort();
}
