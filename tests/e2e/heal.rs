//! Self-healing, end to end against the emulators with second-scale policy durations: a VM
//! whose cloud-init fails once is re-keyed and ends healthy on the same server; one that can
//! never enrol stops after its attempts, failed with its reason, with at most N+1 servers ever
//! created; a device held offline is power-cycled back; and while the device listing is empty
//! no agent is remedied.

use crate::common::{commit_all, status_file, tether_bin};
use std::path::Path;
use std::time::Duration;
use tether::sandbox::stack::{Stack, StackOptions};
use tether_emulators::emulator::FaultRule;
use tether_emulators::tailscale::Until;

/// Writes `fleet.yaml` with `heal` as `spec.policy.heal` and one spec per agent; commits.
fn write_fleet(dir: &Path, heal: &str, agents: &[&str]) {
    std::fs::write(
        dir.join("fleet.yaml"),
        format!(
            "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: heal}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  policy: {{prune: true, maxDisruptionPercent: 100, heal: {{{heal}}}}}\n  catalog: {{serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}}\n"
        ),
    )
    .expect("write fleet.yaml");
    let folder = dir.join("agents");
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
    commit_all(dir, "main", "fleet");
}

/// One `tether apply` pass with a 2 s device wait: (exit code, stdout + stderr).
async fn pass(stack: &Stack, repo: &Path) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(tether_bin());
    cmd.args(["apply", "--auto-approve", "--git"])
        .arg(repo)
        .args([
            "--rev",
            "main",
            "--device-poll-ms",
            "50",
            "--device-timeout",
            "2",
            "--lock-ttl",
            "2s",
        ])
        .env("HCLOUD_POLL_INTERVAL_MS", "25")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    for (k, v) in stack.env() {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("run tether apply");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn server_ids(stack: &Stack, agent: &str) -> Vec<u64> {
    stack
        .hetzner
        .servers()
        .into_iter()
        .filter(|s| s.labels.get("tether/agent").is_some_and(|a| a == agent))
        .map(|s| s.id)
        .collect()
}

fn online(stack: &Stack, agent: &str) -> bool {
    stack
        .tailscale
        .devices()
        .iter()
        .any(|d| d.hostname == agent && d.connected_to_control)
}

fn count(stack: &Stack, command: &str) -> usize {
    stack
        .hetzner
        .action_commands()
        .iter()
        .filter(|(c, _)| *c == command)
        .count()
}

/// Runs passes (a second apart, so deadlines in seconds pass) until `done` or `max` passes;
/// returns every pass's output.
async fn passes_until(
    stack: &Stack,
    repo: &Path,
    max: usize,
    done: impl Fn(&Stack) -> bool,
) -> Vec<String> {
    let mut outputs = Vec::new();
    for _ in 0..max {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        outputs.push(pass(stack, repo).await.1);
        if done(stack) {
            break;
        }
    }
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_whose_cloud_init_fails_once_is_rekeyed_and_ends_healthy_on_the_same_server() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    stack.tailscale.fail_cloud_init("mend", Until::Times(1));
    let repo = tempfile::tempdir().expect("temp dir");
    write_fleet(
        repo.path(),
        "enrolmentDeadline: 1s, observations: 2, backoff: 1s",
        &["mend"],
    );
    let (_, out) = pass(&stack, repo.path()).await;
    assert!(out.contains("no device came online"), "{out}");
    let original = server_ids(&stack, "mend");
    assert_eq!(original.len(), 1);
    assert!(!online(&stack, "mend"));

    let outputs = passes_until(&stack, repo.path(), 6, |s| online(s, "mend")).await;
    let all = outputs.join("\n");
    assert!(online(&stack, "mend"), "{all}");
    assert!(all.contains("seen 1/2 time(s) before a remedy"), "{all}");
    assert!(all.contains("rekey 1/3: never enrolled"), "{all}");
    assert_eq!(server_ids(&stack, "mend"), original, "the same server");
    assert_eq!(count(&stack, "rebuild_server"), 1);
    assert_eq!(count(&stack, "create_server"), 1);
    let doc = status_file(repo.path(), "mend.yaml");
    assert!(doc.contains("phase: Ready"), "{doc}");
    assert!(
        !doc.contains("heal:"),
        "the record is reset on success: {doc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_that_can_never_enrol_stops_after_its_attempts_failed_with_its_reason() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    stack.tailscale.fail_cloud_init("doomed", Until::Forever);
    let repo = tempfile::tempdir().expect("temp dir");
    write_fleet(
        repo.path(),
        "enrolmentDeadline: 1s, observations: 1, backoff: 1s, maxAttempts: 2",
        &["doomed"],
    );
    pass(&stack, repo.path()).await;
    let outputs = passes_until(&stack, repo.path(), 8, |_| {
        status_file(repo.path(), "doomed.yaml").contains("self-healing gave up")
    })
    .await;
    let all = outputs.join("\n");
    let doc = status_file(repo.path(), "doomed.yaml");
    assert!(doc.contains("phase: Failed"), "{doc}\n{all}");
    assert!(
        doc.contains("self-healing gave up after 2 attempt(s) (last: replace)"),
        "{doc}"
    );
    assert!(all.contains("rekey 1/2"), "{all}");
    assert!(all.contains("replace 2/2"), "{all}");
    for _ in 0..2 {
        let (_, out) = pass(&stack, repo.path()).await;
        assert!(out.contains("is FAILED"), "{out}");
    }
    let creates = count(&stack, "create_server");
    assert!(
        creates <= 3,
        "at most maxAttempts + 1 servers ever: {creates}"
    );
    assert_eq!(creates, 2, "the first server and one replacement");
    assert_eq!(count(&stack, "rebuild_server"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_held_offline_is_power_cycled_back_online() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("temp dir");
    write_fleet(
        repo.path(),
        "offlineThreshold: 1s, observations: 2, backoff: 1s",
        &["flaky", "steady"],
    );
    let (code, out) = pass(&stack, repo.path()).await;
    assert_eq!(code, 0, "{out}");
    let id = server_ids(&stack, "flaky")[0];
    assert_eq!(stack.tailscale.hold_offline(id, Until::PowerCycle), 1);
    assert!(!online(&stack, "flaky"));

    let outputs = passes_until(&stack, repo.path(), 6, |s| online(s, "flaky")).await;
    let all = outputs.join("\n");
    assert!(online(&stack, "flaky"), "{all}");
    assert!(
        all.contains("power cycle 1/3: device offline, last seen"),
        "{all}"
    );
    assert_eq!(server_ids(&stack, "flaky"), [id], "the same server");
    assert_eq!(count(&stack, "reset_server"), 1);
    assert_eq!(count(&stack, "create_server"), 2, "nothing replaced");
    let (code, out) = pass(&stack, repo.path()).await;
    assert_eq!(code, 0, "{out}");
    assert!(status_file(repo.path(), "flaky.yaml").contains("phase: Ready"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_tailscale_fails_or_lists_no_devices_no_agent_is_remedied() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = tempfile::tempdir().expect("temp dir");
    write_fleet(
        repo.path(),
        "enrolmentDeadline: 1s, offlineThreshold: 1s, observations: 1, backoff: 1s",
        &["one", "two"],
    );
    let (code, out) = pass(&stack, repo.path()).await;
    assert_eq!(code, 0, "{out}");
    let before = stack.hetzner.action_commands().len();

    // The device listing fails outright (a refusal, so the client does not spend the test's
    // time on retries): every pass stops before planning.
    stack.tailscale.faults().set(vec![FaultRule {
        method: Some("GET".to_owned()),
        path_prefix: "/api/v2/tailnet".to_owned(),
        error_rate: 1.0,
        error_statuses: vec![403],
        ..FaultRule::everywhere()
    }]);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (code, out) = pass(&stack, repo.path()).await;
        assert_ne!(code, 0, "{out}");
    }
    stack.tailscale.faults().set(Vec::new());

    // The listing answers, empty: every device is gone from it.
    let client = stack.tailscale_client().expect("tailscale client");
    for d in stack.tailscale.devices() {
        tether::cloud::tailscale::Tailnet::delete_device(
            &client,
            &tether::cloud::tailscale::DeviceId(d.node_id),
        )
        .await
        .expect("delete device");
    }
    let mut last = String::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        last = pass(&stack, repo.path()).await.1;
        assert!(last.contains("self-healing is HELD"), "{last}");
    }
    let after: Vec<&str> = stack.hetzner.action_commands()[before..]
        .iter()
        .map(|(c, _)| *c)
        .collect();
    assert!(
        after.is_empty(),
        "no remedy, no create, no delete: {after:?}\n{last}"
    );
}
