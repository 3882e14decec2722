//! The request/response contract: auth, envelopes, statuses, validation, lists and SSH keys.

use super::{Api, TOKEN};
use http::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn requests_without_a_valid_token_are_unauthorized_with_rate_limit_headers() {
    let api = Api::start().await;
    for token in [None, Some("wrong-token")] {
        let r = api.send_as(Method::GET, "/servers", None, token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.code(), "unauthorized");
        for header in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
            assert!(r.headers.contains_key(header), "{header} missing");
        }
        assert!(!r.body.to_string().contains("wrong-token"));
    }
    api.emu.shutdown().await;
}

#[tokio::test]
async fn every_response_carries_a_correlation_id_and_rate_limit_headers() {
    let api = Api::start().await;
    let ok = api.get("/servers").await;
    let missing = api.get("/servers/1").await;
    for r in [&ok, &missing] {
        let id = r.headers["x-correlation-id"].to_str().expect("ascii");
        assert_eq!(id.len(), 16);
        assert_eq!(r.headers["ratelimit-limit"], "3600");
    }
    assert_ne!(
        ok.headers["x-correlation-id"],
        missing.headers["x-correlation-id"]
    );
    api.emu.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_bad_json_get_envelopes() {
    let api = Api::start().await;
    let r = api.get("/volumes").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    let r = api.send(Method::PATCH, "/servers", json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let r = api
        .send_as(Method::POST, "/servers", Some("{oops"), Some(TOKEN))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "json_error")
    );
    let r = api.get("/servers/424242").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    api.emu.shutdown().await;
}

