//! `tether status` after a real apply against the emulators: every agent is listed Ready with
//! the server the emulator holds, `--format json` parses, filters narrow, and an unknown phase
//! is a usage error.

use crate::common::{commit_all, example_fleet, tether};
use tether::sandbox::stack::{Stack, StackOptions};

#[tokio::test(flavor = "multi_thread")]
async fn status_lists_every_applied_agent_ready_with_its_server_and_filters_narrow_it() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    commit_all(fleet.path(), "main", "the example fleet");
    let (code, _, err) = crate::common::apply(&stack, fleet.path(), &[]).await;
    assert_eq!(code, 0, "{err}");
    let servers = stack.hetzner.servers();
    stack.shutdown().await;
    assert_eq!(servers.len(), 6, "the example fleet has six agents");
    let repo = fleet.path().to_str().expect("utf-8 path");

    let text = tether(fleet.path(), &["status", "--git", repo, "--color", "never"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("agents:       6 (6 Ready)"),
        "{}",
        text.stdout
    );
    for s in &servers {
        let row = text
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{} ", s.name)))
            .unwrap_or_else(|| panic!("no row for {}: {}", s.name, text.stdout));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[3], "Ready", "{row}");
        assert_eq!(cells[4], s.id.to_string(), "{row}");
        assert_eq!(cells[6], s.location, "{row}");
    }

    let json = tether(fleet.path(), &["status", "--git", repo, "--format", "json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    let rows = doc["agents"].as_array().expect("agents");
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter()
            .all(|r| r["phase"] == "Ready" && r["serverId"].is_u64())
    );

    let acme = tether(
        fleet.path(),
        &[
            "status",
            "--git",
            repo,
            "--customer",
            "cus_acme",
            "--format",
            "json",
        ],
    );
    let doc: serde_json::Value = serde_json::from_str(&acme.stdout).expect("json");
    let names: Vec<&str> = doc["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|r| r["agent"].as_str())
        .collect();
    assert_eq!(names, ["acme-prod", "acme-research", "acme-staging"]);

    let failed = tether(
        fleet.path(),
        &["status", "--git", repo, "--phase", "failed"],
    );
    assert_eq!(failed.code, 0, "{}", failed.stderr);
    assert!(
        failed.stdout.contains("no agents to show"),
        "{}",
        failed.stdout
    );

    let wrong = tether(
        fleet.path(),
        &["status", "--git", repo, "--phase", "running"],
    );
    assert_eq!(wrong.code, 64, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("`running` is not a phase"),
        "{}",
        wrong.stderr
    );
}
