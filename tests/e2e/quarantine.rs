//! Quarantine before delete, end to end: a removed spec powers its server off and deauthorizes
//! its device instead of deleting it; the same spec coming back restores the same server (same
//! id, same creation time: the same disk) with its device online; after the grace period the
//! server is deleted and the audit log shows both steps. A mass removal quarantines every
//! server and a revert restores them all without creating one.

use crate::common::{apply, commit_all, status_file, tether_bin};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tether::cloud::Compute;
use tether::sandbox::stack::{Stack, StackOptions};
use tether_emulators::hetzner::ServerSummary;
use tether_emulators::tailscale::wire::Device;

/// Writes `fleet.yaml` with `policy` and one spec per agent, and commits the tree.
fn write_fleet(dir: &Path, policy: &str, agents: &[&str], message: &str) -> String {
    std::fs::write(
        dir.join("fleet.yaml"),
        format!(
            "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: quarantine}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  policy: {{prune: true, {policy}}}\n  catalog: {{serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}}\n"
        ),
    )
    .expect("write fleet.yaml");
    let folder = dir.join("agents");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).expect("agents folder");
    for a in agents {
        std::fs::write(
            folder.join(format!("{a}.yaml")),
            format!(
                "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {a}}}\nspec:\n  subscription: sub_{a}\n  runtime: {{version: \"1.0.0\"}}\n"
            ),
        )
        .expect("write agent");
    }
    commit_all(dir, "main", message)
}

pub(crate) fn server_of(stack: &Stack, agent: &str) -> Option<ServerSummary> {
    stack
        .hetzner
        .servers()
        .into_iter()
        .find(|s| s.labels.get("tether/agent").is_some_and(|a| a == agent))
}

pub(crate) fn device_of(stack: &Stack, agent: &str) -> Option<Device> {
    stack
        .tailscale
        .devices()
        .into_iter()
        .find(|d| d.hostname == agent)
}

/// The server's creation time, as Hetzner reports it.
async fn created(stack: &Stack, id: u64) -> String {
    let client = stack
        .hetzner_client(Duration::from_millis(20))
        .expect("hetzner client");
    client
        .get_server(tether::cloud::ServerId(id))
        .await
        .expect("get server")
        .expect("server exists")
        .created
}

