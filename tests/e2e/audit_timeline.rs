//! `tether audit log --agent`: one agent's timeline from git alone, its spec changes and the
//! phases the status branch recorded, in time order, after real applies against the emulators.

use crate::common::{commit_all, example_fleet, tether, without_quarantine};
use tether::sandbox::stack::{Stack, StackOptions};

const AGENT: &str = "globex-ops";

#[tokio::test(flavor = "multi_thread")]
async fn audit_log_shows_an_agents_spec_changes_and_phases_in_time_order() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    without_quarantine(fleet.path());
    commit_all(fleet.path(), "main", "the example fleet");
    let (code, _, err) = crate::common::apply(&stack, fleet.path(), &[]).await;
    assert_eq!(code, 0, "{err}");
    let server = stack
        .hetzner
        .servers()
        .into_iter()
        .find(|s| s.name == AGENT)
        .expect("its server");
    // Git times have whole seconds: a second apart, the status commit and the next spec commit
    // are ordered as they were made.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    std::fs::remove_file(fleet.path().join(format!("agents/globex/{AGENT}.yaml")))
        .expect("remove the spec");
    commit_all(fleet.path(), "main", "billing: cancel globex-ops");
    let (code, _, err) = crate::common::apply(&stack, fleet.path(), &["--allow-shrink"]).await;
    assert_eq!(code, 0, "{err}");
    stack.shutdown().await;

    let repo = fleet.path().to_str().expect("utf-8 path");
    let text = tether(
        fleet.path(),
        &[
            "audit", "log", "--repo", repo, "--agent", AGENT, "--color", "never",
        ],
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    let order: Vec<usize> = [
        format!("added    agents/globex/{AGENT}.yaml by Billing Bot"),
        format!("→ create         {AGENT}"),
        format!("phase Ready (server {})", server.id),
        format!("removed  agents/globex/{AGENT}.yaml by Billing Bot"),
        format!("→ delete         {AGENT}"),
        "phase removed".to_owned(),
    ]
    .iter()
    .map(|line| {
        text.stdout
            .find(line.as_str())
            .unwrap_or_else(|| panic!("`{line}` missing from\n{}", text.stdout))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "out of order: {order:?}\n{}",
        text.stdout
    );

    let json = tether(
        fleet.path(),
        &[
            "audit", "log", "--repo", repo, "--agent", AGENT, "--format", "json",
        ],
    );
    assert_eq!(json.code, 0, "{}", json.stderr);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let phases: Vec<(&str, Option<u64>)> = doc[0]["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| (p["phase"].as_str().unwrap_or("?"), p["serverId"].as_u64()))
        .collect();
    assert_eq!(phases, [("Ready", Some(server.id)), ("removed", None)]);
}
