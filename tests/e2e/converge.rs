//! `tether apply` converging a fleet: the real binary as a subprocess, the Hetzner and
//! Tailscale emulators over real HTTP, and a real git repository whose `tether/status` branch
//! records every run.

use crate::common::{commit_all, example_fleet, without_quarantine};
use std::path::Path;
use std::time::Duration;
use tether::sandbox::stack::{Stack, StackOptions};
use tether_emulators::hetzner::Latencies;

/// A fleet repository and the emulated world it is applied to.
struct Bed {
    stack: Stack,
    repo: tempfile::TempDir,
}

impl Bed {
    async fn new() -> Bed {
        Bed::with(StackOptions::default()).await
    }

    async fn with(options: StackOptions) -> Bed {
        let stack = Stack::start(options).await.expect("emulators");
        let repo = example_fleet();
        without_quarantine(repo.path());
        commit_all(repo.path(), "main", "seed the example fleet");
        Bed { stack, repo }
    }

    fn agents_dir(&self) -> std::path::PathBuf {
        self.repo.path().join("agents")
    }

    fn commit(&self, message: &str) -> String {
        commit_all(self.repo.path(), "main", message)
    }

    /// Runs `tether apply --git <repo> --rev main` and returns (exit code, stdout, stderr).
    async fn apply(&self, extra: &[&str]) -> (i32, String, String) {
        crate::common::apply(&self.stack, self.repo.path(), extra).await
    }

    /// The `tether apply` command, pointed at the emulators.
    fn apply_command(&self, extra: &[&str]) -> tokio::process::Command {
        crate::common::apply_command(&self.stack, self.repo.path(), extra)
    }

    fn running(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .stack
            .hetzner
            .servers()
            .into_iter()
            .map(|s| s.name)
            .collect();
        names.sort();
        names
    }

    fn online_devices(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .stack
            .tailscale
            .devices()
            .into_iter()
            .filter(|d| d.connected_to_control)
            .map(|d| d.hostname)
            .collect();
        names.sort();
        names
    }

    fn valid_keys(&self) -> usize {
        self.stack
            .tailscale
            .keys()
            .into_iter()
            .filter(|k| !k.invalid)
            .count()
    }

    fn status_file(&self, name: &str) -> String {
        crate::common::status_file(self.repo.path(), name)
    }

    fn status_log(&self) -> Vec<String> {
        crate::common::status_log(self.repo.path())
    }
}

fn remove_spec(dir: &Path, rel: &str) {
    std::fs::remove_file(dir.join(rel)).expect("remove spec");
}