#[tokio::test]
async fn create_answers_201_with_the_server_its_actions_and_a_root_password_only_without_keys() {
    let api = Api::start().await;
    let r = api
        .send(
            Method::POST,
            "/servers",
            json!({"name": "acme-prod", "server_type": "cpx21", "image": "ubuntu-24.04",
                   "location": "fsn1", "ssh_keys": ["ops-2026"], "labels": {"env": "prod"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let server = &r.body["server"];
    assert_eq!(server["status"], "initializing");
    assert_eq!(server["labels"], json!({"env": "prod"}));
    assert_eq!(server["server_type"]["name"], "cpx21");
    assert_eq!(server["datacenter"]["name"], "fsn1-dc14");
    assert_eq!(server["location"]["network_zone"], "eu-central");
    assert_eq!(server["image"]["name"], "ubuntu-24.04");
    assert_eq!(server["primary_disk_size"], 80);
    assert!(server["public_net"]["ipv4"]["ip"].as_str().is_some());
    assert_eq!(r.body["action"]["command"], "create_server");
    assert_eq!(r.body["action"]["status"], "running");
    assert_eq!(r.body["action"]["resources"][0]["type"], "server");
    assert_eq!(r.body["next_actions"][0]["command"], "start_server");
    assert_eq!(r.body["root_password"], Value::Null);

    let r = api
        .send(
            Method::POST,
            "/servers",
            json!({"name": "no-keys", "server_type": 22, "image": "161547269", "location": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["server"]["server_type"]["name"], "cpx11");
    assert_eq!(r.body["root_password"].as_str().map(str::len), Some(20));
    api.emu.shutdown().await;
}

#[tokio::test]
async fn create_reports_every_invalid_field() {
    let api = Api::start().await;
    let r = api
        .send(
            Method::POST,
            "/servers",
            json!({"name": "bad_name", "server_type": "cpx999", "image": "ubuntu-24.04",
                   "ssh_keys": ["nobody"], "labels": {"-bad": "x"},
                   "user_data": "x".repeat(32 * 1024 + 1)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_input");
    let fields: Vec<&str> = r.body["error"]["details"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    for field in ["name", "server_type", "ssh_keys", "labels", "user_data"] {
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    }
    let r = api
        .send(
            Method::POST,
            "/servers",
            json!({"name": "us-small", "server_type": "cx22", "image": "debian-12", "location": "ash"}),
        )
        .await;
    assert_eq!(r.code(), "invalid_input", "{}", r.body);
    let r = api
        .send(
            Method::POST,
            "/servers",
            json!({"name": "x", "image": "nope", "server_type": "cpx11", "location": "mars"}),
        )
        .await;
    assert_eq!(
        r.body["error"]["details"]["fields"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    api.emu.shutdown().await;
}

#[tokio::test]
async fn duplicate_server_names_are_uniqueness_errors() {
    let api = Api::start().await;
    api.create("twin", json!({})).await;
    let r = api
        .send(
            Method::POST,
            "/servers",
            json!({"name": "twin", "server_type": "cpx11", "image": "debian-12"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "uniqueness_error");
    assert_eq!(r.body["error"]["message"], "server name is already used");
    assert_eq!(r.body["error"]["details"], json!({}));
    api.emu.shutdown().await;
}

#[tokio::test]
async fn lists_filter_by_name_selector_and_status_and_sort() {
    let api = Api::start().await;
    api.create("b-one", json!({"labels": {"env": "prod", "tier": "a"}}))
        .await;
    api.create("a-two", json!({"labels": {"env": "dev"}})).await;
    api.create(
        "c-three",
        json!({"labels": {"env": "prod"}, "start_after_create": false}),
    )
    .await;
    let names = |r: &super::Resp| -> Vec<String> {
        r.body["servers"]
            .as_array()
            .expect("servers")
            .iter()
            .filter_map(|s| s["name"].as_str().map(str::to_owned))
            .collect()
    };
    let cases = [
        ("?name=a-two", vec!["a-two"]),
        ("?label_selector=env%3Dprod", vec!["b-one", "c-three"]),
        ("?label_selector=env!%3Dprod", vec!["a-two"]),
        ("?label_selector=tier", vec!["b-one"]),
        (
            "?label_selector=!tier&sort=name:desc",
            vec!["c-three", "a-two"],
        ),
        ("?label_selector=env%20in%20(dev,qa)", vec!["a-two"]),
        (
            "?label_selector=env%20notin%20(dev),tier%3D%3Da",
            vec!["b-one"],
        ),
        ("?sort=name", vec!["a-two", "b-one", "c-three"]),
        ("?sort=id:desc", vec!["c-three", "a-two", "b-one"]),
    ];
    for (query, expected) in cases {
        let r = api.get(&format!("/servers{query}")).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        assert_eq!(names(&r), expected, "{query}");
    }
    let r = api.get("/servers?label_selector=env%20in%20(x").await;
    assert_eq!(r.code(), "invalid_input");
    let r = api.get("/servers?sort=size").await;
    assert_eq!(r.code(), "invalid_input");
    let r = api.get("/servers?status=sleeping").await;
    assert_eq!(r.code(), "invalid_input");
    api.emu.shutdown().await;
}

#[tokio::test]
async fn lists_paginate_with_meta_and_an_absolute_link_header() {
    let api = Api::start().await;
    for i in 1..=5 {
        api.create(&format!("page-{i}"), json!({})).await;
    }
    let r = api.get("/servers?per_page=2&page=2").await;
    let p = &r.body["meta"]["pagination"];
    assert_eq!(
        (
            p["page"].as_u64(),
            p["per_page"].as_u64(),
            p["previous_page"].as_u64()
        ),
        (Some(2), Some(2), Some(1))
    );
    assert_eq!(
        (
            p["next_page"].as_u64(),
            p["last_page"].as_u64(),
            p["total_entries"].as_u64()
        ),
        (Some(3), Some(3), Some(5))
    );
    let link = r.headers["link"].to_str().expect("ascii");
    let base = api.emu.url();
    assert!(
        link.contains(&format!("<{base}/servers?page=3&per_page=2>; rel=\"next\"")),
        "{link}"
    );
    assert!(link.contains("rel=\"prev\""), "{link}");
    let r = api.get("/servers?per_page=100").await;
    assert_eq!(r.body["meta"]["pagination"]["per_page"], 50);
    api.emu.shutdown().await;
}

#[tokio::test]
async fn update_renames_and_replaces_the_whole_label_set() {
    let api = Api::start().await;
    let server = api
        .create("old-name", json!({"labels": {"a": "1", "b": "2"}}))
        .await;
    api.create("taken", json!({})).await;
    let path = format!("/servers/{}", server["id"]);
    let r = api
        .send(Method::PUT, &path, json!({"labels": {"c": "3"}}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["server"]["labels"], json!({"c": "3"}));
    let r = api
        .send(Method::PUT, &path, json!({"name": "new-name"}))
        .await;
    assert_eq!(r.body["server"]["name"], "new-name");
    assert_eq!(r.body["server"]["labels"], json!({"c": "3"}));
    let r = api.send(Method::PUT, &path, json!({"name": "taken"})).await;
    assert_eq!(r.code(), "uniqueness_error");
    let r = api
        .send(Method::PUT, &path, json!({"labels": {"x": "-"}}))
        .await;
    assert_eq!(r.code(), "invalid_input");
    let r = api.send(Method::PUT, "/servers/9", json!({})).await;
    assert_eq!(r.code(), "not_found");
    api.emu.shutdown().await;
}

#[tokio::test]
async fn get_actions_without_id_is_invalid_input() {
    let api = Api::start().await;
    let r = api.get("/actions").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let r = api.get("/actions?id=abc").await;
    assert_eq!(r.code(), "invalid_input");
    api.emu.shutdown().await;
}

#[tokio::test]
async fn actions_by_id_list_only_known_ids_in_the_requested_order() {
    let api = Api::start().await;
    let r = api
        .send(
            Method::POST,
            "/servers",
            json!({"name": "acts", "server_type": "cpx11", "image": "debian-12"}),
        )
        .await;
    let (create, start) = (&r.body["action"]["id"], &r.body["next_actions"][0]["id"]);
    let r = api
        .get(&format!(
            "/actions?id={create}&id={start}&id=999&sort=id:desc"
        ))
        .await;
    let ids: Vec<&Value> = r.body["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert_eq!(ids, [start, create]);
    let r = api.get(&format!("/actions/{create}")).await;
    assert_eq!(r.body["action"]["command"], "create_server");
    assert_eq!(api.get("/actions/999").await.code(), "not_found");
    let server = &api.get("/servers?name=acts").await.body["servers"][0]["id"];
    let r = api
        .get(&format!("/servers/{server}/actions?sort=command"))
        .await;
    assert_eq!(r.body["actions"][0]["command"], "create_server");
    let r = api.get(&format!("/servers/{server}/actions/{start}")).await;
    assert_eq!(r.body["action"]["command"], "start_server");
    api.emu.shutdown().await;
}

#[tokio::test]
async fn ssh_keys_are_created_listed_renamed_and_deleted_with_unique_names_and_keys() {
    let api = Api::start().await;
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK7zJWYdWP1Epwu6tPM9r1CezzsCuMr/lQjaE4rZWyif dev";
    let r = api
        .send(
            Method::POST,
            "/ssh_keys",
            json!({"name": "dev", "public_key": key}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["ssh_key"]["id"].clone();
    assert_eq!(
        r.body["ssh_key"]["fingerprint"].as_str().map(str::len),
        Some(47)
    );
    let r = api
        .send(
            Method::POST,
            "/ssh_keys",
            json!({"name": "dev", "public_key": key}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "uniqueness_error")
    );
    assert_eq!(r.body["error"]["details"]["fields"][0]["name"], "name");
    let r = api
        .send(
            Method::POST,
            "/ssh_keys",
            json!({"name": "other", "public_key": key}),
        )
        .await;
    assert_eq!(
        r.body["error"]["details"]["fields"][0]["name"],
        "public_key"
    );
    let r = api
        .send(
            Method::POST,
            "/ssh_keys",
            json!({"name": "bad", "public_key": "nope"}),
        )
        .await;
    assert_eq!(r.code(), "invalid_input");
    let r = api.get("/ssh_keys?name=ops-2026").await;
    assert_eq!(
        r.body["ssh_keys"][0]["fingerprint"],
        "49:54:9a:06:eb:c7:81:34:ce:4c:a0:a7:dd:68:7d:a9"
    );
    let r = api
        .send(
            Method::PUT,
            &format!("/ssh_keys/{id}"),
            json!({"name": "dev2", "labels": {"k": "v"}}),
        )
        .await;
    assert_eq!(r.body["ssh_key"]["name"], "dev2");
    let r = api
        .send_as(
            Method::DELETE,
            &format!("/ssh_keys/{id}"),
            None,
            Some(TOKEN),
        )
        .await;
    assert_eq!((r.status, &r.body), (StatusCode::NO_CONTENT, &Value::Null));
    assert_eq!(
        api.get(&format!("/ssh_keys/{id}")).await.code(),
        "not_found"
    );
    api.emu.shutdown().await;
}
