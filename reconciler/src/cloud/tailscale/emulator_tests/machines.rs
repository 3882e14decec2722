//! The machine knobs over `/_emulator/machines…`: a cloud-init that fails for a number of first
//! boots (a rebuild with a fresh key then enrols the same server), and nodes held offline until
//! a power cycle or for good.

use super::enrolment::{boot, fleet, user_data};
use super::*;
use serde_json::json;
use tether_emulators::MachineHooks;

async fn post(emulator: &TailscaleEmulator, path: &str, body: serde_json::Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/_emulator/machines/{path}", emulator.url()))
        .json(&body)
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_failing_cloud_init_never_enrols_until_a_rebuild_brings_a_fresh_key() {
    let emulator = start().await;
    let fleet = fleet();
    let status = post(
        &emulator,
        "cloud-init",
        json!({"server": "acme-prod", "until": {"times": 1}}),
    )
    .await;
    assert_eq!(status, 204);
    let enroller = emulator.enroller();
    enroller.booted(&boot(21, &user_data(&emulator, &fleet).await));
    assert!(emulator.devices().is_empty());
    assert_eq!(
        emulator.enrollment_failures()[0].reason,
        FailureReason::Injected
    );
    enroller.booted(&boot(21, &user_data(&emulator, &fleet).await));
    assert!(emulator.devices().is_empty(), "a reboot runs no cloud-init");
    enroller.rebuilt(21);
    enroller.booted(&boot(21, &user_data(&emulator, &fleet).await));
    let devices = emulator.devices();
    assert_eq!(devices.len(), 1, "{:?}", emulator.enrollment_failures());
    assert!(devices[0].connected_to_control);
    let knobs: serde_json::Value = reqwest::get(format!("{}/_emulator/machines", emulator.url()))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(knobs["cloudInitFailures"]["acme-prod"], json!({"times": 0}));
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_node_held_offline_comes_back_after_a_power_cycle_unless_held_forever() {
    let emulator = start().await;
    let fleet = fleet();
    let enroller = emulator.enroller();
    enroller.booted(&boot(31, &user_data(&emulator, &fleet).await));
    assert!(emulator.devices()[0].connected_to_control);
    let status = post(
        &emulator,
        "offline",
        json!({"serverId": 31, "until": "power-cycle"}),
    )
    .await;
    assert_eq!(status, 200);
    let off = &emulator.devices()[0];
    assert!(
        !off.connected_to_control && off.last_seen.is_some(),
        "{off:?}"
    );
    enroller.stopped(31);
    enroller.booted(&boot(31, "unused: a reboot runs no cloud-init"));
    assert!(
        emulator.devices()[0].connected_to_control,
        "the power cycle ended it"
    );

    let status = post(
        &emulator,
        "offline",
        json!({"serverId": 31, "until": "forever"}),
    )
    .await;
    assert_eq!(status, 200);
    let seen = emulator.devices()[0].last_seen.clone();
    enroller.stopped(31);
    enroller.booted(&boot(31, "unused"));
    let held = &emulator.devices()[0];
    assert!(!held.connected_to_control);
    assert_eq!(held.last_seen, seen, "lastSeen stays frozen");
    assert_eq!(
        post(
            &emulator,
            "offline",
            json!({"serverId": 31, "until": {"times": 2}})
        )
        .await,
        400
    );
    emulator.shutdown().await;
}
