//! One test per way out of a pass, each showing the record it leaves on a real git status
//! branch, against the emulators over real HTTP: an invalid fleet, an unreadable status
//! branch, an unreadable inventory, a plan Hetzner cannot serve, a changed plan, a refused
//! plan, a suspended fleet, an apply with failures, a clean apply, an apply whose refresh
//! fails, an apply whose status commit fails, and a pass stopped before it started anything.

use super::*;
use crate::audit::STATUS_BRANCH;
use crate::audit::commit::Identity;
use crate::cloud::retry::ManualClock;
use crate::sandbox::stack::{Stack, StackOptions};
use crate::source::fleets::tests::agent;
use git2::{Repository, Signature};
use std::path::Path;
use std::time::{Duration, SystemTime};
use tether_emulators::emulator::FaultRule;
use tether_emulators::hetzner::Latencies;

const FLEET: &str = "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: exits}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  catalog: {serverTypes: [cpx11, cpx21, cpx31, cpx99], locations: [fsn1], images: [ubuntu-24.04]}\n";

/// 2026-11-30T18:00:00Z, the pass's time in every test.
const PASS_TIME: u64 = 1_796_061_600;

/// A fleet repository, its status branch, and the emulators.
struct World {
    stack: Stack,
    dir: tempfile::TempDir,
    identity: Identity,
    clock: ManualClock,
}

impl World {
    async fn start() -> World {
        World::with(StackOptions::default()).await
    }

    async fn with(options: StackOptions) -> World {
        World {
            stack: Stack::start(options).await.expect("emulators"),
            dir: tempfile::tempdir().expect("tempdir"),
            identity: Identity {
                name: "tether".into(),
                email: "tether@exits".into(),
                signer: None,
            },
            clock: ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(PASS_TIME)),
        }
    }

    fn repo(&self) -> &Path {
        self.dir.path()
    }

    /// Commits `fleet` and the agent specs on `main`.
    fn commit(&self, fleet: &str, agents: &[(&str, String)]) {
        let repo = Repository::open(self.repo())
            .or_else(|_| Repository::init(self.repo()))
            .expect("repository");
        let mut folder = repo.treebuilder(None).expect("treebuilder");
        for (name, text) in agents {
            let blob = repo.blob(text.as_bytes()).expect("blob");
            folder.insert(name, blob, 0o100_644).expect("insert");
        }
        let mut root = repo.treebuilder(None).expect("treebuilder");
        let blob = repo.blob(fleet.as_bytes()).expect("blob");
        root.insert("fleet.yaml", blob, 0o100_644).expect("insert");
        root.insert("agents", folder.write().expect("tree"), 0o040_000)
            .expect("insert");
        let tree = repo
            .find_tree(root.write().expect("tree"))
            .expect("find tree");
        let sig = Signature::now("billing", "billing@exits.invalid").expect("signature");
        let parent = repo
            .find_reference("refs/heads/main")
            .ok()
            .and_then(|r| r.peel_to_commit().ok());
        let parents: Vec<_> = parent.iter().collect();
        repo.commit(Some("refs/heads/main"), &sig, &sig, "edit", &tree, &parents)
            .expect("commit");
    }

    fn status(&self, remote: Option<&'static str>) -> StatusTarget<'_> {
        StatusTarget {
            repo: self.repo(),
            remote,
            branch: STATUS_BRANCH,
            source_branch: "main",
            identity: &self.identity,
        }
    }

    /// One pass over `main` with `options` (status on the repository's status branch unless
    /// they say otherwise).
    async fn pass(&self, options: PassOptions<'_>) -> Result<PassOutcome, PassError> {
        let compute = self
            .stack
            .hetzner_client(Duration::from_millis(20))
            .expect("hetzner client");
        let tailnet = self.stack.tailscale_client().expect("tailscale client");
        let snapshot = crate::source::git::read(self.repo(), "main").expect("main");
        let (_stop, stop) = watch::channel(false);
        run(
            Loaded::from_snapshot(&snapshot),
            &compute,
            &tailnet,
            &self.clock,
            &options,
            stop,
        )
        .await
    }

    fn options(&self) -> PassOptions<'_> {
        PassOptions {
            apply: Options {
                device_poll: Duration::from_millis(20),
                device_timeout: Duration::from_secs(10),
                ..Options::default()
            },
            status: Some(self.status(None)),
            ..PassOptions::new("exits-test")
        }
    }

    /// The status branch's tip: its message and `status/fleet.yaml`.
    fn record(&self) -> Option<(String, String)> {
        let repo = Repository::open(self.repo()).expect("repo");
        let tip = repo
            .revparse_single(&format!("refs/heads/{STATUS_BRANCH}"))
            .ok()?
            .peel_to_commit()
            .expect("commit");
        let entry = tip
            .tree()
            .expect("tree")
            .get_path(Path::new("status/fleet.yaml"))
            .expect("status/fleet.yaml");
        let blob = repo.find_blob(entry.id()).expect("blob");
        Some((
            tip.message().unwrap_or_default().to_owned(),
            String::from_utf8_lossy(blob.content()).into_owned(),
        ))
    }

    fn servers(&self) -> Vec<String> {
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

    /// A first clean pass creating agents `a` and `b`: the baseline the other tests start from.
    async fn converged(&self) {
        self.commit(
            FLEET,
            &[
                ("a.yaml", agent("a", "cpx21")),
                ("b.yaml", agent("b", "cpx21")),
            ],
        );
        let first = self.pass(self.options()).await.expect("first pass");
        assert!(first.report.succeeded(), "{}", first.report);
        assert_eq!(self.servers(), ["a", "b"]);
    }
}

