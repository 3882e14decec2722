//! Two folder-mode `tether apply` processes of one fleet at once, at realistic (scaled)
//! latencies: the second waits for the first's local lock, so its key sweep never revokes a
//! key the first minted for a create still under way; both converge.

use crate::common::{example_fleet, tether_bin};
use std::time::Duration;
use tether::sandbox::stack::{LatencyProfile, Stack, StackOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_folder_applies_both_converge_and_revoke_no_key_under_a_running_create() {
    let stack = Stack::start(StackOptions::with_latency(LatencyProfile::Realistic, 0.05))
        .await
        .expect("emulators");
    let fleet = example_fleet();
    let specs: Vec<String> = std::fs::read_dir(fleet.path().join("agents"))
        .expect("agents")
        .flat_map(|customer| std::fs::read_dir(customer.expect("entry").path()).expect("dir"))
        .map(|spec| std::fs::read_to_string(spec.expect("spec").path()).expect("read"))
        .collect();
    let agents = specs.len();
    let powered = specs.iter().filter(|s| !s.contains("power: off")).count();
    let spawn = || {
        let mut cmd = tokio::process::Command::new(tether_bin());
        cmd.args(["apply", "--auto-approve", "--fleet"])
            .arg(fleet.path())
            .args([
                "--device-poll-ms",
                "50",
                "--device-timeout",
                "60",
                "--lock-wait",
                "5m",
            ])
            .env("HCLOUD_POLL_INTERVAL_MS", "50")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true);
        for (k, v) in stack.env() {
            cmd.env(k, v);
        }
        cmd.output()
    };
    let (first, second) = tokio::time::timeout(Duration::from_secs(240), async {
        tokio::join!(spawn(), spawn())
    })
    .await
    .expect("both applies end");
    let (first, second) = (first.expect("first runs"), second.expect("second runs"));
    let text = |o: &std::process::Output| {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let waited = [&first, &second]
        .iter()
        .filter(|o| text(o).contains("another tether apply of this fleet is running"))
        .count();
    assert_eq!(waited, 1, "one apply waited for the other's lock");
    assert_eq!(
        stack.hetzner.servers().len(),
        agents,
        "one server per agent"
    );
    let online = stack
        .tailscale
        .devices()
        .iter()
        .filter(|d| d.connected_to_control)
        .count();
    assert_eq!(online, powered, "every powered VM joined the tailnet");
    assert!(
        stack.tailscale.enrollment_failures().is_empty(),
        "no VM found its key revoked: {:?}",
        stack.tailscale.enrollment_failures()
    );
}
