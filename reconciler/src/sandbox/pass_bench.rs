//! The pass benchmark: the daemon's whole reconcile pass at N agents, as `tether run` makes it
//! with a git source: the fleet from the [`FleetCache`], the status branch read, the inventory
//! read from the emulators, plan, apply, the refresh, the status documents and the status commit
//! through git2. Start at [`measure`]: it seeds the emulators with a converged fleet at once
//! (no create request per server), records it with one pass, then times no-op passes, bare
//! inventory reads ([`observe`]) and one pass after a commit that changes 1 % of the agents
//! (half of them new, half relabelled). `cargo bench -p tether --bench pass` prints it.
//!
//! The emulators run on a runtime of their own, so the CPU time of the pass's thread is
//! tether's alone (decoding the reads included, serving them not).

use super::stack::{Stack, StackOptions};
use crate::apply::Options;
use crate::audit::STATUS_BRANCH;
use crate::audit::commit::Identity;
use crate::audit::ledgers::LedgerCache;
use crate::cloud::retry::TokioClock;
use crate::observe::{ObserveError, observe};
use crate::reconcile::{self, PassError, PassOptions, StatusTarget};
use crate::source::fleets::FleetCache;
use std::time::{Duration, Instant};
use tether_emulators::hetzner::{RateLimit, Seed};
use tether_schema::{Content, SourceFile, labels, load_fleet};