/// `tether ARGS` against the emulators of `stack`.
pub(crate) fn tether_with(stack: &Stack, args: &[&str]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(tether_bin());
    cmd.args(args).env("RUST_LOG", "warn");
    for (k, v) in stack.env() {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run tether");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_spec_is_quarantined_restored_with_its_disk_and_deleted_after_its_grace_period() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("temp dir");
    let dir = repo.path();
    let policy = "maxDeletionPercent: 100, maxDisruptionPercent: 100, quarantineGrace: 2s";
    write_fleet(dir, policy, &["keep", "leaver"], "two agents");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let original = server_of(&stack, "leaver").expect("leaver's server");
    let born = created(&stack, original.id).await;
    let device = device_of(&stack, "leaver").expect("leaver's device");
    assert!(device.connected_to_control && device.authorized);

    // The subscription is cancelled: the server is quarantined, not deleted.
    let removal = write_fleet(dir, policy, &["keep"], "cancel leaver");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("QUARANTINE server leaver"), "{out}");
    assert!(out.contains("0 to delete, 1 to quarantine"), "{out}");
    assert!(
        out.contains("Quarantined: 1 server(s), €"),
        "the cost line shows what quarantine still bills: {out}"
    );
    let held = server_of(&stack, "leaver").expect("the server is kept");
    assert_eq!(held.id, original.id);
    assert_eq!(held.name, format!("leaver-quarantined-{}", held.id));
    assert_eq!(format!("{:?}", held.status), "Off");
    assert_eq!(
        held.labels
            .get("tether/quarantine-commit")
            .map(String::as_str),
        Some(&removal[..12])
    );
    assert!(held.labels.contains_key("tether/quarantined-at"));
    assert_eq!(
        held.labels.get("tether/fleet").map(String::as_str),
        Some("quarantine")
    );
    let off = device_of(&stack, "leaver").expect("the device is kept, deauthorized");
    assert_eq!(off.node_id, device.node_id);
    assert!(!off.authorized && !off.connected_to_control, "{off:?}");
    let doc = status_file(dir, "leaver.yaml");
    assert!(doc.contains("phase: Quarantined"), "{doc}");
    assert!(doc.contains("deleteAfter:"), "{doc}");
    let (code, plan, err) = tether_with(
        &stack,
        &["plan", "--git", &dir.display().to_string(), "--rev", "main"],
    );
    assert_eq!(code, 0, "{plan}\n{err}");
    assert!(plan.contains("agent leaver is QUARANTINED"), "{plan}");
    assert!(plan.contains("Quarantined: 1 server(s)"), "{plan}");

    // The customer comes back within the grace period: the same server, its disk, its device.
    write_fleet(dir, policy, &["keep", "leaver"], "leaver is back");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("restore from quarantine"), "{out}");
    assert!(out.contains("Plan: 0 to create"), "{out}");
    let back = server_of(&stack, "leaver").expect("restored");
    assert_eq!((back.id, back.name.as_str()), (original.id, "leaver"));
    assert_eq!(format!("{:?}", back.status), "Running");
    assert_eq!(
        created(&stack, back.id).await,
        born,
        "the same server, disk and all"
    );
    assert!(!back.labels.contains_key("tether/quarantined-at"));
    let online = device_of(&stack, "leaver").expect("device");
    assert_eq!(online.id, device.id);
    assert!(
        online.connected_to_control && online.authorized,
        "{online:?}"
    );
    assert_eq!(stack.hetzner.servers().len(), 2, "no server was created");
    assert!(status_file(dir, "leaver.yaml").contains("phase: Ready"));

    // Cancelled for good: quarantined, and deleted once the grace period has passed.
    write_fleet(dir, policy, &["keep"], "cancel leaver again");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(server_of(&stack, "leaver").is_some());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("quarantine grace period ended"), "{out}");
    assert!(
        server_of(&stack, "leaver").is_none(),
        "deleted after the grace period"
    );
    assert!(
        device_of(&stack, "leaver").is_none(),
        "its device went with it"
    );
    assert!(server_of(&stack, "keep").is_some());

    let (code, log, err) = tether_with(
        &stack,
        &[
            "audit",
            "log",
            "--repo",
            &dir.display().to_string(),
            "--agent",
            "leaver",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(log.contains("cancel leaver again"), "{log}");
    assert!(log.contains("quarantine"), "{log}");
    assert!(log.contains("quarantine grace period ended"), "{log}");
    assert!(log.contains("restore"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_removal_quarantines_every_server_and_a_revert_restores_them_all_creating_none() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("temp dir");
    let dir = repo.path();
    let policy = "maxDeletionsPerRun: 100, maxDeletionPercent: 100, maxDisruptionsPerRun: 100, maxDisruptionPercent: 100";
    let agents = ["a1", "a2", "a3", "a4", "a5", "a6"];
    write_fleet(dir, policy, &agents, "six agents");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let ids: BTreeMap<String, u64> = stack
        .hetzner
        .servers()
        .into_iter()
        .map(|s| (s.name, s.id))
        .collect();
    assert_eq!(ids.len(), 6);

    // A billing export that dropped every line, confirmed past the breaker: nothing is deleted.
    write_fleet(dir, policy, &[], "billing export lost every line");
    let (code, out, err) = apply(&stack, dir, &["--allow-shrink"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("0 to delete, 6 to quarantine"), "{out}");
    let servers = stack.hetzner.servers();
    assert_eq!(servers.len(), 6, "every server is kept");
    for s in &servers {
        assert_eq!(format!("{:?}", s.status), "Off", "{}", s.name);
        assert!(s.name.contains("-quarantined-"), "{}", s.name);
    }
    assert!(stack.tailscale.devices().iter().all(|d| !d.authorized));

    // The revert brings every agent back on its own server.
    write_fleet(dir, policy, &agents, "revert the export");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Plan: 0 to create"), "{out}");
    assert!(out.contains("6 to restore from quarantine"), "{out}");
    let after: BTreeMap<String, u64> = stack
        .hetzner
        .servers()
        .into_iter()
        .map(|s| (s.name, s.id))
        .collect();
    assert_eq!(
        after, ids,
        "the same servers under their own names; none created"
    );
    let devices = stack.tailscale.devices();
    assert_eq!(devices.len(), 6);
    assert!(
        devices
            .iter()
            .all(|d| d.connected_to_control && d.authorized),
        "{devices:?}"
    );
}

/// The same round trip with Hetzner's and Tailscale's real timings at 1/20 of their length
/// (create 1.25 s, shutdown 0.5 s, boot and enrolment 1.5 s): quarantine waits for the
/// shutdown, restore for the boot and the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_and_restore_hold_under_realistic_latency() {
    use tether::sandbox::stack::LatencyProfile;
    let stack = Stack::start(StackOptions::with_latency(LatencyProfile::Realistic, 0.05))
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("temp dir");
    let dir = repo.path();
    let policy = "maxDeletionPercent: 100, maxDisruptionPercent: 100";
    write_fleet(dir, policy, &["keep", "slow"], "two agents");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let original = server_of(&stack, "slow").expect("slow's server");
    let device = device_of(&stack, "slow").expect("slow's device");
    assert!(device.connected_to_control);

    write_fleet(dir, policy, &["keep"], "cancel slow");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let held = server_of(&stack, "slow").expect("kept");
    assert_eq!(
        (held.id, format!("{:?}", held.status)),
        (original.id, "Off".to_owned())
    );
    assert!(!device_of(&stack, "slow").expect("device").authorized);

    write_fleet(dir, policy, &["keep", "slow"], "slow is back");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let back = server_of(&stack, "slow").expect("restored");
    assert_eq!(
        (back.id, format!("{:?}", back.status)),
        (original.id, "Running".to_owned())
    );
    let online = device_of(&stack, "slow").expect("device");
    assert_eq!(online.id, device.id);
    assert!(
        online.connected_to_control && online.authorized,
        "{online:?}"
    );
    assert!(status_file(dir, "slow.yaml").contains("phase: Ready"));
}
