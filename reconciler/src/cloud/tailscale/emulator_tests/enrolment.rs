//! The enroller with tether's real cloud-init: an emulated VM joins, a reused key does not,
//! a stopped VM goes offline and its device can be deleted.

use super::*;
use crate::cloud::tailscale::{DeviceQuery, Tailnet};
use tether_emulators::{BootedServer, MachineHooks};
use tether_schema::{Agent, Content, Fleet, SourceFile, load_fleet};

const FLEET: &str = "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: demo}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\", \"tag:agent-eu\", \"tag:agent-us\"]}\n  catalog: {serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}\n";
const AGENT: &str = "apiVersion: tether/v1\nkind: Agent\nmetadata:\n  name: acme-prod\n  labels: {customer: acme}\nspec:\n  subscription: sub_acme\n  tailscale: {tags: [\"tag:agent\", \"tag:agent-eu\"]}\n  runtime: {version: \"1.4.2\", env: {LOG_LEVEL: info}}\n";

pub(super) fn fleet() -> Fleet {
    let file = |path: &str, text: &str| SourceFile {
        path: path.to_owned(),
        content: Content::Bytes(text.as_bytes().to_vec()),
    };
    load_fleet(&[
        file("fleet.yaml", FLEET),
        file("agents/acme-prod.yaml", AGENT),
    ])
    .expect("fleet loads")
}

fn acme(fleet: &Fleet) -> &Agent {
    fleet.agents.values().next().expect("one agent")
}

/// Creates the agent's key the way tether does and renders its cloud-init.
pub(super) async fn user_data(emulator: &TailscaleEmulator, fleet: &Fleet) -> String {
    let agent = acme(fleet);
    let key = client(emulator, tether())
        .create_auth_key(&NewAuthKey::for_agent(&agent.name, agent.tags.clone()))
        .await
        .expect("create key");
    tether_schema::cloud_init::render(agent, &fleet.settings, key.secret.expose())
}

pub(super) fn boot(id: u64, user_data: &str) -> BootedServer {
    BootedServer {
        id,
        name: "acme-prod".into(),
        user_data: Some(user_data.to_owned()),
    }
}

#[tokio::test]
async fn a_booted_server_joins_with_the_agents_hostname_and_tags() {
    let emulator = start().await;
    let fleet = fleet();
    let user_data = user_data(&emulator, &fleet).await;
    emulator.enroller().booted(&boot(11, &user_data));

    let devices = emulator.devices();
    assert_eq!(devices.len(), 1, "{:?}", emulator.enrollment_failures());
    assert_eq!(devices[0].hostname, "acme-prod");
    assert_eq!(devices[0].tags, ["tag:agent", "tag:agent-eu"]);
    assert!(devices[0].connected_to_control && devices[0].authorized);
    assert!(emulator.enrollment_failures().is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_reused_key_fails_to_enrol_a_second_server() {
    let emulator = start().await;
    let fleet = fleet();
    let user_data = user_data(&emulator, &fleet).await;
    let enroller = emulator.enroller();
    enroller.booted(&boot(11, &user_data));
    enroller.booted(&boot(12, &user_data));

    assert_eq!(emulator.devices().len(), 1);
    let failures = emulator.enrollment_failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].server_id, 12);
    assert!(
        matches!(
            failures[0].reason,
            FailureReason::Rejected(EnrollError::AlreadyUsed(_))
        ),
        "{failures:?}"
    );
    let text = format!("{failures:?} {}", failures[0].reason);
    assert!(!text.contains("tskey-auth-"), "{text}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_stopped_server_goes_offline_stays_listed_and_can_be_deleted() {
    let emulator = start().await;
    let fleet = fleet();
    let user_data = user_data(&emulator, &fleet).await;
    let enroller = emulator.enroller();
    enroller.booted(&boot(11, &user_data));
    enroller.stopped(11);

    let tether = client(&emulator, tether());
    let query = DeviceQuery {
        tags: acme(&fleet).tags.clone(),
        ..DeviceQuery::default()
    };
    let listed = tether.list_devices(&query).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].online && listed[0].last_seen.is_some());

    enroller.booted(&boot(11, &user_data));
    let back = tether
        .get_device(&listed[0].id)
        .await
        .expect("get")
        .expect("found");
    assert!(back.online && back.last_seen.is_none());
    assert!(
        emulator.enrollment_failures().is_empty(),
        "a reboot does not enrol again"
    );

    enroller.stopped(11);
    assert!(tether.delete_device(&listed[0].id).await.expect("delete"));
    assert!(tether.list_devices(&query).await.expect("list").is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn servers_without_a_usable_cloud_init_are_recorded() {
    let emulator = start().await;
    let enroller = emulator.enroller();
    enroller.booted(&BootedServer {
        id: 1,
        name: "bare".into(),
        user_data: None,
    });
    enroller.booted(&boot(2, "#cloud-config\nruncmd: [[echo, hello]]\n"));
    let reasons: Vec<FailureReason> = emulator
        .enrollment_failures()
        .into_iter()
        .map(|f| f.reason)
        .collect();
    assert_eq!(
        reasons,
        [FailureReason::NoUserData, FailureReason::NoTailscaleUp]
    );
    emulator.shutdown().await;
}
