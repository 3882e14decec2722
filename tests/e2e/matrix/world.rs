//! One case's world: the emulators (real HTTP), a fleet repository with its status branch, a
//! foreign server and device that look like the fleet's, and passes of tether's real reconcile
//! loop run in-process, each as a fresh process would run it (new clients, nothing carried over)
//! and each at its own injected time.

use super::inject::{Injected, Script};
use crate::common::commit_all;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tether::apply::Options;
use tether::audit::STATUS_BRANCH;
use tether::audit::commit::Identity;
use tether::cloud::retry::ManualClock;
use tether::cloud::tailscale::{NewAuthKey, Tailnet};
use tether::cloud::{Compute, NewServer};
use tether::reconcile::{self, PassError, PassOptions, PassOutcome, StatusTarget};
use tether::sandbox::stack::{Stack, StackOptions};
use tether::source::fleets::Loaded;
use tether_emulators::hetzner::Latencies;
use tether_schema::labels;
use tether_schema::names::TailnetTag;
use tokio::sync::watch;

/// The fleet's `metadata.name`.
pub const FLEET: &str = "matrix";
/// The one agent every operation is about.
pub const AGENT: &str = "alpha";
/// The fleet a foreign server belongs to.
pub const FOREIGN_FLEET: &str = "elsewhere";
/// The tag every agent device carries (the foreign one too).
pub const TAG: &str = "tag:agent";
/// Injected time between two passes: more than every heal deadline and backoff of the fleet,
/// far less than its quarantine grace.
pub const PASS_INTERVAL: Duration = Duration::from_secs(600);

/// The agent's spec, as far as the operations change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Server type.
    pub server_type: &'static str,
    /// Location.
    pub location: &'static str,
    /// `power: on`.
    pub on: bool,
}

impl Spec {
    /// The spec every operation starts from.
    pub const BASE: Spec = Spec {
        server_type: "cpx11",
        location: "fsn1",
        on: true,
    };
}

/// The fleet's policy knobs the operations set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `quarantineGrace`.
    pub grace: &'static str,
    /// `heal.rekeys`.
    pub rekeys: u32,
    /// `heal.powerCycles`.
    pub power_cycles: u32,
}

/// The foreign server and device, as seeded.
#[derive(Debug, Clone)]
pub struct Foreign {
    /// The server's id.
    pub server: u64,
    /// Its device's node id.
    pub device: String,
}

/// How a pass ended.
#[derive(Debug)]
pub enum PassEnd {
    /// It ran to its end.
    Done(Box<Result<PassOutcome, PassError>>),
    /// The process was killed during it.
    Killed,
}

impl PassEnd {
    /// Whether the pass ran to its end with nothing to do.
    pub fn quiet(&self) -> bool {
        matches!(self, PassEnd::Done(r) if r.as_ref().as_ref().is_ok_and(|o| o.plan.actions.is_empty()))
    }

