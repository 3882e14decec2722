//! VMs in a box, end to end: `tether apply` against the emulators in the box mode, where every
//! server boots as a Debian container (`systemd-nspawn --boot`) whose real cloud-init runs the
//! user_data tether rendered, and whose `tailscale up` joins the Tailscale emulator with the
//! key from the key file. Needs root, systemd-nspawn and mmdebstrap: without them the tests say
//! why and pass, unless `TETHER_BOX_REQUIRED=1` (set by CI), which makes a skip a failure. On
//! failure each box's journal, console and cloud-init output are printed.

use crate::common::{commit_all, tether_bin, workspace};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether::cloud::{Compute, ServerId};
use tether::sandbox::stack::{BoxMode, Stack, StackOptions};
use tether_emulators::vmbox::{self, Boxes};

const AGENTS: usize = 3;

/// The box mode's stack, or why this machine cannot run boxes (then the test passes, unless
/// `TETHER_BOX_REQUIRED` is set).
async fn box_stack(machines: &Path) -> Option<Stack> {
    if let Some(reason) = vmbox::available() {
        assert!(
            std::env::var_os("TETHER_BOX_REQUIRED").is_none(),
            "TETHER_BOX_REQUIRED is set, but boxes cannot run here: {reason}"
        );
        eprintln!("SKIPPED: VMs in a box cannot run here: {reason}");
        return None;
    }
    let rootfs = vmbox::rootfs::ensure(&workspace().join("target/vm-box")).expect("the image");
    let options = StackOptions {
        boxes: Some(BoxMode {
            rootfs,
            machines: machines.to_owned(),
        }),
        ..StackOptions::default()
    };
    Some(Stack::start(options).await.expect("emulators"))
}

/// Prints every box's journal when the test fails.
struct JournalsOnFailure(Arc<Boxes>, Vec<u64>);

impl Drop for JournalsOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for id in &self.1 {
                eprintln!("{}", self.0.journal(*id));
            }
        }
    }
}

fn fleet(dir: &Path, agents: usize) {
    std::fs::create_dir_all(dir.join("agents")).expect("agents/");
    std::fs::write(
        dir.join("fleet.yaml"),
        "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: aura-prod}\nspec:\n  defaults: {server: {type: cpx11, location: fsn1, image: debian-12}}\n  tailscale: {tags: [\"tag:agent\"]}\n  policy: {prune: true, quarantineGrace: \"0\", maxDeletionsPerRun: 5, maxDeletionPercent: 100}\n  catalog: {serverTypes: [cpx11], locations: [fsn1], images: [debian-12]}\n",
    )
    .expect("fleet.yaml");
    for i in 0..agents {
        std::fs::write(
            dir.join(format!("agents/box-{i:02}.yaml")),
            format!(
                "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: box-{i:02}}}\nspec:\n  subscription: sub_{i}\n  runtime: {{version: \"1.0.0\", env: {{GREETING: \"it's $HOME; `rm -rf /` \\\"quoted\\\"\"}}}}\n"
            ),
        )
        .expect("agent spec");
    }
    commit_all(dir, "main", &format!("{agents} agents"));
}

async fn apply(stack: &Stack, fleet: &Path, extra: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(tether_bin())
        .args(["apply", "--auto-approve", "--git"])
        .arg(fleet)
        .args(["--rev", "main", "--device-timeout", "300"])
        .args(extra)
        .envs(stack.env())
        .env("HCLOUD_POLL_INTERVAL_MS", "100")
        .output()
        .await
        .expect("tether apply");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Waits until `done` holds (within `limit`).
async fn until(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_boxes_run_their_cloud_init_join_the_tailnet_survive_a_power_cycle_and_stop_when_deleted()
 {
    let machines = tempfile::tempdir().expect("machines dir");
    let Some(stack) = box_stack(machines.path()).await else {
        return;
    };
    let boxes = stack.boxes.clone().expect("box mode");
    let dir = tempfile::tempdir().expect("fleet dir");
    fleet(dir.path(), AGENTS);
    tether_bin();
    let started = Instant::now();

    let (code, out) = apply(&stack, dir.path(), &[]).await;
    let ids: Vec<u64> = stack.hetzner.servers().iter().map(|s| s.id).collect();
    let _journals = JournalsOnFailure(boxes.clone(), ids.clone());
    assert_eq!(code, 0, "{out}");
    assert_eq!(ids.len(), AGENTS, "{out}");
    let joined = stack.tailscale.device_servers();
    for id in &ids {
        assert!(
            joined.values().any(|s| *s == Some(*id)),
            "server {id} has a device in the tailnet: {joined:?}"
        );
        let disk = boxes.disk(*id);
        let env = disk.join("etc/tether/agent.env");
        let mode = std::fs::metadata(&env)
            .expect("agent.env")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", env.display());
        let text = std::fs::read_to_string(&env).expect("agent.env");
        assert!(text.contains("GREETING="), "{text}");
        let output = std::fs::read_to_string(disk.join("var/log/cloud-init-output.log"))
            .expect("cloud-init-output.log");
        let name = &stack
            .hetzner
            .servers()
            .into_iter()
            .find(|s| s.id == *id)
            .expect("server")
            .name;
        assert!(
            output.contains(&format!("tailscale up: joined as {name}")),
            "{output}"
        );
        assert!(
            !output.contains("tskey-auth"),
            "no auth key in cloud-init's output"
        );
        assert!(
            disk.join(format!("var/lib/cloud/instances/hcloud-{id}/boot-finished"))
                .exists(),
            "cloud-init finished in the box of server {id}"
        );
    }
    assert_eq!(boxes.running().len(), AGENTS);
    let joined_after = started.elapsed();

    let cycle = Instant::now();
    let compute = stack
        .hetzner_client(Duration::from_millis(100))
        .expect("client");
    let first = ServerId(ids[0]);
    compute.power_off(first).await.expect("power off");
    until(
        Duration::from_secs(60),
        "the powered-off box stopped",
        || !boxes.running().contains(&ids[0]),
    )
    .await;
    compute.power_on(first).await.expect("power on");
    until(Duration::from_secs(60), "the powered-on box runs", || {
        boxes.running().contains(&ids[0])
    })
    .await;
    let output = std::fs::read_to_string(boxes.disk(ids[0]).join("var/log/cloud-init-output.log"))
        .expect("cloud-init-output.log");
    assert_eq!(
        output.matches("tailscale up: joined").count(),
        1,
        "a power cycle does not run the user_data again:\n{output}"
    );
    let cycled_in = cycle.elapsed();
    let delete = Instant::now();

    for i in 0..AGENTS {
        std::fs::remove_file(dir.path().join(format!("agents/box-{i:02}.yaml"))).expect("rm");
    }
    commit_all(dir.path(), "main", "every subscription ended");
    let (code, out) = apply(&stack, dir.path(), &["--allow-shrink"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(stack.hetzner.servers().is_empty(), "{out}");
    until(Duration::from_secs(60), "every box stopped", || {
        boxes.running().is_empty()
    })
    .await;
    eprintln!(
        "{AGENTS} boxes: created, cloud-init run and joined in {:.1} s; one power-cycled in {:.1} s; deleted and stopped in {:.1} s",
        joined_after.as_secs_f64(),
        cycled_in.as_secs_f64(),
        delete.elapsed().as_secs_f64()
    );
}
