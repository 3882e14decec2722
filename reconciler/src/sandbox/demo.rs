//! `tether sandbox --demo`: tether's whole job in under a minute, narrated. Billing adds agents,
//! tether plans and applies, a subscription ends (its VM is quarantined), a VM is deleted by
//! hand and repaired, Stripe webhooks arrive out of order ([`stripe`]), and a commit that would
//! delete everything is refused; then a summary and the status branch's log.
//!
//! Everything is real but local: the emulators over HTTP on 127.0.0.1, a bare git repository in
//! a temporary folder, the same code paths as `tether agent`, `tether plan` and `tether apply`.

mod report;
mod stripe;

pub use report::Summary;

use super::stack::{Stack, StackOptions};
use crate::apply::Options;
use crate::audit::{STATUS_BRANCH, commit::Identity};
use crate::billing::{self, AgentRequest, Change};
use crate::cloud::retry::TokioClock;
use crate::cloud::{hetzner, tailscale};
use crate::plan::render::text;
use crate::reconcile::{self, PassError, PassOptions, StatusTarget};
use crate::source;
use crate::source::fleets::Loaded;
use git2::{Repository, Signature};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use tether_emulators::hetzner::Latencies;

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Setting up failed.
    #[error("demo setup: {0}")]
    Setup(String),
    /// A step did not end as the script expects.
    #[error("demo step `{step}` went wrong: {message}")]
    Step {
        /// The step.
        step: &'static str,
        /// What happened.
        message: String,
    },
}

fn setup<E: std::fmt::Display>(e: E) -> DemoError {
    DemoError::Setup(e.to_string())
}

fn step<E: std::fmt::Display>(step: &'static str) -> impl Fn(E) -> DemoError {
    move |e| DemoError::Step {
        step,
        message: e.to_string(),
    }
}

/// The five subscriptions billing adds: (subscription, customer, name, type, location, plan).
const SUBSCRIPTIONS: [(&str, &str, &str, &str, &str, &str); 5] = [
    (
        "sub_1OaBcAcmeProd",
        "cus_acme",
        "acme-prod",
        "cpx31",
        "fsn1",
        "pro",
    ),
    (
        "sub_1OaBcAcmeStage",
        "cus_acme",
        "acme-staging",
        "cpx11",
        "nbg1",
        "starter",
    ),
    (
        "sub_1OaBcGlobexSup",
        "cus_globex",
        "globex-support",
        "cpx31",
        "ash",
        "business",
    ),
    (
        "sub_1OaBcGlobexSal",
        "cus_globex",
        "globex-sales",
        "cpx21",
        "ash",
        "business",
    ),
    (
        "sub_1OaBcGlobexOps",
        "cus_globex",
        "globex-ops",
        "cpx21",
        "hel1",
        "starter",
    ),
];

struct Demo<'a, W: Write> {
    out: &'a mut W,
    stack: Stack,
    compute: hetzner::Client,
    tailnet: tailscale::Client,
    repo: std::path::PathBuf,
    identity: Identity,
    actions_done: usize,
    agents_applied: usize,
    started: Instant,
    color: bool,
    /// The product's event endpoint, and the events derived for it so far.
    app: super::app::App,
    events: crate::events::derive::Deriver,
}