/// Why a benchmark run failed.
#[derive(Debug, thiserror::Error)]
pub enum PassBenchError {
    /// The emulators or a runtime could not start.
    #[error("starting the emulators: {0}")]
    Start(#[from] std::io::Error),
    /// A client for the emulators could not be built.
    #[error("building a client for the emulators: {0}")]
    Client(String),
    /// The generated fleet did not load, or could not be seeded (a bug in this module).
    #[error("the generated fleet of {agents} agents: {message}")]
    Fleet {
        /// Agents asked for.
        agents: usize,
        /// What went wrong.
        message: String,
    },
    /// Writing the fleet repository failed.
    #[error("the bench's fleet repository: {0}")]
    Git(#[from] git2::Error),
    /// A pass failed.
    #[error(transparent)]
    Pass(#[from] PassError),
    /// A bare inventory read failed.
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// A pass did not do what the benchmark expects of it.
    #[error("the {pass} pass at {agents} agents: {found}")]
    Unexpected {
        /// Which pass.
        pass: &'static str,
        /// Agents in the fleet.
        agents: usize,
        /// What it did instead.
        found: String,
    },
}

/// Wall time and the CPU time of the thread that ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cost {
    /// Wall time.
    pub wall: Duration,
    /// CPU time of the pass's thread.
    pub cpu: Duration,
}

/// What [`measure`] found at one fleet size: medians over the runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassCosts {
    /// Agents (and servers, and devices).
    pub agents: usize,
    /// A bare inventory read: servers, devices and the catalog.
    pub reads: Cost,
    /// A pass with nothing to do (no status commit).
    pub no_op: Cost,
    /// A pass after a commit changing 1 % of the agents: creates and relabels, and a status
    /// commit.
    pub change: Cost,
    /// Agents the change created.
    pub created: usize,
    /// Agents the change relabelled.
    pub relabelled: usize,
}

/// Seeds `agents` converged agents, records them with one pass, then times `runs` no-op
/// passes, `runs` bare reads and one change pass.
///
/// # Errors
/// See [`PassBenchError`]; a no-op pass that acts or commits, or a change pass that does not
/// do exactly the change, is [`PassBenchError::Unexpected`].
pub fn measure(agents: usize, runs: usize) -> Result<PassCosts, PassBenchError> {
    let emulators = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let options = StackOptions {
        server_limit: agents * 2 + 100,
        ..StackOptions::default()
    };
    let stack = emulators.block_on(Stack::start(options))?;
    stack.hetzner.set_rate_limit(RateLimit {
        limit: u32::MAX,
        refill_per_second: f64::from(u32::MAX),
    });
    let measured = run_against(&stack, agents, runs.max(1));
    emulators.block_on(stack.shutdown());
    measured
}

fn run_against(stack: &Stack, agents: usize, runs: usize) -> Result<PassCosts, PassBenchError> {
    let repo = tempfile::tempdir()?;
    let git = git2::Repository::init_bare(repo.path())?;
    let files = fleet_files(agents, 0);
    commit(&git, &files, "bench fleet")?;
    seed(stack, agents, &files)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = |e: &dyn std::fmt::Display| PassBenchError::Client(e.to_string());
    let _guard = rt.enter();
    let compute = stack
        .hetzner_client(Duration::from_millis(10))
        .map_err(|e| client(&e))?;
    let tailnet = stack.tailscale_client().map_err(|e| client(&e))?;
    let cache = FleetCache::new();
    let ledgers = LedgerCache::new();
    let identity = Identity::default();
    let pass = |run: &str| -> Result<reconcile::PassOutcome, PassBenchError> {
        let options = PassOptions {
            apply: Options {
                device_poll: Duration::from_millis(20),
                device_timeout: Duration::from_secs(120),
                ..Options::default()
            },
            status: Some(StatusTarget {
                repo: repo.path(),
                remote: None,
                branch: STATUS_BRANCH,
                source_branch: "main",
                identity: &identity,
            }),
            fleets: Some(&cache),
            ledgers: Some(&ledgers),
            ..PassOptions::new(run)
        };
        let loaded = cache
            .read(repo.path(), "main")
            .map_err(|e| PassBenchError::Fleet {
                agents,
                message: e.to_string(),
            })?;
        let (_stop, stop) = tokio::sync::watch::channel(false);
        Ok(rt.block_on(reconcile::run(
            loaded,
            &compute,
            &tailnet,
            &TokioClock,
            &options,
            stop,
        ))?)
    };
    let first = pass("bench-record")?;
    if first.status_commit.is_none() || !first.report.actions.is_empty() {
        return Err(unexpected("recording", agents, &first));
    }
    let mut no_op = Vec::with_capacity(runs);
    for i in 0..runs {
        let (outcome, cost) = timed(|| pass(&format!("bench-noop-{i}")));
        let outcome = outcome?;
        if outcome.status_commit.is_some() || !outcome.report.actions.is_empty() {
            return Err(unexpected("no-op", agents, &outcome));
        }
        no_op.push(cost);
    }
    let mut reads = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (observed, cost) = timed(|| rt.block_on(observe(&compute, &tailnet)));
        observed?;
        reads.push(cost);
    }
    let changed = (agents / 100).max(2);
    let created = changed / 2;
    let relabelled = changed - created;
    commit(
        &git,
        &fleet_files(agents, changed),
        "bench: 1 % of the agents change",
    )?;
    let (outcome, change) = timed(|| pass("bench-change"));
    let outcome = outcome?;
    let done = (
        outcome.report.done("create"),
        outcome.report.done("relabel"),
    );
    if done != (created, relabelled)
        || !outcome.report.succeeded()
        || outcome.status_commit.is_none()
    {
        return Err(unexpected("change", agents, &outcome));
    }
    Ok(PassCosts {
        agents,
        reads: median(reads),
        no_op: median(no_op),
        change,
        created,
        relabelled,
    })
}

fn unexpected(pass: &'static str, agents: usize, o: &reconcile::PassOutcome) -> PassBenchError {
    PassBenchError::Unexpected {
        pass,
        agents,
        found: format!(
            "status commit {:?}; {} action(s): {}",
            o.status_commit,
            o.report.actions.len(),
            crate::audit::message::summary_line(&o.report)
        ),
    }
}

/// Runs `f`, timing it on the wall clock and on this thread's CPU clock.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Cost) {
    let (cpu, wall) = (thread_cpu(), Instant::now());
    let out = f();
    let cost = Cost {
        wall: wall.elapsed(),
        cpu: thread_cpu().saturating_sub(cpu),
    };
    (out, cost)
}

