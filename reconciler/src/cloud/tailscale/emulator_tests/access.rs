//! Who may call what: OAuth tag rules, scopes, tokens, the tailnet segment, faults, and the
//! `/_emulator` routes.

use super::*;
use crate::cloud::tailscale::{DeviceQuery, Tailnet};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tether_emulators::emulator::FaultRule;

#[tokio::test]
async fn oauth_clients_create_keys_only_with_tags_they_own() {
    let emulator = start().await;
    let tether = client(&emulator, tether());
    let created = tether
        .create_auth_key(&agent_key("acme-prod", &["tag:agent", "tag:agent-eu"]))
        .await
        .expect("owned tags");
    assert_eq!(created.key.tags, ["tag:agent", "tag:agent-eu"]);
    assert!(created.key.preauthorized && !created.key.reusable && !created.key.ephemeral);
    assert_eq!(created.key.description, "tether acme-prod");

    let foreign = tether
        .create_auth_key(&agent_key("x", &["tag:other"]))
        .await
        .expect_err("foreign tag");
    assert_eq!(
        message(&foreign),
        (
            400,
            "requested tags [tag:other] are invalid or not permitted".into()
        )
    );
    let untagged = tether
        .create_auth_key(&agent_key("x", &[]))
        .await
        .expect_err("untagged");
    assert_eq!(message(&untagged).0, 400);

    let by_admin = client(&emulator, admin())
        .create_auth_key(&agent_key("y", &[]))
        .await
        .expect("users may create untagged keys");
    assert!(by_admin.key.tags.is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn scopes_limit_what_a_token_may_do() {
    let emulator = start().await;
    let reader = client(&emulator, reader());
    reader
        .list_devices(&DeviceQuery::default())
        .await
        .expect("all:read lists devices");
    let refused = reader
        .create_auth_key(&agent_key("a", &["tag:agent"]))
        .await
        .expect_err("no auth_keys scope");
    assert_eq!(
        message(&refused),
        (
            403,
            "calling actor does not have enough permissions to perform this function".into()
        )
    );

    let form = [
        ("client_id", TETHER_ID),
        ("client_secret", TETHER_SECRET),
        ("scope", "devices:core:read"),
    ];
    let token: Value = reqwest::Client::new()
        .post(format!("{}/api/v2/oauth/token", emulator.url()))
        .form(&form)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (&token["token_type"], &token["expires_in"], &token["scope"]),
        (&json!("Bearer"), &json!(3600), &json!("devices:core:read"))
    );
    let bearer = token["access_token"].as_str().expect("token");
    let status = |path: &'static str| {
        let url = format!("{}{path}", emulator.url());
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(bearer)
                .json(&json!({"capabilities": {"devices": {"create": {"tags": ["tag:tether"]}}}}))
                .send()
                .await
                .expect("send")
                .status()
        }
    };
    assert_eq!(
        status("/api/v2/tailnet/-/keys").await,
        StatusCode::FORBIDDEN
    );

    let bad = client(&emulator, Credentials::ApiKey("tskey-api-wrong".into()))
        .list_keys()
        .await
        .expect_err("bad token");
    assert_eq!(message(&bad).0, 401);
    let wrong_secret = Credentials::OAuth {
        client_id: TETHER_ID.into(),
        client_secret: "tskey-client-wrong".into(),
    };
    let bad = client(&emulator, wrong_secret)
        .list_keys()
        .await
        .expect_err("bad secret");
    assert_eq!(message(&bad).0, 401);
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_tailnet_is_dash_or_its_name_and_nothing_else() {
    let emulator = start().await;
    for (tailnet, ok) in [("-", true), ("example.com", true), ("other.org", false)] {
        let (status, _) = raw(
            Method::GET,
            &format!("{}/api/v2/tailnet/{tailnet}/devices", emulator.url()),
            None,
        )
        .await;
        let wanted = if ok {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(status, wanted, "{tailnet}");
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn injected_faults_are_counted_and_retried_by_the_client() {
    let emulator = start().await;
    let admin = client(&emulator, admin());
    emulator.faults().set(vec![FaultRule {
        path_prefix: "/api/v2/tailnet".into(),
        error_rate: 1.0,
        error_statuses: vec![503],
        ..FaultRule::everywhere()
    }]);
    let err = admin.list_keys().await.expect_err("always 503");
    assert_eq!(message(&err), (503, "Service Unavailable".into()));
    assert_eq!(
        emulator.requests().count("GET", "/api/v2/tailnet/-/keys"),
        3
    );

    let url = format!("{}/_emulator/faults", emulator.url());
    let cleared = reqwest::Client::new()
        .post(&url)
        .json(&json!([]))
        .send()
        .await
        .expect("clear");
    assert_eq!(cleared.status(), StatusCode::OK);
    admin.list_keys().await.expect("no faults left");

    let counters: Value = reqwest::get(format!("{}/_emulator/requests", emulator.url()))
        .await
        .expect("requests")
        .json()
        .await
        .expect("json");
    assert!(
        counters
            .as_array()
            .is_some_and(|c| c.iter().any(|r| r["outcome"] == "503" && r["count"] == 3)),
        "{counters}"
    );
    let devices: Value = reqwest::get(format!("{}/_emulator/devices", emulator.url()))
        .await
        .expect("devices")
        .json()
        .await
        .expect("json");
    assert_eq!(devices, json!({"devices": []}));
    emulator.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_the_api_envelope() {
    let emulator = start().await;
    let (status, body) = raw(
        Method::GET,
        &format!("{}/api/v2/nope", emulator.url()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("\"message\""), "{body}");
    let (status, _) = raw(
        Method::PUT,
        &format!("{}/api/v2/tailnet/-/keys", emulator.url()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    emulator.shutdown().await;
}
