//! Rebuild (a wiped disk booted with new user_data, same server), protection, and resets that
//! power-cycle the machine.

use super::{Api, Recorder};
use http::{Method, StatusCode};
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn a_rebuild_wipes_the_disk_and_boots_the_same_server_with_its_new_user_data() {
    let api = Api::start().await;
    let hooks = Arc::new(Recorder::default());
    api.emu.set_hooks(hooks.clone());
    let server = api
        .create("phoenix", json!({"user_data": "#cloud-config\nold: 1\n"}))
        .await;
    let id = &server["id"];
    api.wait_status(id, "running").await;
    hooks.wait_for(1).await;
    let r = api
        .send(
            Method::POST,
            &format!("/servers/{id}/actions/rebuild"),
            json!({"image": "ubuntu-24.04", "user_data": "#cloud-config\nnew: 2\n"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["action"]["command"], "rebuild_server");
    assert!(r.body.get("root_password").is_some_and(|p| p.is_null()));
    assert_eq!(
        api.get(&format!("/servers/{id}")).await.body["server"]["status"],
        "rebuilding"
    );
    let done = api.wait_action(&r.body["action"]["id"]).await;
    assert_eq!(done["status"], "success");
    api.wait_status(id, "running").await;
    let events = hooks.wait_for(4).await;
    assert_eq!(
        events[1..],
        [
            format!("stopped {id}"),
            format!("rebuilt {id}"),
            format!("booted {id} phoenix #cloud-config\nnew: 2\n"),
        ]
    );
    let summary = api.emu.servers();
    assert_eq!(summary.len(), 1, "the same server, not a new one");
    assert_eq!(
        summary[0].user_data.as_ref().map(|u| u.expose().to_owned()),
        Some("#cloud-config\nnew: 2\n".to_owned())
    );
    api.emu.shutdown().await;
}

#[tokio::test]
async fn protection_blocks_rebuild_and_delete_until_it_is_changed() {
    let api = Api::start().await;
    let server = api.create("guarded", json!({})).await;
    let id = &server["id"];
    api.wait_status(id, "running").await;
    let r = api
        .send(
            Method::POST,
            &format!("/servers/{id}/actions/change_protection"),
            json!({"delete": true, "rebuild": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["action"]["command"], "change_protection");
    assert_eq!(r.body["action"]["status"], "success");
    let shown = api.get(&format!("/servers/{id}")).await.body["server"]["protection"].clone();
    assert_eq!(shown, json!({"delete": true, "rebuild": true}));
    let r = api
        .send(
            Method::POST,
            &format!("/servers/{id}/actions/rebuild"),
            json!({"image": "ubuntu-24.04"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::LOCKED, "protected"));
    let r = api
        .send_as(
            Method::DELETE,
            &format!("/servers/{id}"),
            None,
            Some(super::TOKEN),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::LOCKED, "protected"));
    let r = api
        .send(
            Method::POST,
            &format!("/servers/{id}/actions/change_protection"),
            json!({"delete": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = api
        .send_as(
            Method::DELETE,
            &format!("/servers/{id}"),
            None,
            Some(super::TOKEN),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = api
        .send(
            Method::POST,
            &format!("/servers/{id}/actions/rebuild"),
            json!({"image": "no-such-image"}),
        )
        .await;
    assert_ne!(r.status, StatusCode::CREATED);
    api.emu.shutdown().await;
}

#[tokio::test]
async fn a_reset_power_cycles_the_machine() {
    let api = Api::start().await;
    let hooks = Arc::new(Recorder::default());
    api.emu.set_hooks(hooks.clone());
    let server = api.create("cycled", json!({})).await;
    let id = &server["id"];
    api.wait_status(id, "running").await;
    hooks.wait_for(1).await;
    let r = api
        .send(
            Method::POST,
            &format!("/servers/{id}/actions/reset"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let events = hooks.wait_for(3).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e.split(' ').next()).collect();
    assert_eq!(kinds, ["booted", "stopped", "booted"]);
    api.emu.shutdown().await;
}
