//! The endpoints over real HTTP on 127.0.0.1.

use super::*;
use crate::cloud::retry::ManualClock;
use crate::daemon::trigger::{DEFAULT_SETTLE, Trigger, coalescer};
use crate::daemon::webhook::{DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER};
use crate::process::shutdown::{self, ShutdownReason};
use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, UNIX_EPOCH};

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn clock_at(seconds: u64) -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(seconds))
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_over_http() {
    let metrics = Arc::new(Metrics::new(UNIX_EPOCH + Duration::from_secs(1_000)));
    let readiness = Readiness::default();
    let state = HttpState::new(metrics, readiness.clone(), clock_at(1_030));
    let (stop, signal) = shutdown::channel();
    let server = serve(local(), state, signal).await.expect("serve");
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{}{path}", server.url())).send();

    let health = get("/healthz").await.expect("healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("body"), r#"{"status":"ok"}"#);

    let ready = get("/readyz").await.expect("readyz");
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.text().await.expect("body"),
        r#"{"reason":"waiting for the first reconcile to finish","status":"not ready"}"#
    );
    readiness.set_ready();
    assert_eq!(get("/readyz").await.expect("readyz").status(), 200);
    readiness.set_not_ready("shutting down");
    let ready = get("/readyz").await.expect("readyz");
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.expect("body").contains("shutting down"));

    let scrape = get("/metrics").await.expect("metrics");
    assert_eq!(scrape.status(), 200);
    assert_eq!(scrape.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
    let text = scrape.text().await.expect("body");
    assert!(
        text.contains("\ntether_seconds_since_last_success 30.0\n"),
        "{text}"
    );

    assert_eq!(get("/webhook").await.expect("webhook").status(), 404);

    stop.trigger(ShutdownReason::Requested);
    let addr = server.addr();
    tokio::time::timeout(Duration::from_secs(10), server.stopped())
        .await
        .expect("stops after shutdown")
        .expect("clean stop");
    assert!(
        client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn signed_pushes_reach_the_coalescer_and_unsigned_ones_get_a_json_401() {
    let secret = "hook-secret";
    let (sender, mut triggers) = coalescer(clock_at(0), DEFAULT_SETTLE);
    let webhook = Arc::new(Webhook::new(Secret::from(secret), "main", sender));
    let state = HttpState::new(
        Arc::new(Metrics::new(UNIX_EPOCH)),
        Readiness::default(),
        clock_at(0),
    )
    .with_webhook(webhook);
    let (_stop, signal) = shutdown::channel();
    let server = serve(local(), state, signal).await.expect("serve");
    let client = reqwest::Client::new();
    let body = r#"{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567"}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    let post = |signature: Option<String>| {
        let mut request = client
            .post(format!("{}/webhook", server.url()))
            .header(EVENT_HEADER, "push")
            .header(DELIVERY_HEADER, "72d3162e-cc78-11e3-81ab-4c9367dc0958")
            .header(header::CONTENT_TYPE.as_str(), "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        request.send()
    };

    let refused = post(None).await.expect("send");
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()[header::CONTENT_TYPE], "application/json");
    let answer: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(answer["error"], "missing X-Hub-Signature-256 header");

    let accepted = post(Some(format!("sha256={hex}"))).await.expect("send");
    assert_eq!(accepted.status(), 202);
    let batch = triggers.next().await;
    assert_eq!(
        batch.triggers(),
        [Trigger::Webhook {
            delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
        }]
    );
    let replay = post(Some(format!("sha256={hex}"))).await.expect("send");
    assert_eq!(replay.status(), 200);
    assert_eq!(
        replay.text().await.expect("body"),
        r#"{"status":"duplicate"}"#
    );
}

#[tokio::test]
async fn post_reconcile_asks_for_a_pass_only_with_the_bearer_token() {
    let metrics = Arc::new(Metrics::new(UNIX_EPOCH));
    let (sender, mut batches) = coalescer(clock_at(0), DEFAULT_SETTLE);
    let state = HttpState::new(metrics, Readiness::default(), clock_at(0))
        .with_reconcile(Secret::new("s3cret-token".to_owned()), sender);
    let (stop, signal) = shutdown::channel();
    let server = serve(local(), state, signal).await.expect("serve");
    let client = reqwest::Client::new();
    let post = |auth: Option<&str>| {
        let request = client.post(format!("{}/reconcile", server.url()));
        match auth {
            Some(a) => request.header("Authorization", a),
            None => request,
        }
        .send()
    };

    assert_eq!(post(None).await.expect("post").status(), 401);
    let wrong = post(Some("Bearer s3cret-tokem")).await.expect("post");
    assert_eq!(wrong.status(), 401);
    assert!(
        !wrong.text().await.expect("body").contains("s3cret"),
        "the token is never echoed"
    );
    let accepted = post(Some("Bearer s3cret-token")).await.expect("post");
    assert_eq!(accepted.status(), 202);
    let batch = tokio::time::timeout(Duration::from_secs(5), batches.next())
        .await
        .expect("a pass is asked for");
    assert_eq!(batch.triggers(), [Trigger::Manual]);

    stop.trigger(ShutdownReason::Requested);
    server.stopped().await.expect("stops");
}

#[tokio::test]
async fn post_reconcile_is_off_without_a_token() {
    use tower::ServiceExt;
    let metrics = Arc::new(Metrics::new(UNIX_EPOCH));
    let state = HttpState::new(metrics, Readiness::default(), clock_at(0));
    let response = router(state)
        .oneshot(
            axum::http::Request::post("/reconcile")
                .header("Authorization", "Bearer anything")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(response.status(), 404);
}
