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

/// `tether status --live` after one server was deleted behind tether's back through the
/// Hetzner API, and `--watch` drawing successive snapshots into a pipe.
#[tokio::test(flavor = "multi_thread")]
async fn status_live_shows_a_server_deleted_by_hand_and_watch_redraws() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    commit_all(fleet.path(), "main", "the example fleet");
    let (code, _, err) = crate::common::apply(&stack, fleet.path(), &[]).await;
    assert_eq!(code, 0, "{err}");
    let victim = stack
        .hetzner
        .servers()
        .into_iter()
        .find(|s| s.name == "globex-ops")
        .expect("globex-ops runs");
    let deleted = reqwest::Client::new()
        .delete(format!("{}/servers/{}", stack.hetzner.url(), victim.id))
        .bearer_auth(stack.hetzner.token().expose())
        .send()
        .await
        .expect("DELETE the server by hand");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    for _ in 0..200 {
        if stack.hetzner.servers().len() == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(stack.hetzner.servers().len(), 5, "deleted by hand");
    let repo = fleet.path().to_str().expect("utf-8 path");
    let live = |format: &str| {
        let mut cmd = std::process::Command::new(crate::common::tether_bin());
        cmd.current_dir(fleet.path())
            .args(["status", "--git", repo, "--live", "--color", "never"])
            .args(["--format", format])
            .env_remove("RUST_LOG");
        for (k, v) in stack.env() {
            cmd.env(k, v);
        }
        crate::common::Run::from(cmd.output().expect("run tether status --live"))
    };

    let text = live("text");
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .contains("disagreements with the live inventory: 2\n"),
        "{}",
        text.stdout
    );
    let line = text
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("globex-ops") && l.contains("server missing"))
        .unwrap_or_else(|| panic!("no disagreement line for globex-ops:\n{}", text.stdout));
    assert!(line.contains(&format!("server {}", victim.id)), "{line}");
    assert!(
        text.stdout.contains("cost:         €") && text.stdout.contains("for 5 server(s)"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("lease:        "), "{}", text.stdout);

    let json = live("json");
    assert_eq!(json.code, 0, "{}", json.stderr);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    let found = doc["disagreements"].as_array().expect("disagreements");
    let kinds: Vec<(&str, &str)> = found
        .iter()
        .map(|d| {
            (
                d["agent"].as_str().unwrap_or("?"),
                d["kind"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("globex-ops", "deviceOffline"),
            ("globex-ops", "serverMissing")
        ],
        "the server is gone and its device went offline with it"
    );
    assert_eq!(doc["cost"]["servers"], 5);

    let mut watch = std::process::Command::new(crate::common::tether_bin())
        .current_dir(fleet.path())
        .args([
            "status", "--git", repo, "--watch", "200ms", "--color", "never",
        ])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start tether status --watch");
    let stdout = watch.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            seen.push(line);
            if seen.iter().filter(|l| l.starts_with("fleet:")).count() == 3 {
                break;
            }
        }
        seen
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    watch.kill().expect("stop the watch");
    let _ = watch.wait();
    let seen = reader.join().expect("reader");
    let snapshots = seen.iter().filter(|l| l.starts_with("fleet:")).count();
    assert_eq!(
        snapshots,
        3,
        "three snapshots within 20 s:\n{}",
        seen.join("\n")
    );
    let second = seen
        .iter()
        .skip(1)
        .position(|l| l.starts_with("fleet:"))
        .map(|i| i + 1)
        .expect("a second snapshot");
    assert_eq!(
        seen[second - 1],
        "",
        "snapshots are separated by a blank line"
    );
    assert!(
        !seen.concat().contains('\u{1b}'),
        "no screen clearing into a pipe"
    );
    stack.shutdown().await;
}
