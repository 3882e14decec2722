//! One fleet over three emulated Hetzner projects, each with its own token and a small
//! rate-limit bucket: it converges, stays inside every project's limit and capacity, and never
//! moves or touches what it should not.

use super::Projects;
use crate::apply::{Options, apply};
use crate::cloud::retry::Backoff;
use crate::cloud::{Compute, NewServer, hetzner as hcloud};
use crate::observe::observe;
use crate::plan::render::text;
use crate::plan::{Action, Context, Note, Plan, plan};
use crate::sandbox::stack::{Stack, StackOptions};
use crate::secret::Secret;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tether_emulators::hetzner::{self as emu, HetznerEmulator, RateLimit};
use tether_schema::{Content, Fleet, SourceFile, labels, load_fleet};
use tokio::sync::watch;

fn show(p: &Plan) -> String {
    text::render(p, false)
}

/// Requests per hour each emulated project allows: the bucket starts full and refills by
/// about two requests a minute, so one test run may spend little more than this.
const HOURLY: u32 = 120;
const AGENTS: usize = 30;
const CAPACITY: u32 = 12;

/// The fleet `multi` over `projects` (name, capacity) with `AGENTS` agents `a00`…; `pins`
/// gives some agents a `spec.server.project`.
fn fleet(projects: &[(&str, u32)], pins: &[(&str, &str)]) -> Fleet {
    let list: Vec<String> = projects
        .iter()
        .map(|(n, c)| format!("  - {{name: {n}, capacity: {c}}}\n"))
        .collect();
    let mut files = vec![SourceFile {
        path: "fleet.yaml".into(),
        content: Content::Bytes(
            format!(
                "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: multi}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  policy: {{prune: true, maxDisruptionsPerRun: 10, maxDisruptionPercent: 100}}\n  catalog: {{serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}}\n  projects:\n{}",
                list.concat()
            )
            .into_bytes(),
        ),
    }];
    for i in 0..AGENTS {
        let name = format!("a{i:02}");
        let server = pins
            .iter()
            .find(|(a, _)| *a == name)
            .map_or(String::new(), |(_, p)| {
                format!("  server: {{project: {p}}}\n")
            });
        files.push(SourceFile {
            path: format!("agents/{name}.yaml"),
            content: Content::Bytes(
                format!(
                    "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {name}}}\nspec:\n  subscription: sub_{name}\n  runtime: {{version: \"1.0.0\"}}\n{server}"
                )
                .into_bytes(),
            ),
        });
    }
    load_fleet(&files).expect("valid test fleet")
}

fn client(emulator: &HetznerEmulator) -> hcloud::Client {
    let mut config = hcloud::Config::new(
        emulator.url(),
        Secret::new(emulator.token().expose().to_owned()),
    );
    config.poll_interval = Duration::from_millis(20);
    config.backoff = Backoff {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(500),
        max_retries: 8,
    };
    hcloud::Client::new(config).expect("hetzner client")
}

/// The stack's tailnet and agents, and one emulator per project: the stack's own Hetzner is
/// left idle so every project is built the same way.
struct World {
    stack: Stack,
    projects: Vec<(String, HetznerEmulator)>,
    tailnet: crate::cloud::tailscale::Client,
}

impl World {
    async fn start(names: &[&str]) -> World {
        let stack = Stack::start(StackOptions::default())
            .await
            .expect("emulators");
        let tailnet = stack.tailscale_client().expect("tailscale client");
        let mut w = World {
            stack,
            projects: Vec::new(),
            tailnet,
        };
        for name in names {
            w.add_project(name).await;
        }
        w
    }

    /// Starts another project: its own token, bucket and id range.
    async fn add_project(&mut self, name: &str) {
        let offset = 1_000_000 * (self.projects.len() as u64 + 1);
        let emulator = HetznerEmulator::start(emu::Config {
            rate_limit: RateLimit::per_hour(HOURLY),
            id_offset: offset,
            ..emu::Config::default()
        })
        .await
        .expect("hetzner emulator");
        emulator.set_hooks(self.stack.agents.clone());
        self.projects.push((name.to_owned(), emulator));
    }

    /// A fresh composite, as a daemon start builds it: one client per project.
    fn compute(&self) -> Projects<hcloud::Client> {
        Projects::new(
            self.projects
                .iter()
                .map(|(n, e)| (n.clone(), client(e)))
                .collect(),
        )
    }

    async fn plan(&self, compute: &Projects<hcloud::Client>, fleet: &Fleet) -> Plan {
        let observed = observe(compute, &self.tailnet).await.expect("observe");
        let ctx = Context {
            previous_agents: Some(AGENTS),
            ..Context::default()
        };
        plan(fleet, &observed, &ctx)
    }

    async fn apply(&self, compute: &Projects<hcloud::Client>, plan: &Plan, fleet: &Fleet) {
        let (_stop, stop) = watch::channel(false);
        let options = Options {
            device_poll: Duration::from_millis(20),
            device_timeout: Duration::from_secs(10),
            ..Options::default()
        };
        let report = apply(plan, fleet, compute, &self.tailnet, &options, stop)
            .await
            .expect("accepted plan");
        assert!(report.succeeded(), "{report}");
    }