const ALL: [&str; 6] = [
    "acme-prod",
    "acme-research",
    "acme-staging",
    "globex-ops",
    "globex-sales",
    "globex-support",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_converges_a_fleet_and_records_it_on_the_status_branch() {
    let bed = Bed::new().await;
    let (code, out, err) = bed.apply(&[]).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("Apply: 6 done, 0 failed, 0 skipped."), "{out}");
    assert_eq!(bed.running(), ALL);
    let off: Vec<String> = bed
        .stack
        .hetzner
        .servers()
        .into_iter()
        .filter(|s| s.status == tether_emulators::hetzner::ServerStatus::Off)
        .map(|s| s.name)
        .collect();
    assert_eq!(off, ["acme-research"], "power: off is honoured");
    assert_eq!(
        bed.online_devices(),
        [
            "acme-prod",
            "acme-staging",
            "globex-ops",
            "globex-sales",
            "globex-support"
        ]
    );
    assert_eq!(bed.valid_keys(), 0, "every minted key is used or revoked");
    let log = bed.status_log();
    assert_eq!(log.len(), 1);
    assert!(
        log[0].starts_with("apply ") && log[0].contains(": +6 created, -0 deleted"),
        "{}",
        log[0]
    );
    assert!(
        log[0].contains("Tether-Source-Commit: ") && log[0].contains("Tether-Plan-Hash: "),
        "{}",
        log[0]
    );

    let (code, out, _) = bed.apply(&[]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("Apply: 0 done, 0 failed, 0 skipped."),
        "a converged fleet plans nothing: {out}"
    );
    assert_eq!(
        bed.status_log().len(),
        1,
        "no status commit when nothing changed"
    );
    bed.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_specs_deletes_servers_and_devices_and_leaves_no_valid_key() {
    let bed = Bed::new().await;
    assert_eq!(bed.apply(&[]).await.0, 0);
    remove_spec(&bed.agents_dir(), "acme/acme-staging.yaml");
    remove_spec(&bed.agents_dir(), "globex/globex-ops.yaml");
    bed.commit("subscriptions ended");
    let (code, out, err) = bed.apply(&[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        bed.running(),
        [
            "acme-prod",
            "acme-research",
            "globex-sales",
            "globex-support"
        ]
    );
    let hosts: Vec<String> = bed
        .stack
        .tailscale
        .devices()
        .into_iter()
        .map(|d| d.hostname)
        .collect();
    assert!(
        !hosts
            .iter()
            .any(|h| h == "acme-staging" || h == "globex-ops"),
        "devices deleted: {hosts:?}"
    );
    assert_eq!(bed.valid_keys(), 0);
    assert!(
        bed.status_log()[0].contains("-2 deleted"),
        "{}",
        bed.status_log()[0]
    );
    bed.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_server_type_resizes_in_place() {
    let bed = Bed::new().await;
    assert_eq!(bed.apply(&[]).await.0, 0);
    let spec = bed.agents_dir().join("globex/globex-sales.yaml");
    let text = std::fs::read_to_string(&spec)
        .expect("spec")
        .replace("type: cpx21", "type: cpx31");
    std::fs::write(&spec, text).expect("write");
    bed.commit("upgrade globex-sales");
    let before = bed
        .stack
        .hetzner
        .servers()
        .into_iter()
        .find(|s| s.name == "globex-sales")
        .expect("server")
        .id;
    let (code, out, err) = bed.apply(&[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("resize"), "{out}");
    let after = bed
        .stack
        .hetzner
        .servers()
        .into_iter()
        .find(|s| s.name == "globex-sales")
        .expect("server");
    assert_eq!(
        (after.id, after.server_type.as_str(), after.status),
        (
            before,
            "cpx31",
            tether_emulators::hetzner::ServerStatus::Running
        )
    );
    bed.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_deleted_out_of_band_is_recreated_on_the_next_pass() {
    let bed = Bed::new().await;
    assert_eq!(bed.apply(&[]).await.0, 0);
    let victim = bed
        .stack
        .hetzner
        .servers()
        .into_iter()
        .find(|s| s.name == "acme-prod")
        .expect("server");
    assert!(bed.stack.hetzner.delete_server(victim.id));
    let (code, out, err) = bed.apply(&[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("deleted outside tether (drift)"),
        "the plan is shown on stdout: {out}"
    );
    let again = bed
        .stack
        .hetzner
        .servers()
        .into_iter()
        .find(|s| s.name == "acme-prod")
        .expect("recreated");
    assert_ne!(again.id, victim.id);
    assert_eq!(bed.running(), ALL);
    bed.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_removing_every_spec_is_refused_and_deletes_nothing() {
    let bed = Bed::new().await;
    assert_eq!(bed.apply(&[]).await.0, 0);
    std::fs::remove_dir_all(bed.agents_dir()).expect("remove all specs");
    std::fs::create_dir(bed.agents_dir()).expect("empty agents/");
    std::fs::write(bed.agents_dir().join(".gitkeep"), "").expect("keep");
    bed.commit("oops: billing export came back empty");
    let (code, out, err) = bed.apply(&[]).await;
    assert_eq!(code, 3, "refused by policy: {out}\n{err}");
    assert!(err.contains("refused"), "{err}");
    assert!(err.contains("shrank from 6 agents to none"), "{err}");
    assert_eq!(bed.running(), ALL, "nothing was deleted");
    let log = bed.status_log();
    assert!(
        log[0].contains("refused, nothing changed"),
        "the refusal is recorded: {}",
        log[0]
    );
    let fleet = bed.status_file("fleet.yaml");
    assert!(
        fleet.contains("agents: 6") && fleet.contains("lastError: "),
        "the baseline stays, the refusal is the last error: {fleet}"
    );
    let prod = bed.status_file("acme-prod.yaml");
    assert!(
        prod.contains("phase: Ready"),
        "agents still describe the live fleet, not the refused spec: {prod}"
    );
    // The same refusal again is not recorded twice, and the breaker still holds.
    let (code, _, err) = bed.apply(&[]).await;
    assert_eq!(code, 3);
    assert!(err.contains("shrank from 6 agents to none"), "{err}");
    assert_eq!(
        bed.status_log().len(),
        log.len(),
        "one commit per distinct cause"
    );
    bed.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_minted_before_a_kill_are_used_by_their_servers_or_revoked_by_the_next_apply() {
    let slow_creates = StackOptions {
        latencies: Latencies {
            create: Duration::from_secs(4),
            ..Latencies::default()
        },
        ..StackOptions::default()
    };
    let bed = Bed::with(slow_creates).await;
    let mut first = bed
        .apply_command(&[])
        .kill_on_drop(true)
        .spawn()
        .expect("start tether apply");
    for _ in 0..400 {
        if bed.stack.hetzner.servers().len() == ALL.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(bed.running(), ALL, "every create was sent before the kill");
    first.kill().await.expect("SIGKILL tether apply");
    assert_eq!(
        bed.valid_keys(),
        ALL.len(),
        "a killed apply leaves its keys valid"
    );

    // The next apply finds the servers still being created: it spares the keys their
    // cloud-init carries.
    let (code, out, err) = bed.apply(&[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Apply: 0 done"), "the servers exist: {out}");
    assert!(
        !out.contains("tskey-") && !err.contains("tskey-"),
        "{out}\n{err}"
    );
    assert_eq!(
        bed.valid_keys(),
        ALL.len(),
        "keys of servers still being created are spared"
    );

    // The servers boot and join with their keys; nothing is stranded.
    for _ in 0..400 {
        if bed.online_devices().len() == ALL.len() - 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        bed.online_devices().len(),
        ALL.len() - 1,
        "every powered agent joined"
    );
    // acme-research is meant to stay off: its server never used its key, which the next
    // pass's sweep revokes now that the server has settled.
    assert_eq!(bed.valid_keys(), 1);
    let (code, _, err) = bed.apply(&[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(bed.valid_keys(), 0, "each key was used once or revoked");
    bed.stack.shutdown().await;
}