/// The median of each measure.
fn median(mut costs: Vec<Cost>) -> Cost {
    let mid = costs.len() / 2;
    costs.sort_by_key(|c| c.wall);
    let wall = costs[mid].wall;
    costs.sort_by_key(|c| c.cpu);
    Cost {
        wall,
        cpu: costs[mid].cpu,
    }
}

/// Time this thread has spent on a CPU (Linux: `/proc/thread-self/schedstat`; zero elsewhere).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// A fleet named `bench` of `agents` agents, with `changed` of them changed: the first half of
/// those are new agents, the second half existing agents relabelled.
fn fleet_files(agents: usize, changed: usize) -> Vec<SourceFile> {
    let mut files = vec![SourceFile {
        path: "fleet.yaml".into(),
        content: Content::Bytes(
            b"apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: bench}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  policy: {prune: true}\n  catalog: {serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}\n".to_vec(),
        ),
    }];
    let created = changed / 2;
    let relabelled = changed - created;
    let agent = |name: String, i: usize, plan: &str| {
        SourceFile {
        path: format!("agents/{name}.yaml"),
        content: Content::Bytes(
            format!(
                "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {name}, labels: {{customer: cus_{i:05}, plan: {plan}}}}}\nspec:\n  subscription: sub_{i:05}\n  runtime: {{version: \"1.4.2\"}}\n"
            )
            .into_bytes(),
        ),
    }
    };
    for i in 0..agents {
        let plan = if i < relabelled { "max" } else { "pro" };
        files.push(agent(format!("agent-{i:05}"), i, plan));
    }
    for i in agents..agents + created {
        files.push(agent(format!("agent-new-{i:05}"), i, "pro"));
    }
    files
}

/// Commits `files` on `main` of the bare repository `git`, on top of its tip.
fn commit(git: &git2::Repository, files: &[SourceFile], message: &str) -> Result<(), git2::Error> {
    let mut agents = git.treebuilder(None)?;
    let mut root = git.treebuilder(None)?;
    for file in files {
        let Content::Bytes(bytes) = &file.content else {
            continue;
        };
        let blob = git.blob(bytes)?;
        match file.path.strip_prefix("agents/") {
            Some(name) => agents.insert(name, blob, 0o100_644)?,
            None => root.insert(&file.path, blob, 0o100_644)?,
        };
    }
    root.insert("agents", agents.write()?, 0o040_000)?;
    let tree = git.find_tree(root.write()?)?;
    let sig = git2::Signature::now("bench", "bench@tether.invalid")?;
    let parent = git
        .find_reference("refs/heads/main")
        .and_then(|r| r.peel_to_commit())
        .ok();
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    git.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        message,
        &tree,
        &parents,
    )?;
    Ok(())
}

/// Seeds a running server and its online device for every agent of `files`, labelled as the
/// fleet wants them: a converged fleet.
fn seed(stack: &Stack, agents: usize, files: &[SourceFile]) -> Result<(), PassBenchError> {
    let fleet_err = |message: String| PassBenchError::Fleet { agents, message };
    let fleet = load_fleet(files).map_err(|e| fleet_err(format!("{e:?}")))?;
    let tags: Vec<String> = fleet.settings.tags.iter().map(|t| t.to_string()).collect();
    for agent in fleet.agents.values() {
        let name = agent.name.as_str();
        let id = stack
            .hetzner
            .seed_running(Seed {
                name,
                server_type: agent.server.server_type.as_str(),
                location: agent.server.location.as_str(),
                image: agent.server.image.as_str(),
                labels: labels::server_labels(agent, &fleet.settings),
            })
            .map_err(fleet_err)?;
        stack.tailscale.seed_device(name, &tags, id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_fleet_passes_without_acting_and_a_change_of_1_percent_does_exactly_it() {
        let c = measure(200, 1).expect("the recorded fleet passes quietly, the change is applied");
        assert_eq!((c.agents, c.created, c.relabelled), (200, 1, 1));
    }
}
