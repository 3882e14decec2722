//! tether's webhook verifier and event parser against the Stripe emulator's deliveries: the
//! emulator signs with its own signer, written from Stripe's documentation, so a misreading on
//! either side fails here.

use super::events::{self, Parsed};
use super::signature::{self, DEFAULT_TOLERANCE};
use crate::secret::Secret;
use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::HeaderMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;
use tether_emulators::Token;
use tether_emulators::stripe::{StripeEmulator, WebhookSender};

const KEY: &str = "sk_test_emulator";

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
    let stripe = StripeEmulator::start(Token::from(KEY))
        .await
        .expect("start");
    let sender = WebhookSender::new(&endpoint, Token::from("whsec_emulated"));
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
