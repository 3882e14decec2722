//! Servers move through their states over time; locks, hooks and out-of-band deletes.

use super::super::Config;
use super::{Api, Recorder, config};
use http::{Method, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn created_servers_reach_running_and_boot_with_their_user_data() {
    let api = Api::start().await;
    let hooks = Arc::new(Recorder::default());
    api.emu.set_hooks(hooks.clone());
    let server = api
        .create("booter", json!({"user_data": "#cloud-config\n"}))
        .await;
    api.wait_status(&server["id"], "running").await;
    let events = hooks.wait_for(1).await;
    assert_eq!(
        events,
        [format!("booted {} booter #cloud-config\n", server["id"])]
    );
    let r = api
        .get(&format!("/servers/{}/actions?status=success", server["id"]))
        .await;
    let commands: Vec<&str> = r.body["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["command"].as_str())
        .collect();
    assert_eq!(commands, ["create_server", "start_server"]);
    assert_eq!(r.body["actions"][0]["progress"], 100);
    assert!(r.body["actions"][0]["finished"].as_str().is_some());
    api.emu.shutdown().await;
}

#[tokio::test]
async fn without_start_after_create_the_server_ends_off_and_never_boots() {
    let api = Api::start().await;
    let hooks = Arc::new(Recorder::default());
    api.emu.set_hooks(hooks.clone());
    let server = api
        .create("quiet", json!({"start_after_create": false}))
        .await;
    // A server created after it that does boot: a boot of `quiet` would come before its own.
    let loud = api.create("loud", json!({})).await;
    api.wait_status(&server["id"], "off").await;
    let events = hooks.wait_for(1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].starts_with(&format!("booted {} loud", loud["id"])),
        "only the started server boots: {events:?}"
    );
    api.emu.shutdown().await;
}

#[tokio::test]
async fn power_actions_move_the_status_and_fire_stopped_then_booted() {
    let api = Api::start().await;
    let hooks = Arc::new(Recorder::default());
    api.emu.set_hooks(hooks.clone());
    let server = api.create("cycler", json!({})).await;
    let id = &server["id"];
    api.wait_status(id, "running").await;
    hooks.wait_for(1).await;
    for (action, status) in [
        ("poweroff", "off"),
        ("poweron", "running"),
        ("shutdown", "off"),
        ("poweron", "running"),
    ] {
        let r = api
            .send(
                Method::POST,
                &format!("/servers/{id}/actions/{action}"),
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{action}: {}", r.body);
        api.wait_action(&r.body["action"]["id"]).await;
        api.wait_status(id, status).await;
    }
    let events = hooks.wait_for(5).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e.split(' ').next()).collect();
    assert_eq!(kinds, ["booted", "stopped", "booted", "stopped", "booted"]);
    for action in ["reboot", "reset"] {
        let r = api
            .send(
                Method::POST,
                &format!("/servers/{id}/actions/{action}"),
                json!({}),
            )
            .await;
        let done = api.wait_action(&r.body["action"]["id"]).await;
        assert_eq!(done["command"], format!("{action}_server"));
    }
    api.wait_status(id, "running").await;
    let r = api
        .send(
            Method::POST,
            &format!("/servers/{id}/actions/attach_iso"),
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "not_found");
    api.emu.shutdown().await;
}

#[tokio::test]
async fn a_server_with_a_running_action_is_locked() {
    let mut slow = config();
    slow.latencies.create = Duration::from_secs(1);
    slow.latencies.shutdown = Duration::from_secs(2);
    let api = Api::start_with(slow).await;
    let server = api.create("busy", json!({})).await;
    let id = &server["id"];
    let r = api
        .send(
            Method::POST,
            &format!("/servers/{id}/actions/poweroff"),
            json!({}),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::LOCKED, "locked"));
    api.wait_status(id, "running").await;
    let r = api
        .send(
            Method::POST,
            &format!("/servers/{id}/actions/shutdown"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        api.get(&format!("/servers/{id}")).await.body["server"]["status"],
        "stopping"
    );
    let r = api
        .send_as(
            Method::DELETE,
            &format!("/servers/{id}"),
            None,
            Some(super::TOKEN),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::LOCKED, "locked"));
    api.emu.shutdown().await;
}