/// Runs the scripted scenario against fresh emulators, narrating into `out` (headings and plans
/// coloured when `color`). `fleet_dir` holds the example fleet (its `fleet.yaml` seeds the
/// repository).
///
/// # Errors
/// Setup failures, or a step that does not end as the script expects.
pub async fn run(
    fleet_dir: &Path,
    out: &mut impl Write,
    color: bool,
) -> Result<Summary, DemoError> {
    let started = Instant::now();
    let latencies = Latencies {
        create: Duration::from_millis(400),
        start: Duration::from_millis(200),
        stop: Duration::from_millis(150),
        shutdown: Duration::from_millis(150),
        reboot: Duration::from_millis(150),
        change_type: Duration::from_millis(300),
        delete: Duration::from_millis(200),
        firewall: Duration::from_millis(100),
    };
    let stack = Stack::start(StackOptions {
        latencies,
        boot_delay: Duration::from_millis(300),
        ..StackOptions::default()
    })
    .await
    .map_err(setup)?;
    let compute = stack
        .hetzner_client(Duration::from_millis(100))
        .map_err(setup)?;
    let tailnet = stack.tailscale_client().map_err(setup)?;
    let dir = tempfile::tempdir().map_err(setup)?;
    let repo = dir.path().join("fleet.git");
    seed(&repo, fleet_dir)?;
    let mut demo = Demo {
        out,
        stack,
        compute,
        tailnet,
        repo,
        identity: Identity {
            name: "billing".into(),
            email: "billing@example.com".into(),
            signer: None,
        },
        actions_done: 0,
        agents_applied: 0,
        started,
        color,
        app: super::app::App::start().await.map_err(setup)?,
        events: crate::events::derive::Deriver::new(),
    };
    let summary = demo.script().await;
    demo.stack.shutdown().await;
    summary
}

/// A bare repository whose `main` holds the example `fleet.yaml` and an empty `agents/`.
fn seed(repo: &Path, fleet_dir: &Path) -> Result<(), DemoError> {
    let r = Repository::init_bare(repo).map_err(setup)?;
    let fleet = std::fs::read(fleet_dir.join("fleet.yaml")).map_err(|e| {
        DemoError::Setup(format!("reading {}/fleet.yaml: {e}", fleet_dir.display()))
    })?;
    let mut agents = r.treebuilder(None).map_err(setup)?;
    agents
        .insert(".gitkeep", r.blob(b"").map_err(setup)?, 0o100_644)
        .map_err(setup)?;
    let mut root = r.treebuilder(None).map_err(setup)?;
    root.insert("fleet.yaml", r.blob(&fleet).map_err(setup)?, 0o100_644)
        .map_err(setup)?;
    root.insert("agents", agents.write().map_err(setup)?, 0o040_000)
        .map_err(setup)?;
    let tree = r.find_tree(root.write().map_err(setup)?).map_err(setup)?;
    let sig = Signature::now("Platform Team", "platform@example.com").map_err(setup)?;
    r.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "Fleet settings for aura-prod",
        &tree,
        &[],
    )
    .map_err(setup)?;
    Ok(())
}