    /// One line: what the pass did or why it stopped.
    pub fn summary(&self) -> String {
        match self {
            PassEnd::Killed => "killed".to_owned(),
            PassEnd::Done(r) => match r.as_ref() {
                Ok(o) if o.plan.actions.is_empty() => "quiet".to_owned(),
                Ok(o) => o
                    .report
                    .actions
                    .iter()
                    .map(|a| {
                        a.to_string()
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(e) => format!("error: {e}"),
            },
        }
    }
}

/// The emulators, the fleet repository and the foreign resources of one case.
pub struct World {
    /// Both emulators.
    pub stack: Stack,
    repo: tempfile::TempDir,
    policy: Policy,
    started: SystemTime,
    passes: u32,
    device_timeout: Duration,
    /// The foreign server and device.
    pub foreign: Foreign,
}

/// Emulator timing: every action instant; cloud-init enrols 100 ms after boot, so that, as in
/// the world (where boot takes half a minute), a pass that revokes the key of a create it gave
/// up on does so before the VM could use it, every time.
pub fn instant() -> StackOptions {
    StackOptions {
        latencies: Latencies::uniform(Duration::ZERO),
        boot_delay: Duration::from_millis(100),
        ..StackOptions::default()
    }
}

impl World {
    /// Starts the emulators with `options`, seeds the foreign server and device, and writes the
    /// fleet with `policy` and no agent.
    pub async fn start(options: StackOptions, policy: Policy) -> World {
        // Long enough for a create, its start and its cloud-init, four times over.
        let device_timeout = Duration::from_secs(1)
            + (options.latencies.create + options.latencies.start + options.boot_delay) * 4;
        let stack = Stack::start(options).await.expect("emulators");
        let foreign = seed_foreign(&stack).await;
        let repo = tempfile::tempdir().expect("temp dir for the fleet repository");
        let world = World {
            stack,
            repo,
            policy,
            started: SystemTime::now(),
            passes: 0,
            device_timeout,
            foreign,
        };
        world.commit(None, "fleet without agents");
        world
    }

    /// The fleet repository.
    pub fn repo(&self) -> &Path {
        self.repo.path()
    }

    /// Writes `fleet.yaml` and the agent's spec (`None`: none) and commits them on `main`.
    pub fn commit(&self, spec: Option<Spec>, message: &str) {
        let dir = self.repo.path();
        let Policy {
            grace,
            rekeys,
            power_cycles,
        } = self.policy;
        let fleet = format!(
            "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: {FLEET}}}\nspec:\n  defaults: {{server: {{type: cpx11, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"{TAG}\"]}}\n  policy:\n    prune: true\n    quarantineGrace: \"{grace}\"\n    maxDeletionsPerRun: 100\n    maxDeletionPercent: 100\n    maxDeletionsPerHour: 1000\n    maxDisruptionPercent: 100\n    heal: {{enrolmentDeadline: 1m, offlineThreshold: 1m, observations: 1, backoff: 1m, rekeys: {rekeys}, powerCycles: {power_cycles}}}\n  catalog: {{serverTypes: [cpx11, cpx21], locations: [fsn1, nbg1], images: [ubuntu-24.04]}}\n"
        );
        std::fs::write(dir.join("fleet.yaml"), fleet).expect("write fleet.yaml");
        let folder = dir.join("agents");
        std::fs::create_dir_all(&folder).expect("agents/");
        std::fs::write(folder.join(".gitkeep"), "").expect("agents/.gitkeep");
        let path = folder.join(format!("{AGENT}.yaml"));
        match spec {
            Some(s) => std::fs::write(
                &path,
                format!(
                    "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {AGENT}}}\nspec:\n  subscription: sub_{AGENT}\n  server: {{type: {}, location: {}}}\n  runtime: {{version: \"1.0.0\"}}\n  power: {}\n",
                    s.server_type,
                    s.location,
                    if s.on { "on" } else { "off" }
                ),
            )
            .expect("write the agent's spec"),
            None => {
                if path.exists() {
                    std::fs::remove_file(&path).expect("remove the agent's spec");
                }
            }
        }
        commit_all(dir, "main", message);
    }

    /// The injected time of the next pass.
    fn next_now(&mut self) -> ManualClock {
        let at = self.started + PASS_INTERVAL * self.passes;
        self.passes += 1;
        ManualClock::new(at)
    }

    /// One pass of `main` as a freshly started process runs it, its provider calls following
    /// `script`.
    pub async fn pass(&mut self, script: &Arc<Script>) -> PassEnd {
        let now = self.next_now();
        let run = format!("matrix-{}", self.passes);
        let compute = Injected::new(
            self.stack
                .hetzner_client(Duration::from_millis(5))
                .expect("hetzner client"),
            script.clone(),
        );
        let tailnet = Injected::new(
            self.stack.tailscale_client().expect("tailscale client"),
            script.clone(),
        );
        let snapshot = tether::source::git::read(self.repo(), "main").expect("read main");
        let identity = Identity {
            name: "tether".into(),
            email: "tether@matrix.invalid".into(),
            signer: None,
        };
        let options = PassOptions {
            allow_shrink: true,
            apply: Options {
                concurrency: 8,
                device_timeout: self.device_timeout,
                device_poll: Duration::from_millis(10),
                ..Options::default()
            },
            status: Some(StatusTarget {
                repo: self.repo.path(),
                remote: None,
                branch: STATUS_BRANCH,
                source_branch: "main",
                identity: &identity,
            }),
            ..PassOptions::new(&run)
        };
        let (_stop, stop) = watch::channel(false);
        tokio::select! {
            biased;
            () = script.killed() => PassEnd::Killed,
            result = reconcile::run(Loaded::from_snapshot(&snapshot), &compute, &tailnet, &now, &options, stop) => {
                PassEnd::Done(Box::new(result))
            }
        }
    }

    /// Fault-free passes until one is quiet (at most `max`); the passes' summaries.
    pub async fn settle(&mut self, max: usize) -> Vec<String> {
        let mut log = Vec::new();
        for _ in 0..max {
            let end = self.pass(&Script::clean()).await;
            log.push(end.summary());
            if end.quiet() {
                break;
            }
        }
        log
    }
}

/// Sleeps into the next second of the wall clock. Both APIs give times to the second, and
/// device ownership compares a device's join with its server's creation: in the world a VM
/// joins many seconds after its create and a billing change comes seconds after that, so a
/// case keeps such events in different seconds too.
pub async fn next_second() {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after the epoch");
    tokio::time::sleep(Duration::from_nanos(u64::from(
        1_000_000_000 - now.subsec_nanos(),
    )))
    .await;
}

/// A server of another fleet, running, labelled as if it were this fleet's agent, with a
/// device in the tailnet that has the agent's hostname and tag: tether must never touch either.
async fn seed_foreign(stack: &Stack) -> Foreign {
    let compute = stack
        .hetzner_client(Duration::from_millis(5))
        .expect("hetzner client");
    let labels: BTreeMap<String, String> = [
        (labels::FLEET, FOREIGN_FLEET),
        (labels::AGENT, AGENT),
        (labels::SUBSCRIPTION, "sub_elsewhere"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let created = compute
        .create_server(&NewServer {
            name: format!("{FOREIGN_FLEET}-{AGENT}"),
            server_type: "cpx11".into(),
            image: "ubuntu-24.04".into(),
            location: "fsn1".into(),
            ssh_keys: Vec::new(),
            user_data: None,
            labels,
            start_after_create: true,
            project: None,
            public_net: Default::default(),
        })
        .await
        .expect("create the foreign server");
    let mut actions = vec![created.action.id];
    actions.extend(created.next_actions.iter().map(|a| a.id));
    compute
        .wait_for_actions(&actions)
        .await
        .expect("the foreign server starts");
    let tailnet = stack.tailscale_client().expect("tailscale client");
    let tag = TailnetTag::parse(TAG).expect("a tag");
    let key = tailnet
        .create_auth_key(&NewAuthKey {
            description: format!("{FOREIGN_FLEET} {AGENT}"),
            tags: vec![tag],
            expiry: Duration::from_secs(3600),
        })
        .await
        .expect("mint the foreign key");
    let device = stack
        .tailscale
        .enroll(
            &tether_emulators::Token::new(key.secret.expose().clone()),
            AGENT,
            created.server.id.0,
        )
        .expect("enrol the foreign device");
    // Both APIs give times to the second: the fleet's servers must be created in a later
    // second than the foreign device joined, as they are in the world (a create takes longer).
    let joined = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after the epoch");
    tokio::time::sleep(Duration::from_nanos(u64::from(
        1_000_000_000 - joined.subsec_nanos(),
    )))
    .await;
    Foreign {
        server: created.server.id.0,
        device,
    }
}
