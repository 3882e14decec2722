//! Executor tests against the emulators over real HTTP: what the executor re-checks on the live
//! inventory (ownership, protection, budgets, labels), and what it leaves behind.

use super::*;
use crate::cloud::ServerId;
use crate::observe::observe;
use crate::plan::{Context, Note, plan};
use crate::sandbox::stack::{Stack, StackOptions};
use std::collections::BTreeMap;
use tether_emulators::hetzner::ServerStatus;
use tether_schema::{Content, SourceFile, labels, load_fleet};

/// A fleet named `exec` with one agent per `(name, extra spec lines)`.
fn fleet(agents: &[(&str, &str)]) -> Fleet {
    let with_labels: Vec<(&str, &str, &str)> = agents.iter().map(|(n, e)| (*n, "{}", *e)).collect();
    fleet_labelled(&with_labels)
}

/// A fleet named `exec` with one agent per `(name, labels, extra spec lines)`.
fn fleet_labelled(agents: &[(&str, &str, &str)]) -> Fleet {
    let mut files = vec![SourceFile {
        path: "fleet.yaml".into(),
        content: Content::Bytes(
            b"apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: exec}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  policy: {prune: true, maxDeletionsPerRun: 10, maxDeletionPercent: 100, maxDisruptionsPerRun: 10, maxDisruptionPercent: 100, quarantineGrace: \"0\"}\n  catalog: {serverTypes: [cpx11, cpx21], locations: [fsn1], images: [ubuntu-24.04, debian-12]}\n".to_vec(),
        ),
    }];
    for (name, labels, extra) in agents {
        files.push(SourceFile {
            path: format!("agents/{name}.yaml"),
            content: Content::Bytes(
                format!(
                    "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {name}, labels: {labels}}}\nspec:\n  subscription: sub_{name}\n  runtime: {{version: \"1.0.0\"}}\n{extra}"
                )
                .into_bytes(),
            ),
        });
    }
    load_fleet(&files).expect("valid test fleet")
}

fn options() -> Options {
    Options {
        device_poll: Duration::from_millis(20),
        device_timeout: Duration::from_secs(10),
        ..Options::default()
    }
}

struct World {
    stack: Stack,
    compute: crate::cloud::hetzner::Client,
    tailnet: crate::cloud::tailscale::Client,
}

impl World {
    async fn start(options: StackOptions) -> World {
        let stack = Stack::start(options).await.expect("emulators");
        let compute = stack
            .hetzner_client(Duration::from_millis(20))
            .expect("hetzner client");
        let tailnet = stack.tailscale_client().expect("tailscale client");
        World {
            stack,
            compute,
            tailnet,
        }
    }

    async fn plan(&self, fleet: &Fleet) -> Plan {
        let observed = observe(&self.compute, &self.tailnet)
            .await
            .expect("observe");
        let ctx = Context {
            previous_agents: Some(fleet.agents.len().max(3)),
            ..Context::default()
        };
        plan(fleet, &observed, &ctx)
    }

    async fn apply(&self, plan: &Plan, fleet: &Fleet) -> ApplyReport {
        let (_stop, stop) = watch::channel(false);
        apply(plan, fleet, &self.compute, &self.tailnet, &options(), stop)
            .await
            .expect("accepted plan")
    }

    async fn converge(&self, fleet: &Fleet) {
        let p = self.plan(fleet).await;
        let report = self.apply(&p, fleet).await;
        assert!(report.succeeded(), "{report}");
    }

    fn server(&self, name: &str) -> Option<tether_emulators::hetzner::ServerSummary> {
        self.stack
            .hetzner
            .servers()
            .into_iter()
            .find(|s| s.name == name)
    }

    fn valid_keys(&self) -> usize {
        self.stack
            .tailscale
            .keys()
            .iter()
            .filter(|k| !k.invalid)
            .count()
    }
}

