//! Multi-step operations end to end, against the emulators with real `tether` processes: a
//! downsize Hetzner cannot make in place (a smaller disk) is blocked under `protect` and a
//! replacement through the disruption budget otherwise, never leaving a server off; a
//! quarantine stopped after its devices were deauthorized is undone when the spec comes back;
//! a restore next to a server that holds the agent's name keeps (and restores) the quarantined
//! server, which gets the agent's name back once it is free.

use crate::common::{apply, commit_all, status_file};
use crate::quarantine::{device_of, server_of, tether_with};
use std::path::Path;
use std::time::Duration;
use tether::cloud::{Compute, NewServer};
use tether::sandbox::stack::{LatencyProfile, Stack, StackOptions};
use tether_emulators::emulator::FaultRule;
use tether_emulators::hetzner::ServerStatus;

/// One agent of the fleet: name, server type, `protect`.
type Spec<'a> = (&'a str, &'a str, bool);

/// Writes `fleet.yaml` with `policy` and one spec per agent, and commits the tree.
fn write_fleet(dir: &Path, policy: &str, agents: &[Spec<'_>], message: &str) -> String {
    std::fs::write(
        dir.join("fleet.yaml"),
        format!(
            "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: ops}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  policy: {{prune: true, {policy}}}\n  catalog: {{serverTypes: [cpx21, cpx31], locations: [fsn1], images: [ubuntu-24.04]}}\n"
        ),
    )
    .expect("write fleet.yaml");
    let folder = dir.join("agents");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).expect("agents folder");
    for (name, kind, protect) in agents {
        std::fs::write(
            folder.join(format!("{name}.yaml")),
            format!(
                "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {name}}}\nspec:\n  subscription: sub_{name}\n  server: {{type: {kind}}}\n  runtime: {{version: \"1.0.0\"}}\n  protect: {protect}\n"
            ),
        )
        .expect("write agent");
    }
    commit_all(dir, "main", message)
}

/// Every server the emulator holds that is off, by name.
fn off_servers(stack: &Stack) -> Vec<String> {
    stack
        .hetzner
        .servers()
        .into_iter()
        .filter(|s| s.status != ServerStatus::Running)
        .map(|s| format!("{} ({:?})", s.name, s.status))
        .collect()
}

