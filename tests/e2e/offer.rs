//! Planning against what Hetzner offers: a server type the fleet's own catalog allows but the
//! Hetzner emulator does not offer fails at plan time with the spec file, the field and the
//! list of offered types, and `apply` changes nothing (the server it would have resized keeps
//! running, never powered off).

use crate::common::{commit_all, tether_bin};
use std::path::Path;
use tether::sandbox::stack::{Stack, StackOptions};
use tether_emulators::hetzner::ServerStatus;

/// `cpx51` is allowed by the fleet but not offered by the emulator.
fn write_fleet(dir: &Path, server_type: &str) {
    std::fs::write(
        dir.join("fleet.yaml"),
        "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: offer-e2e}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  policy: {prune: true}\n  catalog: {serverTypes: [cpx21, cpx51], locations: [fsn1], images: [ubuntu-24.04]}\n",
    )
    .expect("write fleet.yaml");
    std::fs::create_dir_all(dir.join("agents")).expect("agents folder");
    std::fs::write(
        dir.join("agents/a1.yaml"),
        format!(
            "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: a1}}\nspec:\n  subscription: sub_a1\n  server: {{type: {server_type}}}\n  runtime: {{version: \"1.0.0\"}}\n"
        ),
    )
    .expect("write agent");
    commit_all(dir, "main", &format!("a1 on {server_type}"));
}

async fn plan(stack: &Stack, repo: &Path) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(tether_bin());
    cmd.args(["plan", "--git"])
        .arg(repo)
        .args(["--rev", "main"])
        .env("RUST_LOG", "warn");
    for (k, v) in stack.env() {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("run tether plan");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_type_hetzner_does_not_offer_fails_at_plan_time_and_nothing_is_powered_off() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let dir = tempfile::tempdir().expect("temp dir");
    write_fleet(dir.path(), "cpx21");
    let (code, _, err) = crate::common::apply(&stack, dir.path(), &[]).await;
    assert_eq!(code, 0, "the offered type applies: {err}");
    let before = stack.hetzner.servers();
    assert_eq!(before.len(), 1);
    assert_eq!(
        (before[0].server_type.as_str(), before[0].status),
        ("cpx21", ServerStatus::Running)
    );

    write_fleet(dir.path(), "cpx51");
    let (code, out) = plan(&stack, dir.path()).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "agents/a1.yaml: spec.server.type `cpx51` is not offered by Hetzner; offered: "
        ),
        "{out}"
    );
    assert!(out.contains("cpx21") && out.contains("cpx31"), "{out}");

    stack.hetzner.requests().reset();
    let (code, _, err) = crate::common::apply(&stack, dir.path(), &[]).await;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("`cpx51` is not offered"), "{err}");
    assert_eq!(
        stack
            .hetzner
            .requests()
            .count("POST", "/v1/servers/{id}/actions"),
        0,
        "no power off, no change_type"
    );
    let after = stack.hetzner.servers();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, before[0].id);
    assert_eq!(
        (after[0].server_type.as_str(), after[0].status),
        ("cpx21", ServerStatus::Running),
        "the server keeps its type and keeps running"
    );
    stack.shutdown().await;
}