impl<W: Write> Demo<'_, W> {
    fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    fn heading(&mut self, n: u32, title: &str) {
        let secs = self.started.elapsed().as_secs_f32();
        let line = format!("== {n}. {title}  [{secs:.1}s]");
        let line = if self.color {
            format!("\x1b[1m{line}\x1b[0m")
        } else {
            line
        };
        let _ = writeln!(self.out, "\n{line}");
    }

    async fn script(&mut self) -> Result<Summary, DemoError> {
        self.heading(1, "An emulated cloud and a fleet repository");
        let (h, t, r) = (
            self.stack.hetzner.url(),
            self.stack.tailscale.url(),
            self.repo.display().to_string(),
        );
        let app = self.app.url().to_owned();
        self.say(&format!("Hetzner Cloud API   {h}\nTailscale API       {t}\nfleet repository    {r} (branch main: fleet.yaml, no agents yet)\nthe app's events    {app} (signed lifecycle events, verified on receipt)"));

        self.heading(2, "Billing adds five subscriptions (tether agent add)");
        for (i, (sub, customer, name, server_type, location, plan)) in
            SUBSCRIPTIONS.iter().enumerate()
        {
            let req = AgentRequest {
                subscription: (*sub).into(),
                customer: (*customer).into(),
                name: Some((*name).into()),
                server_type: Some((*server_type).into()),
                location: Some((*location).into()),
                plan: Some((*plan).into()),
                runtime_version: Some("1.4.2".into()),
                idempotency_key: Some(format!("evt_demo_add_{i}")),
                ..AgentRequest::default()
            };
            let change = billing::add(&self.target(), &req).map_err(step("billing adds agents"))?;
            let shown = match change {
                Change::Committed { commit, path } => {
                    format!("committed {} {path}", &commit.to_string()[..7])
                }
                Change::Unchanged { reason } => format!("unchanged: {reason}"),
            };
            self.say(&format!("$ tether agent add --subscription {sub} --customer {customer} --name {name} --type {server_type} --location {location} --plan {plan} --runtime-version 1.4.2 --idempotency-key evt_demo_add_{i}\n  {shown}"));
        }

        self.heading(3, "tether plan");
        let (_, _, plan) = reconcile::plan_only(
            self.loaded(),
            &self.compute,
            &self.tailnet,
            &TokioClock,
            &PassOptions::new("sandbox-demo"),
        )
        .await
        .map_err(step("plan"))?;
        let rendered = text::render(&plan, self.color);
        self.say(rendered.trim_end());

        self.heading(
            4,
            "tether apply --auto-approve: servers are created and their devices join the tailnet",
        );
        self.apply("apply").await?;
        self.inventory();

        self.heading(
            5,
            "A subscription ends (tether agent remove) and tether quarantines its VM: powered off, device deauthorized, deleted after 24h unless the subscription comes back",
        );
        let change = billing::remove(
            &self.target(),
            "sub_1OaBcGlobexOps",
            Some("evt_demo_cancel"),
        )
        .map_err(step("subscription ends"))?;
        let shown = match change {
            Change::Committed { commit, path } => {
                format!("committed {} (removes {path})", &commit.to_string()[..7])
            }
            Change::Unchanged { reason } => format!("unchanged: {reason}"),
        };
        self.say(&format!(
            "$ tether agent remove --subscription sub_1OaBcGlobexOps\n  {shown}"
        ));
        self.apply("apply after cancellation").await?;
        self.inventory();

        self.heading(
            6,
            "Someone deletes acme-staging's VM by hand in the Hetzner console",
        );
        let victim = self
            .stack
            .hetzner
            .servers()
            .into_iter()
            .find(|s| s.name == "acme-staging")
            .ok_or_else(|| DemoError::Step {
                step: "delete by hand",
                message: "acme-staging has no server".into(),
            })?;
        self.stack.hetzner.delete_server(victim.id);
        self.say(&format!(
            "server {} (acme-staging) deleted outside tether; its device is now offline",
            victim.id
        ));

        self.heading(7, "The next reconcile detects the drift and repairs it");
        self.apply("repair drift").await?;
        self.inventory();

        self.stripe(8).await?;

        self.heading(9, "A bad commit removes every agent spec: tether refuses");
        self.commit_without_agents()?;
        let before = self.stack.hetzner.servers().len();
        match self.pass().await {
            Err(PassError::Refused(e)) => self.say(&format!(
                "refused: {e}\nnothing was deleted: {} servers before, {} after",
                before,
                self.stack.hetzner.servers().len()
            )),
            Err(e) => {
                return Err(DemoError::Step {
                    step: "refuse a mass deletion",
                    message: e.to_string(),
                });
            }
            Ok(_) => {
                return Err(DemoError::Step {
                    step: "refuse a mass deletion",
                    message: "the plan was applied".into(),
                });
            }
        }

        self.summary()
    }

    fn target(&self) -> billing::Target<'_> {
        billing::Target {
            repo: &self.repo,
            base: None,
            branch: "main",
            push: None,
            identity: &self.identity,
        }
    }

    /// `main` of the fleet repository, loaded (or why it could not be read).
    fn loaded(&self) -> Loaded {
        source::git::read(&self.repo, "main").map_or_else(
            |e| Loaded {
                commit: None,
                fleet: Err(tether_schema::LoadError {
                    diagnostics: vec![tether_schema::Diagnostic::new(
                        "",
                        None,
                        tether_schema::Code::Unreadable,
                        e.to_string(),
                    )],
                }),
            },
            |snapshot| Loaded::from_snapshot(&snapshot),
        )
    }

    async fn pass(&mut self) -> Result<reconcile::PassOutcome, PassError> {
        let identity = Identity {
            name: "tether".into(),
            email: "tether@example.com".into(),
            signer: None,
        };
        let options = PassOptions {
            apply: Options {
                concurrency: 8,
                device_poll: Duration::from_millis(100),
                device_timeout: Duration::from_secs(30),
                ..Options::default()
            },
            status: Some(StatusTarget {
                repo: &self.repo,
                remote: None,
                branch: STATUS_BRANCH,
                source_branch: "main",
                identity: &identity,
            }),
            ..PassOptions::new("sandbox-demo")
        };
        let (_stop, stop) = tokio::sync::watch::channel(false);
        let loaded = self.loaded();
        reconcile::run(
            loaded,
            &self.compute,
            &self.tailnet,
            &TokioClock,
            &options,
            stop,
        )
        .await
    }

    async fn apply(&mut self, name: &'static str) -> Result<(), DemoError> {
        let outcome = self.pass().await.map_err(step(name))?;
        if !outcome.report.succeeded() {
            return Err(DemoError::Step {
                step: name,
                message: outcome.report.to_string(),
            });
        }
        self.actions_done += outcome.report.counts().0;
        self.agents_applied = outcome.fleet.agents.len();
        let report = outcome.report.to_string();
        self.say(report.trim_end());
        if let Some(commit) = outcome.status_commit {
            self.say(&format!(
                "status commit {} on {STATUS_BRANCH}",
                &commit[..7]
            ));
        }
        self.app_receives().await
    }

    /// Delivers the lifecycle events of status commits not delivered yet to the app, signed, as
    /// `tether run` does, and says what the app received.
    pub(super) async fn app_receives(&mut self) -> Result<(), DemoError> {
        let repo = Repository::open(&self.repo).map_err(step("events"))?;
        let tip = repo
            .refname_to_id(&format!("refs/heads/{STATUS_BRANCH}"))
            .map_err(step("events"))?;
        let new = self.events.advance(&repo, tip).map_err(step("events"))?;
        let (endpoint, client) = (self.app.endpoint(), reqwest::Client::new());
        let before = self.app.received().len();
        for event in &new {
            let now = crate::billing::serve::signature::unix(std::time::SystemTime::now());
            crate::daemon::events::post::post(&client, &endpoint, event, now)
                .await
                .map_err(step("events"))?;
        }
        for event in self.app.received().iter().skip(before) {
            let line = super::app::describe(event);
            self.say(&line);
        }
        Ok(())
    }

    /// Commits a tree without any agent spec on `main`, as a broken export would.
    fn commit_without_agents(&mut self) -> Result<(), DemoError> {
        let r = Repository::open(&self.repo).map_err(step("bad commit"))?;
        let tip = r
            .revparse_single("main")
            .and_then(|o| o.peel_to_commit())
            .map_err(step("bad commit"))?;
        let mut root = r
            .treebuilder(Some(&tip.tree().map_err(step("bad commit"))?))
            .map_err(step("bad commit"))?;
        let mut agents = r.treebuilder(None).map_err(step("bad commit"))?;
        agents
            .insert(
                ".gitkeep",
                r.blob(b"").map_err(step("bad commit"))?,
                0o100_644,
            )
            .map_err(step("bad commit"))?;
        root.insert(
            "agents",
            agents.write().map_err(step("bad commit"))?,
            0o040_000,
        )
        .map_err(step("bad commit"))?;
        let tree = r
            .find_tree(root.write().map_err(step("bad commit"))?)
            .map_err(step("bad commit"))?;
        let sig = Signature::now("export-job", "export@example.com").map_err(step("bad commit"))?;
        let id = r
            .commit(
                Some("refs/heads/main"),
                &sig,
                &sig,
                "Nightly billing export (empty by mistake)",
                &tree,
                &[&tip],
            )
            .map_err(step("bad commit"))?;
        self.say(&format!(
            "commit {} \"Nightly billing export (empty by mistake)\" removes all {} specs",
            &id.to_string()[..7],
            self.agents_applied
        ));
        Ok(())
    }
}
