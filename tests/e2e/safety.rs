//! The safety core end to end: two fleets sharing one Hetzner project and one tailnet with the
//! same tags never touch each other's servers or devices, whatever the order of their applies;
//! a change that would replace every VM rolls through the disruption budget.

use crate::common::commit_all;
use std::collections::BTreeMap;
use tether::cloud::tailscale::{NewAuthKey, Tailnet};
use tether::sandbox::stack::{Stack, StackOptions};
use tether_schema::names::TailnetTag;

/// A fleet repository with its own name and agents.
struct FleetRepo {
    name: &'static str,
    dir: tempfile::TempDir,
}

impl FleetRepo {
    fn new(name: &'static str, policy: &str, agents: &[&str]) -> FleetRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("fleet.yaml"),
            format!(
                "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: {name}}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\", \"tag:agent-eu\"]}}\n  policy: {{prune: true, quarantineGrace: \"0\", {policy}}}\n  catalog: {{serverTypes: [cpx11, cpx21], locations: [fsn1], images: [ubuntu-24.04, debian-12]}}\n"
            ),
        )
        .expect("write fleet.yaml");
        let repo = FleetRepo { name, dir };
        repo.set_agents(agents, "");
        repo
    }

    /// Replaces the agents folder with one spec per name (each with `extra` spec lines).
    fn set_agents(&self, agents: &[&str], extra: &str) {
        let folder = self.dir.path().join("agents");
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).expect("agents folder");
        for a in agents {
            std::fs::write(
                folder.join(format!("{a}.yaml")),
                format!(
                    "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {a}}}\nspec:\n  subscription: sub_{}\n  runtime: {{version: \"1.0.0\"}}\n{extra}",
                    a.replace('-', "_")
                ),
            )
            .expect("write agent");
        }
        commit_all(self.dir.path(), "main", &format!("{} agents", self.name));
    }

    async fn apply(&self, stack: &Stack, extra: &[&str]) -> (i32, String, String) {
        crate::common::apply(stack, self.dir.path(), extra).await
    }
}

/// Server name → (id, status) and device id → hostname of one fleet, as the emulators hold them.
#[derive(Debug, PartialEq, Eq)]
struct Holdings {
    servers: BTreeMap<String, (u64, String)>,
    devices: BTreeMap<String, String>,
}

