//! `tether audit report` over a sandbox run's history (creations, a resize, a quarantine, a
//! purge and the deletion it asked for, with the emulators' latencies) reconciles one to one with the Hetzner emulator's action log:
//! every provider action appears in exactly one row, and every row's action ids are the
//! provider's.

use crate::common::{commit_all, example_fleet, tether};
use std::collections::BTreeMap;
use tether::sandbox::stack::{Stack, StackOptions};
use tether_emulators::hetzner::Latencies;

/// The Hetzner emulator's action log: id → (command, server).
async fn action_log(stack: &Stack) -> BTreeMap<u64, (String, u64)> {
    let url = format!("http://{}/_emulator/actions", stack.hetzner.addr());
    let text = reqwest::get(&url)
        .await
        .expect("action log")
        .text()
        .await
        .expect("body");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    doc["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                a["id"].as_u64().expect("id"),
                (
                    a["command"].as_str().expect("command").to_owned(),
                    a["server"].as_u64().expect("server"),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_report_of_a_sandbox_run_matches_the_providers_action_log_one_to_one() {
    let latency = std::time::Duration::from_millis(150);
    let stack = Stack::start(StackOptions {
        latencies: Latencies {
            create: latency,
            start: latency,
            stop: latency,
            shutdown: latency,
            reboot: latency,
            change_type: latency,
            delete: latency,
            firewall: latency,
        },
        ..StackOptions::default()
    })
    .await
    .expect("emulators");
    let fleet = example_fleet();
    let repo = fleet.path();
    commit_all(repo, "main", "billing: the example fleet");
    let (code, _, err) = crate::common::apply(&stack, repo, &[]).await;
    assert_eq!(code, 0, "{err}");

    let spec = repo.join("agents/acme/acme-staging.yaml");
    let text = std::fs::read_to_string(&spec).expect("read spec");
    std::fs::write(&spec, text.replace("type: cpx11", "type: cpx21")).expect("resize");
    commit_all(repo, "main", "billing: acme-staging upgrades");
    let (code, _, err) = crate::common::apply(&stack, repo, &[]).await;
    assert_eq!(code, 0, "{err}");

    std::fs::remove_file(repo.join("agents/globex/globex-ops.yaml")).expect("remove");
    commit_all(repo, "main", "billing: cancel globex-ops");
    let (code, _, err) = crate::common::apply(&stack, repo, &["--allow-shrink"]).await;
    assert_eq!(code, 0, "{err}");

    let purge = std::process::Command::new(crate::common::tether_bin())
        .args([
            "agent",
            "purge",
            "globex-ops",
            "--confirm",
            "globex-ops",
            "--git",
        ])
        .arg(repo)
        .args([
            "--rev",
            "main",
            "--requested-by",
            "Ops Oncall <ops@example.com>",
        ])
        .envs(stack.env())
        .output()
        .expect("run tether agent purge");
    assert!(
        purge.status.success(),
        "{}",
        String::from_utf8_lossy(&purge.stderr)
    );
    let (code, _, err) = crate::common::apply(&stack, repo, &["--allow-shrink"]).await;
    assert_eq!(code, 0, "{err}");
    let log = action_log(&stack).await;
    stack.shutdown().await;

    let repo_arg = repo.to_str().expect("utf-8 path");
    let run = tether(
        repo,
        &["audit", "report", "--repo", repo_arg, "--format", "json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("json rows");
    let mut claimed: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for row in &rows {
        for id in row["actions"].as_array().expect("actions") {
            let who = format!("{} {}", row["kind"], row["agent"]);
            claimed
                .entry(id.as_u64().expect("id"))
                .or_default()
                .push(who);
        }
    }
    assert!(!log.is_empty(), "the run made provider actions");
    let unreported: Vec<_> = log
        .iter()
        .filter(|(id, _)| !claimed.contains_key(id))
        .collect();
    assert!(
        unreported.is_empty(),
        "provider actions in no row: {unreported:?}\n{}",
        run.stdout
    );
    let twice: Vec<_> = claimed.iter().filter(|(_, rows)| rows.len() > 1).collect();
    assert!(twice.is_empty(), "actions in several rows: {twice:?}");
    let unknown: Vec<_> = claimed.keys().filter(|id| !log.contains_key(id)).collect();
    assert!(
        unknown.is_empty(),
        "row actions the provider never ran: {unknown:?}"
    );
    for row in &rows {
        let server = row["server"].as_u64();
        for id in row["actions"].as_array().expect("actions") {
            let (_, on) = &log[&id.as_u64().expect("id")];
            assert_eq!(server, Some(*on), "action {id} is on another server: {row}");
        }
    }

    let kinds = |kind: &str| rows.iter().filter(|r| r["kind"] == kind).count();
    assert_eq!(kinds("create"), 6, "{}", run.stdout);
    assert_eq!(kinds("resize"), 1, "{}", run.stdout);
    assert_eq!(kinds("quarantine"), 1, "{}", run.stdout);
    assert_eq!(kinds("delete"), 1, "{}", run.stdout);
    let purge = rows
        .iter()
        .find(|r| r["kind"] == "purge")
        .expect("purge row");
    assert_eq!(
        (&purge["agent"], &purge["outcome"], &purge["actor"]),
        (
            &serde_json::json!("globex-ops"),
            &serde_json::json!("requested"),
            &serde_json::json!("Ops Oncall <ops@example.com>")
        )
    );
    let resize = rows
        .iter()
        .find(|r| r["kind"] == "resize")
        .expect("resize row");
    assert_eq!(resize["agent"], "acme-staging");
    assert_eq!(resize["actor"], "Billing Bot <billing@example.com>");
    assert!(resize["planHash"].as_str().is_some_and(|h| !h.is_empty()));
    let spec_change = resize["specChange"].as_str().expect("spec change");
    let subject = git2::Repository::open(repo)
        .expect("open")
        .find_commit(git2::Oid::from_str(spec_change).expect("oid"))
        .expect("commit")
        .summary()
        .map(str::to_owned);
    assert_eq!(subject.as_deref(), Some("billing: acme-staging upgrades"));

    let csv = tether(repo, &["audit", "report", "--repo", repo_arg]);
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    assert_eq!(csv.stdout.lines().count(), rows.len() + 1, "{}", csv.stdout);
    assert!(csv.stdout.starts_with("time,kind,agent,outcome,actor,"));
}

#[tokio::test(flavor = "multi_thread")]
async fn applies_from_a_folder_are_journaled_and_the_next_git_apply_imports_them_into_the_report() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let state = tempfile::tempdir().expect("state dir");
    let fleet = example_fleet();
    let repo = fleet.path();
    let folder = tokio::process::Command::new(crate::common::tether_bin())
        .args(["apply", "--auto-approve", "--fleet"])
        .arg(repo)
        .args(["--device-poll-ms", "50", "--device-timeout", "20"])
        .env("TETHER_STATE_DIR", state.path())
        .env("HCLOUD_POLL_INTERVAL_MS", "25")
        .envs(stack.env())
        .output()
        .await
        .expect("run tether apply --fleet");
    assert!(
        folder.status.success(),
        "{}",
        String::from_utf8_lossy(&folder.stderr)
    );
    let journal = state.path().join("journal-aura-prod.txt");
    assert!(journal.exists(), "no journal in {}", state.path().display());

    commit_all(repo, "main", "billing: the example fleet");
    let (code, _, err) = crate::common::apply_command(&stack, repo, &[])
        .env("TETHER_STATE_DIR", state.path())
        .output()
        .await
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                String::new(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .expect("run tether apply --git");
    assert_eq!(code, 0, "{err}");
    assert!(!journal.exists(), "the journal was imported and removed");
    let log = action_log(&stack).await;
    stack.shutdown().await;

    let subjects = crate::common::status_log(repo);
    assert!(
        subjects[0].starts_with("import 1 applies made without a status branch"),
        "{subjects:?}"
    );
    let repo_arg = repo.to_str().expect("utf-8 path");
    let run = tether(
        repo,
        &["audit", "report", "--repo", repo_arg, "--format", "json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("json rows");
    let mut reported: Vec<u64> = rows
        .iter()
        .flat_map(|r| r["actions"].as_array().cloned().unwrap_or_default())
        .filter_map(|id| id.as_u64())
        .collect();
    reported.sort_unstable();
    let provider: Vec<u64> = log.keys().copied().collect();
    assert!(!provider.is_empty());
    assert_eq!(reported, provider, "{}", run.stdout);
    assert_eq!(
        rows.iter().filter(|r| r["kind"] == "create").count(),
        6,
        "{}",
        run.stdout
    );
}
