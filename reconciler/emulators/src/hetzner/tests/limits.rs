//! Rate limits, the server quota and injected faults.

use super::super::{Config, RateLimit};
use super::{Api, config};
use crate::emulator::FaultRule;
use http::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn an_empty_bucket_answers_429_with_headers_then_recovers() {
    let api = Api::start_with(Config {
        rate_limit: RateLimit {
            limit: 2,
            refill_per_second: 10.0,
        },
        ..config()
    })
    .await;
    assert_eq!(api.get("/servers").await.status, StatusCode::OK);
    assert_eq!(api.get("/servers").await.status, StatusCode::OK);
    let r = api.get("/servers").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded")
    );
    assert_eq!(
        r.body["error"]["message"],
        "Limit of '2' requests per hour for token 'test…' reached."
    );
    assert_eq!(r.headers["ratelimit-limit"], "2");
    assert_eq!(r.headers["ratelimit-remaining"], "0");
    assert!(r.headers.contains_key("ratelimit-reset"));
    // The bucket refills at 10 a second: a request succeeds again within the wait's deadline.
    let mut refilled = false;
    for _ in 0..250 {
        if api.get("/servers").await.status == StatusCode::OK {
            refilled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refilled, "the bucket never refilled");

    api.emu.set_rate_limit(RateLimit::per_hour(5));
    assert_eq!(
        api.get("/servers").await.headers["ratelimit-remaining"],
        "4"
    );
    let body = json!({"limit": 1, "refill_per_second": 0.0}).to_string();
    let r = api
        .send_as(Method::PUT, "/_emulator/rate_limit", Some(&body), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(api.get("/servers").await.status, StatusCode::OK);
    assert_eq!(
        api.get("/servers").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    api.emu.shutdown().await;
}

#[tokio::test]
async fn the_server_quota_is_resource_limit_exceeded() {
    let api = Api::start_with(Config {
        server_limit: 1,
        ..config()
    })
    .await;
    api.create("only-one", json!({})).await;
    let r = api
        .send(
            Method::POST,
            "/servers",
            json!({"name": "one-too-many", "server_type": "cpx11", "image": "debian-12"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "resource_limit_exceeded")
    );
    assert_eq!(r.body["error"]["message"], "server limit exceeded");
    assert_eq!(
        r.body["error"]["details"],
        json!({"limits": [{"name": "project_limit"}]})
    );
    api.emu.shutdown().await;
}

#[tokio::test]
async fn injected_faults_use_hetzners_envelope_and_are_counted() {
    let api = Api::start().await;
    api.emu.faults().set(vec![FaultRule {
        path_prefix: "/v1/servers".into(),
        error_rate: 1.0,
        error_statuses: vec![503],
        ..FaultRule::everywhere()
    }]);
    let r = api.get("/servers").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    assert!(r.headers.contains_key("x-correlation-id"));
    assert_eq!(api.emu.requests().count("GET", "/v1/servers"), 1);
    let rules = json!([{"pathPrefix": "/v1/locations", "errorRate": 1.0, "errorStatuses": [502]}])
        .to_string();
    let r = api
        .send_as(Method::PUT, "/_emulator/faults", Some(&rules), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(api.get("/servers").await.status, StatusCode::OK);
    assert_eq!(api.get("/locations").await.code(), "bad_gateway");
    api.emu.shutdown().await;
}