fn holdings(stack: &Stack, fleet: &str) -> Holdings {
    let servers: BTreeMap<String, (u64, String)> = stack
        .hetzner
        .servers()
        .into_iter()
        .filter(|s| s.labels.get("tether/fleet").is_some_and(|f| f == fleet))
        .map(|s| (s.name, (s.id, format!("{:?}", s.status))))
        .collect();
    let devices = stack
        .tailscale
        .devices()
        .into_iter()
        .filter(|d| servers.contains_key(&d.hostname))
        .map(|d| (d.node_id, d.hostname))
        .collect();
    Holdings { servers, devices }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_fleets_on_one_tailnet_never_touch_each_other_whatever_the_order() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let policy = "maxDeletionsPerRun: 5, maxDeletionPercent: 100";
    let prod = FleetRepo::new("aura-prod", policy, &["p-one", "p-two", "p-three"]);
    let staging = FleetRepo::new("aura-staging", policy, &["s-one", "s-two"]);
    // Someone's own machine on the same tag: neither fleet may touch it.
    let key = stack
        .tailscale_client()
        .expect("client")
        .create_auth_key(&NewAuthKey {
            description: "a laptop".into(),
            tags: vec![TailnetTag::parse("tag:agent").expect("tag")],
            expiry: std::time::Duration::from_secs(600),
        })
        .await
        .expect("key for the laptop");
    stack
        .tailscale
        .enroll(
            &tether_emulators::Token::new(key.secret.expose().clone()),
            "laptop",
            999_999,
        )
        .expect("the laptop joins");

    assert_eq!(staging.apply(&stack, &[]).await.0, 0);
    let staging_before = holdings(&stack, "aura-staging");
    assert_eq!(staging_before.servers.len(), 2);
    assert_eq!(staging_before.devices.len(), 2, "{staging_before:?}");

    let (code, out, err) = prod.apply(&stack, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        holdings(&stack, "aura-staging"),
        staging_before,
        "prod's first apply"
    );
    let prod_before = holdings(&stack, "aura-prod");
    assert_eq!(prod_before.devices.len(), 3, "{prod_before:?}");

    // Each fleet shrinks and applies in turn; the other's holdings never change.
    staging.set_agents(&["s-one"], "");
    let (code, out, err) = staging.apply(&stack, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        holdings(&stack, "aura-prod"),
        prod_before,
        "staging's shrink"
    );
    let staging_after = holdings(&stack, "aura-staging");
    assert_eq!(staging_after.servers.len(), 1);
    assert_eq!(
        staging_after.devices.len(),
        1,
        "s-two's device went with it"
    );

    prod.set_agents(&["p-one", "p-two"], "");
    let (code, out, err) = prod.apply(&stack, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        holdings(&stack, "aura-staging"),
        staging_after,
        "prod's shrink"
    );
    let prod_after = holdings(&stack, "aura-prod");

    // Staging goes away entirely (confirmed); prod is re-applied with nothing to do.
    staging.set_agents(&[], "");
    let (code, out, err) = staging.apply(&stack, &["--allow-shrink"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(holdings(&stack, "aura-staging").servers.is_empty());
    assert_eq!(
        holdings(&stack, "aura-prod"),
        prod_after,
        "staging's teardown"
    );
    let (code, out, _) = prod.apply(&stack, &[]).await;
    assert_eq!(code, 0);
    assert!(out.contains("Apply: 0 done"), "{out}");
    assert_eq!(holdings(&stack, "aura-prod"), prod_after);

    let hosts: Vec<String> = stack
        .tailscale
        .devices()
        .into_iter()
        .map(|d| d.hostname)
        .collect();
    assert!(
        hosts.contains(&"laptop".to_owned()),
        "the laptop stays: {hosts:?}"
    );
    let devices_of_gone: Vec<&String> = hosts.iter().filter(|h| h.starts_with("s-")).collect();
    assert!(
        devices_of_gone.is_empty(),
        "staging cleaned up its own devices: {hosts:?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_change_that_replaces_every_vm_rolls_through_the_disruption_budget() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let names: Vec<String> = (0..50).map(|i| format!("vm-{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let policy = "maxDeletionsPerRun: 10, maxDeletionPercent: 100, maxDeletionsPerHour: 1000, maxDisruptionsPerRun: 10, maxDisruptionPercent: 100";
    let fleet = FleetRepo::new("rolling", policy, &refs);
    let (code, out, err) = fleet.apply(&stack, &["--concurrency", "25"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let original: BTreeMap<String, (u64, String)> = holdings(&stack, "rolling").servers;
    assert_eq!(original.len(), 50);

    // One bad default: every VM would need a new server.
    fleet.set_agents(&refs, "  server: {image: debian-12}\n");
    let mut passes = 0;
    loop {
        passes += 1;
        assert!(passes <= 12, "did not converge in 12 passes");
        let (code, out, err) = fleet.apply(&stack, &["--concurrency", "25"]).await;
        assert_eq!(code, 0, "pass {passes}:\n{out}\n{err}");
        let replaced = out.lines().filter(|l| l.starts_with("replace")).count();
        assert!(replaced <= 10, "pass {passes} replaced {replaced}: {out}");
        let servers = stack.hetzner.servers();
        let current = servers
            .iter()
            .filter(|s| !s.name.contains("-retired-"))
            .count();
        assert_eq!(current, 50, "every agent keeps a server throughout");
        let online: usize = stack
            .tailscale
            .devices()
            .iter()
            .filter(|d| d.connected_to_control)
            .count();
        assert!(online >= 40, "pass {passes}: only {online} agents online");
        // An old server is gone only once its replacement is online.
        for (name, (old_id, _)) in &original {
            let old_gone = !servers.iter().any(|s| s.id == *old_id);
            // A deleted server's devices go offline, so an online device of the agent is
            // its replacement's.
            if old_gone {
                assert!(
                    stack
                        .tailscale
                        .devices()
                        .iter()
                        .any(|d| d.connected_to_control && d.hostname == *name),
                    "{name}: old server deleted before its replacement was online"
                );
            }
        }
        if out.contains("Apply: 0 done") && servers.len() == 50 {
            break;
        }
    }
    let now = holdings(&stack, "rolling").servers;
    assert!(
        now.iter().all(|(name, (id, _))| original[name].0 != *id),
        "every VM was replaced"
    );
    assert!(
        passes >= 5,
        "50 replacements at 10 per run take at least 5 runs, took {passes}"
    );
    stack.shutdown().await;
}