#[tokio::test]
async fn change_type_needs_a_stopped_server_and_a_compatible_type() {
    let api = Api::start().await;
    let server = api.create("grower", json!({})).await;
    let id = &server["id"];
    let path = format!("/servers/{id}/actions/change_type");
    api.wait_status(id, "running").await;
    let r = api
        .send(
            Method::POST,
            &path,
            json!({"server_type": "cpx31", "upgrade_disk": true}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "server_not_stopped")
    );
    let r = api
        .send(
            Method::POST,
            &format!("/servers/{id}/actions/poweroff"),
            json!({}),
        )
        .await;
    api.wait_action(&r.body["action"]["id"]).await;
    let r = api
        .send(Method::POST, &path, json!({"server_type": "cpx31"}))
        .await;
    assert_eq!(r.code(), "invalid_input");
    for wanted in ["cpx999", "cpx11", "cax11"] {
        let r = api
            .send(
                Method::POST,
                &path,
                json!({"server_type": wanted, "upgrade_disk": false}),
            )
            .await;
        assert_eq!(r.code(), "invalid_server_type", "{wanted}");
    }
    let r = api
        .send(
            Method::POST,
            &path,
            json!({"server_type": "cpx31", "upgrade_disk": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["action"]["command"], "change_server_type");
    api.wait_action(&r.body["action"]["id"]).await;
    let s = &api.get(&format!("/servers/{id}")).await.body["server"];
    assert_eq!(
        (
            s["server_type"]["name"].as_str(),
            s["primary_disk_size"].as_u64()
        ),
        (Some("cpx31"), Some(160))
    );
    assert_eq!(s["status"], "off");
    api.emu.shutdown().await;
}

#[tokio::test]
async fn delete_answers_200_with_an_action_then_the_server_is_gone() {
    let api = Api::start().await;
    let hooks = Arc::new(Recorder::default());
    api.emu.set_hooks(hooks.clone());
    let server = api.create("doomed", json!({})).await;
    let id = &server["id"];
    api.wait_status(id, "running").await;
    hooks.wait_for(1).await;
    let r = api
        .send_as(
            Method::DELETE,
            &format!("/servers/{id}"),
            None,
            Some(super::TOKEN),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["action"]["command"], "delete_server");
    api.wait_status(id, "gone").await;
    assert_eq!(hooks.wait_for(2).await[1], format!("stopped {id}"));
    let done = api.wait_action(&r.body["action"]["id"]).await;
    assert_eq!(done["status"], "success");
    api.emu.shutdown().await;
}

#[tokio::test]
async fn deleting_by_hand_removes_the_server_fails_its_actions_and_fires_stopped() {
    let api = Api::start_with(Config {
        latencies: super::super::Latencies::uniform(Duration::from_secs(30)),
        ..config()
    })
    .await;
    let hooks = Arc::new(Recorder::default());
    api.emu.set_hooks(hooks.clone());
    let r = api
        .send(
            Method::POST,
            "/servers",
            json!({"name": "console", "server_type": "cpx11", "image": "debian-12"}),
        )
        .await;
    let id = r.body["server"]["id"].as_u64().expect("id");
    assert_eq!(api.emu.servers()[0].name, "console");
    assert!(api.emu.delete_server(id));
    assert!(!api.emu.delete_server(id));
    assert!(api.emu.servers().is_empty());
    let action = api
        .get(&format!("/actions/{}", r.body["action"]["id"]))
        .await;
    assert_eq!(action.body["action"]["status"], "error");
    assert_eq!(action.body["action"]["error"]["code"], "action_failed");
    assert!(hooks.events().is_empty(), "never booted, so never stopped");
    api.emu.shutdown().await;
}

#[tokio::test]
async fn the_control_routes_list_and_delete_servers_and_count_requests() {
    let api = Api::start().await;
    let hooks = Arc::new(Recorder::default());
    api.emu.set_hooks(hooks.clone());
    let server = api.create("remote", json!({})).await;
    api.wait_status(&server["id"], "running").await;
    hooks.wait_for(1).await;
    let r = api
        .send_as(Method::GET, "/_emulator/servers", None, None)
        .await;
    assert_eq!(r.body["servers"][0]["name"], "remote");
    let path = format!("/_emulator/servers/{}", server["id"]);
    let r = api.send_as(Method::DELETE, &path, None, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        hooks.wait_for(2).await[1],
        format!("stopped {}", server["id"])
    );
    api.wait_status(&server["id"], "gone").await;
    let r = api
        .send_as(Method::GET, "/_emulator/requests", None, None)
        .await;
    assert!(r.body["total"].as_u64().unwrap_or(0) >= 3);
    assert!(
        r.body["requests"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["route"] == "/v1/servers/{id}"))
    );
    api.emu.shutdown().await;
}