    /// Every server of every project, as `(project, name, labels, id)`.
    fn servers(&self) -> Vec<(String, String, BTreeMap<String, String>, u64)> {
        self.projects
            .iter()
            .flat_map(|(p, e)| {
                e.servers()
                    .into_iter()
                    .map(move |s| (p.clone(), s.name, s.labels, s.id))
            })
            .collect()
    }

    /// Requests each project's emulator answered, and how many of them were throttled (429).
    fn requests(&self) -> Vec<(String, u64, u64)> {
        self.projects
            .iter()
            .map(|(p, e)| {
                let log = e.requests();
                let throttled = log
                    .snapshot()
                    .iter()
                    .filter(|(k, _)| k.outcome == "429")
                    .map(|(_, n)| n)
                    .sum();
                (p.clone(), log.total(), throttled)
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_over_three_projects_converges_within_each_limit_and_moves_nothing_later() {
    let mut w = World::start(&["eu-1", "eu-2", "eu-3"]).await;
    let three = [("eu-1", CAPACITY), ("eu-2", CAPACITY), ("eu-3", CAPACITY)];
    let f = fleet(&three, &[("a00", "eu-3")]);
    let compute = w.compute();

    let first = w.plan(&compute, &f).await;
    assert_eq!(first.summary.create, AGENTS, "{}", show(&first));
    let text = show(&first);
    assert!(text.contains("label.tether/project: eu-"), "{text}");
    w.apply(&compute, &first, &f).await;

    let servers = w.servers();
    assert_eq!(servers.len(), AGENTS, "{servers:?}");
    let mut per_project: BTreeMap<&str, u32> = BTreeMap::new();
    let mut agents = BTreeSet::new();
    for (project, name, labels, _) in &servers {
        assert_eq!(labels.get(labels::PROJECT), Some(project), "{name}");
        assert!(agents.insert(name.clone()), "{name} exists twice");
        *per_project.entry(project).or_default() += 1;
    }
    assert!(
        servers.iter().any(|(p, n, _, _)| n == "a00" && p == "eu-3"),
        "the pinned agent lives in its project"
    );
    assert_eq!(per_project.len(), 3, "{per_project:?}");
    assert!(
        per_project.values().all(|n| *n <= CAPACITY),
        "{per_project:?}"
    );
    for (project, total, throttled) in w.requests() {
        assert!(total <= u64::from(HOURLY), "{project}: {total} requests");
        assert_eq!(throttled, 0, "{project} was throttled");
    }
    eprintln!(
        "servers per project {per_project:?}; requests per project (limit {HOURLY}/h): {:?}",
        w.requests()
    );

    let again = w.plan(&w.compute(), &f).await;
    assert!(
        again.actions.is_empty(),
        "a second pass is a no-op: {}",
        show(&again)
    );

    w.add_project("eu-4").await;
    let four = fleet(
        &[
            ("eu-1", CAPACITY),
            ("eu-2", CAPACITY),
            ("eu-3", CAPACITY),
            ("eu-4", CAPACITY),
        ],
        &[("a00", "eu-3")],
    );
    let after = w.plan(&w.compute(), &four).await;
    assert!(
        after.actions.is_empty(),
        "a new project moves nothing: {}",
        show(&after)
    );
    assert!(w.projects[3].1.servers().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_project_label_disagrees_with_where_it_lives_is_untouched() {
    let w = World::start(&["eu-1", "eu-2"]).await;
    let two = [("eu-1", CAPACITY * 2), ("eu-2", CAPACITY * 2)];
    let f = fleet(&two, &[]);
    let compute = w.compute();
    let first = w.plan(&compute, &f).await;
    w.apply(&compute, &first, &f).await;

    // Someone plants, in eu-2, a server carrying the fleet's labels but eu-1's project label:
    // a copy of a real agent's labels, under a spare name, and one named like an agent that
    // lives in eu-1.
    let (eu1_agent, eu1_labels) = w
        .servers()
        .into_iter()
        .find(|(p, ..)| p == "eu-1")
        .map(|(_, name, labels, _)| (name, labels))
        .expect("an agent in eu-1");
    let eu2 = compute.member("eu-2").expect("eu-2");
    let mut planted = Vec::new();
    for name in ["planted-spare", eu1_agent.as_str()] {
        let mut labels = eu1_labels.clone();
        labels.insert(labels::AGENT.to_owned(), name.to_owned());
        let created = eu2
            .create_server(&NewServer {
                name: name.to_owned(),
                server_type: "cpx21".into(),
                image: "ubuntu-24.04".into(),
                location: "fsn1".into(),
                ssh_keys: vec![],
                user_data: None,
                labels,
                start_after_create: false,
                project: None,
                public_net: Default::default(),
            })
            .await
            .expect("plant by hand");
        planted.push(created.server.id);
    }

    let p = w.plan(&w.compute(), &f).await;
    assert!(
        p.actions.is_empty(),
        "the planted servers change nothing: {}",
        show(&p)
    );
    let unmanaged = p.notes.iter().find_map(|n| match n {
        Note::Unmanaged { names, .. } => Some(names.clone()),
        _ => None,
    });
    assert_eq!(
        unmanaged,
        Some(vec![eu1_agent.clone(), "planted-spare".to_owned()]),
        "{}",
        show(&p)
    );
    let left: Vec<u64> = w.projects[1].1.servers().iter().map(|s| s.id).collect();
    assert!(planted.iter().all(|id| left.contains(&id.0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinning_an_agent_to_another_project_replaces_its_server_there() {
    let w = World::start(&["eu-1", "eu-2"]).await;
    let two = [("eu-1", CAPACITY * 3), ("eu-2", CAPACITY * 3)];
    let compute = w.compute();
    let before = fleet(&two, &[("a01", "eu-1")]);
    let first = w.plan(&compute, &before).await;
    w.apply(&compute, &first, &before).await;

    let moved = fleet(&two, &[("a01", "eu-2")]);
    let p = w.plan(&compute, &moved).await;
    assert_eq!(p.actions.len(), 1, "{}", show(&p));
    assert!(
        matches!(&p.actions[0], Action::Replace { agent, changes, labels, .. }
            if agent == "a01"
                && changes.iter().any(|c| c.field == "project" && c.to == "eu-2")
                && labels.get(labels::PROJECT).map(String::as_str) == Some("eu-2")),
        "{}",
        show(&p)
    );
    w.apply(&compute, &p, &moved).await;
    let where_: Vec<String> = w
        .servers()
        .into_iter()
        .filter(|(_, name, ..)| name.starts_with("a01"))
        .map(|(project, name, ..)| format!("{project}/{name}"))
        .collect();
    assert_eq!(where_, ["eu-2/a01"]);
    let settled = w.plan(&w.compute(), &moved).await;
    assert!(settled.actions.is_empty(), "{}", show(&settled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_for_unplaced_servers_or_projects_are_refused_not_guessed() {
    let w = World::start(&["eu-1", "eu-2"]).await;
    let compute = w.compute();
    let stranger = compute
        .member("eu-2")
        .expect("eu-2")
        .create_server(&NewServer {
            name: "stranger".into(),
            server_type: "cpx21".into(),
            image: "ubuntu-24.04".into(),
            location: "fsn1".into(),
            ssh_keys: vec![],
            user_data: None,
            labels: BTreeMap::new(),
            start_after_create: false,
            project: None,
            public_net: Default::default(),
        })
        .await
        .expect("create by hand");
    let id = stranger.server.id;
    // Not listed yet: the composite does not know where it lives and sends nothing.
    let refused = compute.delete_server(id).await.expect_err("unplaced id");
    assert!(
        matches!(&refused, hcloud::Error::Unplaced { reason, .. } if reason.contains(&id.to_string())),
        "{refused}"
    );
    let listed = compute.list_servers(None).await.expect("list");
    assert_eq!(
        listed
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.project.as_deref()),
        Some("eu-2")
    );
    assert!(compute.get_server(id).await.expect("get").is_some());
    let new = NewServer {
        name: "nowhere".into(),
        server_type: "cpx21".into(),
        image: "ubuntu-24.04".into(),
        location: "fsn1".into(),
        ssh_keys: vec![],
        user_data: None,
        labels: BTreeMap::new(),
        start_after_create: false,
        project: Some("us-1".into()),
        public_net: Default::default(),
    };
    let refused = compute
        .create_server(&new)
        .await
        .expect_err("unknown project");
    assert!(refused.to_string().contains("`us-1`"), "{refused}");
    let none = NewServer {
        project: None,
        public_net: Default::default(),
        ..new
    };
    assert!(compute.create_server(&none).await.is_err());
    assert_eq!(w.servers().len(), 1, "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_project_passes_every_call_through_and_stamps_nothing() {
    let w = World::start(&["only"]).await;
    let compute = Projects::single(client(&w.projects[0].1));
    let created = compute
        .create_server(&NewServer {
            name: "plain".into(),
            server_type: "cpx21".into(),
            image: "ubuntu-24.04".into(),
            location: "fsn1".into(),
            ssh_keys: vec![],
            user_data: None,
            labels: BTreeMap::new(),
            start_after_create: false,
            project: None,
            public_net: Default::default(),
        })
        .await
        .expect("create without a project");
    assert_eq!(created.server.project, None);
    let again = Projects::single(client(&w.projects[0].1));
    // A fresh composite never listed the server: with one project there is nowhere else to go.
    let server = again
        .get_server(created.server.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(server.project, None);
    let ids = [created.action.id];
    assert_eq!(again.wait_for_actions(&ids).await.expect("wait").len(), 1);
    assert!(again.names().is_empty());
}