fn outcome<'a>(report: &'a ApplyReport, kind: &str, agent: &str) -> &'a ActionReport {
    report
        .actions
        .iter()
        .find(|a| a.kind == kind && a.agent == agent)
        .unwrap_or_else(|| panic!("no {kind} of {agent} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_ownership_changed_after_planning_is_not_touched() {
    let w = World::start(StackOptions::default()).await;
    let both = fleet(&[("keep", ""), ("gone", "")]);
    w.converge(&both).await;
    let one = fleet(&[("keep", "")]);
    let p = w.plan(&one).await;
    assert!(p.actions.iter().any(|a| a.deletes_server()), "{p:?}");
    // Between plan and apply, somebody hands the server to another fleet.
    let gone = w.server("gone").expect("gone exists");
    let mut handed_over = gone.labels.clone();
    handed_over.insert(labels::FLEET.into(), "someone-else".into());
    w.compute
        .update_server(ServerId(gone.id), None, &handed_over)
        .await
        .expect("relabel by hand");
    let report = w.apply(&p, &one).await;
    let delete = outcome(&report, "delete", "gone");
    assert!(
        matches!(&delete.outcome, Outcome::Skipped { reason } if reason.contains("no longer carries the labels")),
        "{report}"
    );
    assert!(w.server("gone").is_some(), "the other fleet's server stays");
    w.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_protected_after_planning_is_not_deleted() {
    let w = World::start(StackOptions::default()).await;
    let both = fleet(&[("keep", ""), ("gone", "")]);
    w.converge(&both).await;
    let one = fleet(&[("keep", "")]);
    let p = w.plan(&one).await;
    let gone = w.server("gone").expect("gone exists");
    let mut protected = gone.labels.clone();
    protected.insert(labels::PROTECT.into(), "true".into());
    w.compute
        .update_server(ServerId(gone.id), None, &protected)
        .await
        .expect("protect by hand");
    let report = w.apply(&p, &one).await;
    assert!(
        matches!(&outcome(&report, "delete", "gone").outcome, Outcome::Skipped { reason } if reason.contains("protected")),
        "{report}"
    );
    assert!(w.server("gone").is_some());
    w.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_stop_when_the_budget_is_used_up() {
    let w = World::start(StackOptions::default()).await;
    let many = fleet(&[("a1", ""), ("a2", ""), ("a3", ""), ("a4", "")]);
    w.converge(&many).await;
    let few = fleet(&[("a4", "")]);
    let mut p = w.plan(&few).await;
    assert_eq!(p.actions.iter().filter(|a| a.deletes_server()).count(), 3);
    p.deletions_allowed = 1;
    let report = w.apply(&p, &few).await;
    assert_eq!(report.done("delete"), 1, "{report}");
    let skipped = report
        .actions
        .iter()
        .filter(|a| matches!(&a.outcome, Outcome::Skipped { reason } if reason.contains("budget")))
        .count();
    assert_eq!(skipped, 2, "{report}");
    assert_eq!(w.stack.hetzner.servers().len(), 3);
    w.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_that_never_comes_online_keeps_the_old_server() {
    let w = World::start(StackOptions {
        boot_delay: Duration::from_secs(30),
        ..StackOptions::default()
    })
    .await;
    let old = fleet(&[("r1", "  server: {image: debian-12}\n  power: off\n")]);
    w.converge(&old).await;
    let old_id = w.server("r1").expect("r1").id;
    let new = fleet(&[("r1", "")]);
    let p = w.plan(&new).await;
    assert!(matches!(p.actions[..], [Action::Replace { .. }]), "{p:?}");
    let (_stop, stop) = watch::channel(false);
    let quick = Options {
        device_timeout: Duration::from_millis(300),
        ..options()
    };
    let report = apply(&p, &new, &w.compute, &w.tailnet, &quick, stop)
        .await
        .expect("accepted");
    let replace = outcome(&report, "replace", "r1");
    assert!(
        matches!(&replace.outcome, Outcome::Failed { reason, kind: Kind::Transient } if reason.contains("not online yet")),
        "{report}"
    );
    assert!(
        replace
            .to_string()
            .contains("FAILED (transient): the replacement is not online yet"),
        "{replace}"
    );
    let retired = labels::retired_name("r1", old_id);
    assert!(
        w.server(&retired).is_some(),
        "the old server is kept, retired"
    );
    assert!(w.server("r1").is_some(), "the replacement exists");
    let again = w.plan(&new).await;
    assert!(
        again.notes.iter().any(|n| matches!(n, Note::OrphanKept { reason, .. } if reason.contains("until its replacement is online"))),
        "{again:?}"
    );
    assert!(
        !again.actions.iter().any(|a| a.deletes_server()),
        "{again:?}"
    );
    assert_eq!(w.valid_keys(), 0, "the minted key was revoked");
    w.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_device_enrolled_is_spent_and_not_revoked() {
    let w = World::start(StackOptions::default()).await;
    w.converge(&fleet(&[("k1", ""), ("k2", "")])).await;
    let keys = w.stack.tailscale.keys();
    assert_eq!(keys.len(), 2, "one key per server: {keys:?}");
    assert!(
        keys.iter().all(|k| k.invalid && k.revoked.is_none()),
        "both keys were used up by their devices, none revoked: {keys:?}"
    );
    assert_eq!(
        w.stack
            .tailscale
            .requests()
            .count("DELETE", "/api/v2/tailnet/-/keys"),
        0,
        "no revocation request for a spent key"
    );
    w.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_past_the_deletion_budget_keeps_the_old_server_for_a_later_run() {
    let w = World::start(StackOptions::default()).await;
    let old = fleet(&[("r2", "  server: {image: debian-12}\n")]);
    w.converge(&old).await;
    let old_id = w.server("r2").expect("r2").id;
    let new = fleet(&[("r2", "")]);
    let mut p = w.plan(&new).await;
    p.deletions_allowed = 0;
    let report = w.apply(&p, &new).await;
    let replace = outcome(&report, "replace", "r2");
    assert_eq!(replace.outcome, Outcome::Done, "{report}");
    assert!(
        replace
            .warning
            .as_deref()
            .is_some_and(|w| w.contains("deletion budget")),
        "{report}"
    );
    assert!(w.server(&labels::retired_name("r2", old_id)).is_some());
    // The next run deletes it, now that the replacement is online.
    let next = w.plan(&new).await;
    assert!(
        next.actions
            .iter()
            .any(|a| matches!(a, Action::Delete { server_id, .. } if server_id.0 == old_id)),
        "{next:?}"
    );
    let report = w.apply(&next, &new).await;
    assert!(report.succeeded(), "{report}");
    assert_eq!(w.stack.hetzner.servers().len(), 1);
    w.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_created_without_labels_fails_loudly_and_is_not_created_again() {
    let w = World::start(StackOptions::default()).await;
    w.stack.hetzner.set_drop_labels(true);
    let f = fleet(&[("bare", "")]);
    let p = w.plan(&f).await;
    let report = w.apply(&p, &f).await;
    let create = outcome(&report, "create", "bare");
    assert!(
        matches!(&create.outcome, Outcome::Failed { reason, kind: Kind::Terminal } if reason.contains("without tether's ownership labels") && reason.contains("hcloud server add-label")),
        "{report}"
    );
    let again = w.plan(&f).await;
    assert!(again.is_empty(), "no second create: {again:?}");
    assert!(
        again
            .notes
            .iter()
            .any(|n| matches!(n, Note::NameTaken { agent, .. } if agent == "bare")),
        "{again:?}"
    );
    assert_eq!(w.stack.hetzner.servers().len(), 1);
    assert_eq!(w.valid_keys(), 0);
    w.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_of_one_agent_run_one_after_another() {
    let w = World::start(StackOptions::default()).await;
    let small = fleet(&[("s1", "  server: {type: cpx11}\n")]);
    w.converge(&small).await;
    let big = fleet_labelled(&[("s1", "{tier: gold}", "  server: {type: cpx21}\n")]);
    let p = w.plan(&big).await;
    let kinds: Vec<&str> = p.actions.iter().map(Action::kind).collect();
    assert_eq!(kinds, ["resize", "relabel"], "{p:?}");
    let report = w.apply(&p, &big).await;
    assert!(
        report.succeeded(),
        "a relabel racing the resize would hit a locked server: {report}"
    );
    let s = w.server("s1").expect("s1");
    assert_eq!(s.server_type, "cpx21");
    assert_eq!(s.status, ServerStatus::Running);
    assert_eq!(s.labels.get("tier").map(String::as_str), Some("gold"));
    w.stack.shutdown().await;
}

#[test]
fn actions_are_grouped_by_agent_in_plan_order() {
    let power = |agent: &str, on: bool| {
        let (agent, server_id) = (agent.to_owned(), ServerId(1));
        if on {
            Action::PowerOn { agent, server_id }
        } else {
            Action::PowerOff { agent, server_id }
        }
    };
    let relabel = Action::Relabel {
        agent: "a".into(),
        server_id: ServerId(1),
        from: BTreeMap::new(),
        to: BTreeMap::new(),
    };
    let actions = [power("a", false), power("b", true), relabel.clone()];
    let groups = by_agent(actions.iter().collect());
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0], vec![&actions[0], &relabel]);
    assert_eq!(groups[1], vec![&actions[1]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_fleet_is_planned_but_nothing_is_applied() {
    let w = World::start(StackOptions::default()).await;
    let mut f = fleet(&[("paused", "")]);
    f.settings.suspend = true;
    let p = w.plan(&f).await;
    assert!(p.suspended && p.actions.len() == 1, "{p:?}");
    assert!(
        crate::plan::render::text::render(&p, false).contains("SUSPENDED"),
        "the plan says so"
    );
    let report = w.apply(&p, &f).await;
    assert!(
        matches!(&outcome(&report, "create", "paused").outcome, Outcome::Skipped { reason } if reason.contains("suspended")),
        "{report}"
    );
    assert!(w.stack.hetzner.servers().is_empty());
    assert!(w.stack.tailscale.keys().is_empty(), "no key was minted");
    w.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_keeps_server_labels_and_device_and_spares_a_server_protected_after_planning()
{
    let w = World::start(StackOptions::default()).await;
    let grace = "  quarantineGrace: 1h\n";
    let all = fleet(&[("keep", ""), ("q1", grace), ("q2", grace)]);
    w.converge(&all).await;
    let q1 = w.server("q1").expect("q1");
    let device = w
        .stack
        .tailscale
        .devices()
        .into_iter()
        .find(|d| d.hostname == "q1")
        .expect("q1's device");
    let one = fleet(&[("keep", "")]);
    let p = w.plan(&one).await;
    assert_eq!(p.summary.quarantine, 2, "{p:?}");
    let q2 = w.server("q2").expect("q2");
    let mut protected = q2.labels.clone();
    protected.insert(labels::PROTECT.into(), "true".into());
    w.compute
        .update_server(ServerId(q2.id), None, &protected)
        .await
        .expect("protect by hand");
    let report = w.apply(&p, &one).await;
    assert_eq!(report.done("quarantine"), 1, "{report}");
    assert!(
        matches!(&outcome(&report, "quarantine", "q2").outcome, Outcome::Skipped { reason } if reason.contains("protected")),
        "{report}"
    );
    let held = w
        .server(&labels::quarantined_name("q1", q1.id))
        .expect("q1 renamed aside, not deleted");
    assert_eq!(held.id, q1.id);
    assert_eq!(held.status, ServerStatus::Off);
    for key in [labels::FLEET, labels::AGENT, labels::SUBSCRIPTION] {
        assert_eq!(held.labels.get(key), q1.labels.get(key), "{key} is kept");
    }
    assert!(held.labels.contains_key(labels::QUARANTINED_AT));
    let after = w
        .stack
        .tailscale
        .devices()
        .into_iter()
        .find(|d| d.id == device.id)
        .expect("the device is kept");
    assert!(!after.authorized, "{after:?}");
    assert_eq!(
        w.server("q2").map(|s| s.status),
        Some(ServerStatus::Running),
        "the protected server is untouched"
    );
    w.stack.shutdown().await;
}

mod operations;