/// `tether plan` for `dir`'s main branch: (exit code, stdout).
fn plan(stack: &Stack, dir: &Path) -> (i32, String) {
    let (code, out, err) = tether_with(
        stack,
        &[
            "plan",
            "--detailed-exitcode",
            "--git",
            &dir.display().to_string(),
            "--rev",
            "main",
        ],
    );
    (code, format!("{out}\n{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downsizing_to_a_smaller_disk_is_blocked_under_protect_and_replaced_otherwise_never_leaving_a_server_off()
 {
    let stack = Stack::start(StackOptions::with_latency(LatencyProfile::Realistic, 0.05))
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("temp dir");
    let dir = repo.path();
    let policy = "maxDeletionPercent: 100, maxDisruptionsPerRun: 1, quarantineGrace: \"0\"";
    let big = [
        ("vault", "cpx31", true),
        ("open1", "cpx31", false),
        ("open2", "cpx31", false),
    ];
    write_fleet(dir, policy, &big, "three agents on cpx31");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let vault = server_of(&stack, "vault").expect("vault's server");
    let first = server_of(&stack, "open1").expect("open1's server").id;
    let second = server_of(&stack, "open2").expect("open2's server").id;
    assert_eq!(off_servers(&stack), Vec::<String>::new());

    // The plan is downgraded: cpx21's 80 GB disk is smaller than the servers' 160 GB.
    let small = [
        ("vault", "cpx21", true),
        ("open1", "cpx21", false),
        ("open2", "cpx21", false),
    ];
    write_fleet(dir, policy, &small, "downgrade to cpx21");
    let (code, shown) = plan(&stack, dir);
    assert_eq!(code, 2, "changes pending: {shown}");
    assert!(
        shown.contains("agent vault is not resized from cpx31 to cpx21: the disk of cpx21 (80 GB) is smaller than the server's (160 GB)"),
        "{shown}"
    );
    assert!(shown.contains("remove `protect`"), "{shown}");
    assert!(shown.contains("REPLACE server open1"), "{shown}");
    assert!(
        shown.contains("replace of open2 waits for a later run: disruption budget"),
        "{shown}"
    );
    assert!(!shown.contains("resize server"), "{shown}");

    let mut passes = 0;
    loop {
        passes += 1;
        let (code, out, err) = apply(&stack, dir, &[]).await;
        assert_eq!(code, 0, "pass {passes}: {out}\n{err}");
        assert_eq!(
            off_servers(&stack),
            Vec::<String>::new(),
            "no server is left off after pass {passes}: {out}"
        );
        let done = ["open1", "open2"]
            .iter()
            .all(|a| server_of(&stack, a).is_some_and(|s| s.server_type == "cpx21"))
            && stack.hetzner.servers().len() == 3;
        if done {
            break;
        }
        assert!(passes < 6, "the replacements did not finish: {out}");
    }
    assert!(
        passes >= 2,
        "the disruption budget spreads the replacements over passes"
    );
    let kept = server_of(&stack, "vault").expect("vault keeps its server");
    assert_eq!(
        (kept.id, kept.server_type.as_str()),
        (vault.id, "cpx31"),
        "the protected server is neither resized nor replaced"
    );
    for (agent, old) in [("open1", first), ("open2", second)] {
        let new = server_of(&stack, agent).expect("replaced");
        assert_ne!(new.id, old, "{agent} runs on a new server");
        let device = device_of(&stack, agent).expect("device");
        assert!(
            device.connected_to_control && device.authorized,
            "{device:?}"
        );
    }
    let commands = stack.hetzner.action_commands();
    assert!(
        !commands.iter().any(|(c, _)| *c == "change_server_type"),
        "no type change Hetzner would refuse was tried: {commands:?}"
    );
    assert!(
        !commands
            .iter()
            .any(|(c, id)| *id == vault.id && (*c == "stop_server" || *c == "shutdown_server")),
        "the protected server was never powered off: {commands:?}"
    );
    let doc = status_file(dir, "vault.yaml");
    assert!(
        doc.contains("phase: Degraded"),
        "not Ready while its type differs from the spec: {doc}"
    );
    assert!(status_file(dir, "open1.yaml").contains("phase: Ready"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_stopped_after_deauthorizing_is_undone_by_a_restored_spec_and_ready_only_then()
{
    let stack = Stack::start(StackOptions::with_latency(LatencyProfile::Realistic, 0.05))
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("temp dir");
    let dir = repo.path();
    let policy = "maxDeletionPercent: 100, maxDisruptionPercent: 100, quarantineGrace: 1h";
    let both = [("keep", "cpx21", false), ("leaver", "cpx21", false)];
    write_fleet(dir, policy, &both, "two agents");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let original = server_of(&stack, "leaver").expect("leaver's server");
    let device = device_of(&stack, "leaver").expect("leaver's device");
    assert!(device.authorized && device.connected_to_control);

    // The spec is removed; the quarantine's rename fails once its devices are deauthorized.
    write_fleet(dir, policy, &[("keep", "cpx21", false)], "cancel leaver");
    stack.tailscale.faults().set(vec![FaultRule {
        method: Some("POST".to_owned()),
        path_prefix: "/api/v2/device/".to_owned(),
        latency_ms: 1500,
        ..FaultRule::everywhere()
    }]);
    let run = tokio::spawn({
        let cmd = crate::common::apply_command(&stack, dir, &[]).output();
        async move { cmd.await.expect("run tether apply") }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let step =
            server_of(&stack, "leaver").and_then(|s| s.labels.get("tether/operation").cloned());
        if step.as_deref() == Some("quarantine.deauthorizing") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the quarantine never reached its devices"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack.hetzner.faults().set(vec![FaultRule {
        method: Some("PUT".to_owned()),
        path_prefix: format!("/v1/servers/{}", original.id),
        error_rate: 1.0,
        error_statuses: vec![503],
        ..FaultRule::everywhere()
    }]);
    let out = run.await.expect("apply task");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(0),
        "the failed rename is reported: {text}"
    );
    stack.hetzner.faults().set(Vec::new());
    stack.tailscale.faults().set(Vec::new());
    let half = server_of(&stack, "leaver").expect("the server is kept");
    assert_eq!(half.name, "leaver", "the rename failed: {half:?}");
    assert_eq!(
        half.labels.get("tether/operation").map(String::as_str),
        Some("quarantine.deauthorizing"),
        "the step reached is recorded on the server"
    );
    assert!(!device_of(&stack, "leaver").expect("device").authorized);

    // The customer comes back before the next pass: the pass finishes the operation as a restore.
    write_fleet(dir, policy, &both, "leaver is back");
    let (code, shown) = plan(&stack, dir);
    assert_eq!(code, 2, "not \"No changes\": {shown}");
    assert!(
        shown.contains("stopped half way (at `deauthorizing`)"),
        "{shown}"
    );
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let back = server_of(&stack, "leaver").expect("restored");
    assert_eq!((back.id, back.name.as_str()), (original.id, "leaver"));
    assert_eq!(back.status, ServerStatus::Running);
    assert!(!back.labels.contains_key("tether/operation"), "{back:?}");
    let online = device_of(&stack, "leaver").expect("device");
    assert_eq!(online.id, device.id, "the same device");
    assert!(
        online.authorized && online.connected_to_control,
        "{online:?}"
    );
    let doc = status_file(dir, "leaver.yaml");
    assert!(doc.contains("phase: Ready"), "{doc}");
    assert_eq!(stack.hetzner.servers().len(), 2, "no server was created");
    let (code, shown) = plan(&stack, dir);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("No changes"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_next_to_a_name_collision_keeps_the_quarantined_server() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("temp dir");
    let dir = repo.path();
    let policy = "maxDeletionPercent: 100, maxDisruptionPercent: 100, quarantineGrace: 2s";
    let both = [("keep", "cpx21", false), ("leaver", "cpx21", false)];
    write_fleet(dir, policy, &both, "two agents");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let original = server_of(&stack, "leaver").expect("leaver's server");

    write_fleet(dir, policy, &[("keep", "cpx21", false)], "cancel leaver");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let held = server_of(&stack, "leaver").expect("quarantined");
    assert_eq!(held.name, format!("leaver-quarantined-{}", original.id));

    // Someone makes a server by hand under the freed name.
    let client = stack
        .hetzner_client(Duration::from_millis(20))
        .expect("hetzner client");
    let stranger = client
        .create_server(&NewServer {
            name: "leaver".to_owned(),
            server_type: "cpx21".to_owned(),
            image: "ubuntu-24.04".to_owned(),
            location: "fsn1".to_owned(),
            ssh_keys: Vec::new(),
            user_data: None,
            labels: Default::default(),
            start_after_create: true,
            project: None,
            public_net: Default::default(),
        })
        .await
        .expect("a hand-made server")
        .server;

    write_fleet(dir, policy, &both, "leaver is back");
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("restore from quarantine"), "{out}");
    assert!(
        out.contains(&format!("server {} holds the name leaver", stranger.id)),
        "the collision is reported: {out}"
    );
    // Past the grace period, and again: the restored server stays, and so does the stranger.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("delete server"), "{out}");
    let kept = server_of(&stack, "leaver").expect("the quarantined server is kept");
    assert_eq!(kept.id, original.id);
    assert_eq!(kept.status, ServerStatus::Running, "and restored");
    assert!(
        !kept.labels.contains_key("tether/quarantined-at"),
        "{kept:?}"
    );
    let other = stack
        .hetzner
        .servers()
        .into_iter()
        .find(|s| s.id == stranger.id.0)
        .expect("the hand-made server is untouched");
    assert_eq!(other.name, "leaver");
    let device = stack
        .tailscale
        .devices()
        .into_iter()
        .find(|d| d.hostname == "leaver")
        .expect("the agent's device");
    assert!(
        device.authorized && device.connected_to_control,
        "{device:?}"
    );
    let doc = status_file(dir, "leaver.yaml");
    assert!(doc.contains("phase: Ready"), "{doc}");
    let (_, shown) = plan(&stack, dir);
    assert!(
        shown.contains("agent leaver runs on server"),
        "the collision stays reported: {shown}"
    );

    // Its owner removes the hand-made server: the agent's server gets its name back.
    assert!(stack.hetzner.delete_server(stranger.id.0));
    let (code, out, err) = apply(&stack, dir, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let named = server_of(&stack, "leaver").expect("the agent's server");
    assert_eq!((named.id, named.name.as_str()), (original.id, "leaver"));
    assert_eq!(named.status, ServerStatus::Running);
    assert!(status_file(dir, "leaver.yaml").contains("phase: Ready"));
}