/// The `lastError` line of `status/fleet.yaml`.
fn last_error(fleet_yaml: &str) -> &str {
    fleet_yaml
        .lines()
        .find(|l| l.starts_with("lastError:"))
        .unwrap_or("")
}

#[tokio::test]
async fn an_invalid_fleet_is_recorded_and_nothing_is_read_or_changed() {
    let world = World::start().await;
    world.converged().await;
    world.commit(
        FLEET,
        &[
            ("a.yaml", agent("a", "cpx21")),
            ("b.yaml", "kind: Agent\nsever: {}\n".into()),
        ],
    );
    let error = world
        .pass(world.options())
        .await
        .expect_err("invalid fleet");
    assert!(matches!(error, PassError::Load(_)), "{error}");
    let (message, fleet) = world.record().expect("a record");
    assert!(message.starts_with("reconcile "), "{message}");
    assert!(message.contains("failed, nothing changed"), "{message}");
    assert!(last_error(&fleet).contains("b.yaml"), "{fleet}");
    assert!(fleet.contains("agents: 2"), "the baseline stays: {fleet}");
    assert_eq!(world.servers(), ["a", "b"]);
    world.stack.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_status_branch_changes_nothing_and_says_the_record_could_not_be_written() {
    let world = World::start().await;
    world.converged().await;
    let before = world.record();
    world.commit(FLEET, &[("a.yaml", agent("a", "cpx21"))]);
    let options = PassOptions {
        status: Some(world.status(Some("/nonexistent/tether-exits.git"))),
        ..world.options()
    };
    let error = world.pass(options).await.expect_err("unreachable branch");
    assert!(
        matches!(error.cause(), Some(PassError::Ledger(_))),
        "{error}"
    );
    assert!(matches!(error, PassError::Unrecorded { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains("nothing was changed"), "{text}");
    assert!(
        text.contains("status record could not be written"),
        "{text}"
    );
    assert_eq!(
        world.record(),
        before,
        "the local copy is not written alone"
    );
    assert_eq!(world.servers(), ["a", "b"], "nothing was quarantined");
    world.stack.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_inventory_is_recorded_and_nothing_is_changed() {
    let world = World::start().await;
    world.converged().await;
    world.commit(FLEET, &[("a.yaml", agent("a", "cpx21"))]);
    world.stack.hetzner.faults().set(vec![FaultRule {
        method: Some("GET".into()),
        path_prefix: "/v1/servers".into(),
        error_rate: 1.0,
        error_statuses: vec![403],
        ..FaultRule::everywhere()
    }]);
    let error = world.pass(world.options()).await.expect_err("unreadable");
    assert!(matches!(error, PassError::Observe(_)), "{error}");
    let (_, fleet) = world.record().expect("a record");
    assert!(last_error(&fleet).contains("Hetzner inventory"), "{fleet}");
    world.stack.hetzner.faults().set(Vec::new());
    assert_eq!(world.servers(), ["a", "b"]);
    world.stack.shutdown().await;
}

#[tokio::test]
async fn a_type_hetzner_does_not_offer_is_recorded_and_nothing_is_changed() {
    let world = World::start().await;
    world.converged().await;
    world.commit(
        FLEET,
        &[
            ("a.yaml", agent("a", "cpx99")),
            ("b.yaml", agent("b", "cpx21")),
        ],
    );
    let error = world.pass(world.options()).await.expect_err("not offered");
    assert!(matches!(error, PassError::NotOffered(_)), "{error}");
    let (_, fleet) = world.record().expect("a record");
    assert!(last_error(&fleet).contains("cpx99"), "{fleet}");
    assert_eq!(world.servers(), ["a", "b"]);
    world.stack.shutdown().await;
}

#[tokio::test]
async fn a_plan_that_changed_since_its_approval_is_recorded_and_not_applied() {
    let world = World::start().await;
    world.converged().await;
    world.commit(
        FLEET,
        &[
            ("a.yaml", agent("a", "cpx21")),
            ("b.yaml", agent("b", "cpx21")),
            ("c.yaml", agent("c", "cpx21")),
        ],
    );
    let options = PassOptions {
        expect_plan_hash: Some("0000000000000000"),
        ..world.options()
    };
    let error = world.pass(options).await.expect_err("changed plan");
    assert!(matches!(error, PassError::PlanChanged { .. }), "{error}");
    let (_, fleet) = world.record().expect("a record");
    assert!(last_error(&fleet).contains("plan changed"), "{fleet}");
    assert!(fleet.contains("agents: 2"), "the baseline stays: {fleet}");
    assert_eq!(world.servers(), ["a", "b"], "c is not created");
    world.stack.shutdown().await;
}

#[tokio::test]
async fn a_refused_plan_is_recorded_with_its_reasons_and_nothing_is_changed() {
    let world = World::start().await;
    world.converged().await;
    world.commit(FLEET, &[]);
    let error = world.pass(world.options()).await.expect_err("refused");
    assert!(matches!(error, PassError::Refused(_)), "{error}");
    let (message, fleet) = world.record().expect("a record");
    assert!(message.contains("refused, nothing changed"), "{message}");
    assert!(last_error(&fleet).contains("refused"), "{fleet}");
    assert_eq!(world.servers(), ["a", "b"]);
    world.stack.shutdown().await;
}

#[tokio::test]
async fn a_suspended_fleet_records_its_suspension_and_skips_every_action() {
    let world = World::start().await;
    world.converged().await;
    let suspended = FLEET.replace("spec:\n", "spec:\n  suspend: true\n");
    world.commit(
        &suspended,
        &[
            ("a.yaml", agent("a", "cpx21")),
            ("b.yaml", agent("b", "cpx21")),
            ("c.yaml", agent("c", "cpx21")),
        ],
    );
    let outcome = world.pass(world.options()).await.expect("suspended pass");
    assert!(outcome.plan.suspended);
    assert_eq!(outcome.report.counts(), (0, 0, 1), "{}", outcome.report);
    let (_, fleet) = world.record().expect("a record");
    assert!(fleet.contains("suspended: true"), "{fleet}");
    assert_eq!(world.servers(), ["a", "b"]);
    world.stack.shutdown().await;
}

#[tokio::test]
async fn an_apply_with_failed_actions_is_recorded_with_each_failure() {
    let world = World::start().await;
    world.converged().await;
    world.commit(
        FLEET,
        &[
            ("a.yaml", agent("a", "cpx21")),
            ("b.yaml", agent("b", "cpx21")),
            ("c.yaml", agent("c", "cpx21")),
        ],
    );
    world.stack.hetzner.faults().set(vec![FaultRule {
        method: Some("POST".into()),
        path_prefix: "/v1/servers".into(),
        error_rate: 1.0,
        error_statuses: vec![422],
        ..FaultRule::everywhere()
    }]);
    let outcome = world.pass(world.options()).await.expect("a pass that ran");
    world.stack.hetzner.faults().set(Vec::new());
    assert_eq!(outcome.report.counts().1, 1, "{}", outcome.report);
    let status_commit = outcome.status_commit.expect("a status commit");
    let (message, fleet) = world.record().expect("a record");
    assert!(message.contains("1 failed"), "{message}");
    assert!(last_error(&fleet).contains("create c"), "{fleet}");
    let repo = Repository::open(world.repo()).expect("repo");
    let tip = repo.revparse_single(STATUS_BRANCH).expect("tip").id();
    assert_eq!(tip.to_string(), status_commit);
    world.stack.shutdown().await;
}

#[tokio::test]
async fn a_clean_apply_is_recorded_with_its_provider_action_ids() {
    let world = World::start().await;
    world.commit(FLEET, &[("a.yaml", agent("a", "cpx21"))]);
    let outcome = world.pass(world.options()).await.expect("pass");
    assert!(outcome.report.succeeded(), "{}", outcome.report);
    assert!(outcome.breaches.is_empty(), "{:?}", outcome.breaches);
    let create = &outcome.report.actions[0];
    assert!(!create.action_ids.is_empty(), "{create:?}");
    let (message, fleet) = world.record().expect("a record");
    assert!(message.starts_with("apply "), "{message}");
    for id in &create.action_ids {
        assert!(message.contains(&id.to_string()), "{id} in {message}");
    }
    assert_eq!(last_error(&fleet), "");
    assert!(!fleet.contains("brokenInvariants"), "{fleet}");
    world.stack.shutdown().await;
}

#[tokio::test]
async fn a_pass_stopped_before_it_started_anything_records_every_action_skipped() {
    let world = World::start().await;
    world.converged().await;
    world.commit(
        FLEET,
        &[
            ("a.yaml", agent("a", "cpx21")),
            ("b.yaml", agent("b", "cpx21")),
            ("c.yaml", agent("c", "cpx21")),
        ],
    );
    let compute = world
        .stack
        .hetzner_client(Duration::from_millis(20))
        .expect("hetzner");
    let tailnet = world.stack.tailscale_client().expect("tailscale");
    let snapshot = crate::source::git::read(world.repo(), "main").expect("main");
    let (_stopped, stop) = watch::channel(true);
    let options = world.options();
    let outcome = run(
        Loaded::from_snapshot(&snapshot),
        &compute,
        &tailnet,
        &world.clock,
        &options,
        stop,
    )
    .await
    .expect("a pass that ran");
    assert_eq!(outcome.report.counts(), (0, 0, 1), "{}", outcome.report);
    let (message, _) = world.record().expect("a record");
    assert!(message.contains("1 skipped"), "{message}");
    assert_eq!(world.servers(), ["a", "b"]);
    world.stack.shutdown().await;
}

#[tokio::test]
async fn a_failed_refresh_is_recorded_with_the_apply_report_and_its_action_ids() {
    let latencies = Latencies {
        stop: Duration::from_millis(400),
        shutdown: Duration::from_millis(400),
        ..Latencies::default()
    };
    let world = World::with(StackOptions {
        latencies,
        ..StackOptions::default()
    })
    .await;
    world.converged().await;
    let off = agent("b", "cpx21").replace(
        "  server: {type: cpx21}\n",
        "  server: {type: cpx21}\n  power: off\n",
    );
    world.commit(FLEET, &[("a.yaml", agent("a", "cpx21")), ("b.yaml", off)]);
    // Once the power-off is sent, the device listing the refresh needs starts failing.
    let stack = &world.stack;
    let faulted = async {
        let hetzner = stack.hetzner.requests();
        while hetzner.count("POST", "/v1/servers/{id}/actions") == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        stack.tailscale.faults().set(vec![FaultRule {
            method: Some("GET".into()),
            path_prefix: "/api/v2/tailnet/".into(),
            error_rate: 1.0,
            error_statuses: vec![403],
            ..FaultRule::everywhere()
        }]);
    };
    let (error, ()) = tokio::join!(world.pass(world.options()), faulted);
    let error = error.expect_err("the refresh fails");
    stack.tailscale.faults().set(Vec::new());
    let PassError::Refresh { outcome, .. } = &error else {
        panic!("expected a refresh failure, got {error}");
    };
    let power = &outcome.report.actions[0];
    assert_eq!(power.kind, "power-off", "{}", outcome.report);
    assert!(!power.action_ids.is_empty(), "{power:?}");
    assert!(outcome.status_commit.is_some(), "recorded");
    let (message, fleet) = world.record().expect("a record");
    for id in &power.action_ids {
        assert!(message.contains(&id.to_string()), "{id} in {message}");
    }
    assert!(
        last_error(&fleet).contains("could not be read again"),
        "{fleet}"
    );
    world.stack.shutdown().await;
}

#[tokio::test]
async fn a_failed_status_commit_returns_the_report_and_the_next_record_carries_it() {
    let world = World::start().await;
    world.converged().await;
    world.commit(
        FLEET,
        &[
            ("a.yaml", agent("a", "cpx21")),
            ("b.yaml", agent("b", "cpx21")),
            ("c.yaml", agent("c", "cpx21")),
        ],
    );
    // Another writer holds the status branch's ref lock.
    let lock = world
        .repo()
        .join(".git/refs/heads")
        .join(format!("{STATUS_BRANCH}.lock"));
    std::fs::write(&lock, "").expect("lock");
    let before = world.record();
    let error = world.pass(world.options()).await.expect_err("unrecorded");
    let outcome = error
        .outcome()
        .expect("the outcome travels with the error")
        .clone();
    assert!(matches!(error, PassError::Unrecorded { .. }), "{error}");
    assert!(outcome.report.succeeded(), "{}", outcome.report);
    assert_eq!(world.servers(), ["a", "b", "c"], "the apply happened");
    assert_eq!(world.record(), before, "nothing was written");
    let ids: Vec<String> = outcome.report.actions[0]
        .action_ids
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(!ids.is_empty(), "{}", outcome.report);

    std::fs::remove_file(&lock).expect("unlock");
    let carried = [outcome.report];
    let options = PassOptions {
        unrecorded: &carried,
        ..world.options()
    };
    let next = world.pass(options).await.expect("next pass");
    assert!(next.status_commit.is_some());
    let (message, fleet) = world.record().expect("a record");
    assert!(message.contains("could not be written"), "{message}");
    for id in &ids {
        assert!(message.contains(id), "{id} in {message}");
    }
    assert!(fleet.contains("agents: 3"), "{fleet}");
    world.stack.shutdown().await;
}

#[tokio::test]
async fn a_deauthorized_device_takes_its_agent_out_of_ready_so_no_invariant_is_broken() {
    let world = World::start().await;
    world.converged().await;
    let tailnet = world.stack.tailscale_client().expect("tailscale client");
    let device = tailnet
        .list_devices(&crate::cloud::tailscale::DeviceQuery::default())
        .await
        .expect("devices")
        .into_iter()
        .find(|d| d.hostname == "a")
        .expect("a's device");
    tailnet
        .set_authorized(&device.id, false)
        .await
        .expect("deauthorized");
    let outcome = world.pass(world.options()).await.expect("pass");
    assert_eq!(outcome.breaches, [], "the record does not claim Ready");
    let (_, fleet) = world.record().expect("a record");
    assert!(fleet.contains("Degraded: 1"), "{fleet}");
    assert!(!fleet.contains("brokenInvariants"), "{fleet}");

    tailnet
        .set_authorized(&device.id, true)
        .await
        .expect("authorized again");
    let healed = world.pass(world.options()).await.expect("pass");
    assert_eq!(healed.breaches, []);
    let (_, fleet) = world.record().expect("a record");
    assert!(!fleet.contains("Degraded"), "{fleet}");
    world.stack.shutdown().await;
}
