//! Runtime updates in place: the daemon's side of the on-VM agent. [`Service`] holds what each
//! agent should run, the hash of its credential and its last report; [`api`] serves it to the
//! agents over the tailnet; [`rollout`] moves a new runtime through health-gated waves;
//! [`crate::audit::runtime`] writes `status/runtime.yaml`. The agent itself is [`crate::agent_client`].
//!
//! A restarted daemon knows its agents from the servers' labels before its first pass
//! ([`seed_from_servers`]) and serves each what its `tether/runtime` label shows
//! ([`Service::sync`], [`history`]); [`refusals`] logs the API's refusals
//! in aggregate; [`limit`] rate-limits each agent's reports; [`settle`] decides what
//! `status/runtime.yaml` shows, so a flapping VM does not grow the status branch.
//!
//! Decisions: `docs/decisions/023-on-vm-agent.md`, `docs/decisions/024-health-gated-waves.md`,
//! `docs/decisions/033-rollouts-across-restarts.md`.

pub mod api;
pub mod credential;
pub mod history;
pub mod limit;
pub mod refusals;
pub mod rollout;
pub mod settle;
pub mod wire;

use crate::cloud::Server;
use crate::plan::runtime::Halted;
use crate::secret::Secret;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};
use tether_schema::{Agent, Fleet, labels};
use wire::{Desired, Report};

/// How the agent API and rollouts are configured (the daemon config's `agentApi` block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the API listens: the daemon host's tailnet address in production, loopback in the
    /// sandbox. Never a public address.
    pub listen: SocketAddr,
    /// The API's base URL as the VMs reach it (written into their cloud-init).
    pub url: String,
    /// Where VMs download the `tether-agent` binary from.
    pub binary_url: String,
    /// How often agents poll.
    pub poll: Duration,
    /// How long a wave may take to report the new version healthy.
    pub wave_timeout: Duration,
}

impl Config {
    /// The configuration once `listen` is bound at `addr`. With port 0 (the sandbox) the system
    /// picked the port, so the URLs the VMs are given become the bound address's.
    pub fn bound_at(mut self, addr: SocketAddr) -> Config {
        if self.listen.port() == 0 {
            self.url = format!("http://{addr}");
            self.binary_url = format!("http://{addr}/tether-agent");
        }
        self.listen = addr;
        self
    }
}

/// The last report of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    /// What it said.
    pub report: Report,
    /// When.
    pub at: SystemTime,
}

#[derive(Debug, Default)]
struct Entry {
    /// The hash on the server's `tether/agent-key` label: what survives a restart.
    key: Option<String>,
    /// A rotated credential's hash, accepted beside `key` until the label carries it.
    next: Option<String>,
    /// Whether `next` has authenticated a request: only then is it labelled, so a rotation
    /// whose answer never reached the agent leaves the old credential in force.
    next_used: bool,
    desired: Option<Desired>,
    reported: Option<Reported>,
    /// The rate limit on its reports.
    bucket: limit::Bucket,
    /// Since when its reports have said the same version and health.
    steady_since: Option<SystemTime>,
    /// What `status/runtime.yaml` last showed of it.
    shown: Option<settle::Shown>,
}

impl Entry {
    /// Takes the server's label as the credential in force; a rotation it now carries is done.
    fn follow_label(&mut self, label: Option<&String>) {
        if label.is_some() && self.next.as_ref() == label {
            self.next = None;
            self.next_used = false;
        }
        self.key = label.cloned();
    }
}

#[derive(Debug, Default)]
struct State {
    agents: BTreeMap<String, Entry>,
    rollout: Option<rollout::Record>,
    /// `tether/runtime` hashes already looked for in the fleet's history
    /// ([`Service::lagging`]), so a label no commit explains is looked for once.
    searched: BTreeSet<String>,
    /// The API's refusals since they were last logged.
    refusals: refusals::Tally,
}

/// The daemon's runtime state, shared by the API and the passes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    config: Arc<Config>,
    state: Arc<Mutex<State>>,
}

impl Service {
    /// An empty service; [`Service::sync`] fills it from the fleet and the servers.
    pub fn new(config: Config) -> Service {
        Service {
            config: Arc::new(config),
            state: Arc::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What `agent`'s spec asks the VM to run.
    pub fn desired_of(&self, agent: &Agent) -> Desired {
        Desired {
            version: agent.runtime.version.as_str().to_owned(),
            env: agent
                .runtime
                .env
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect(),
            poll_seconds: self.config.poll.as_secs().max(1),
        }
    }

    /// Reads the servers after observing: each agent's credential hash from `tether/agent-key`
    /// (unless a rotation the label does not show yet is pending), and, for an agent whose
    /// server is labelled with its spec's runtime, that runtime as the one to serve. An agent
    /// mid-rollout or rolled back keeps what the rollout serves it; one served nothing (a
    /// restarted daemon) is [`Service::lagging`].
    pub fn sync(&self, fleet: &Fleet, servers: &[Server]) {
        let mut state = self.lock();
        let now = SystemTime::now();
        if let Some(tally) = state.refusals.take(now) {
            refusals::log(&tally, now);
        }
        for server in fleet_servers(fleet.settings.name.as_str(), servers) {
            let Some(name) = server.labels.get(labels::AGENT) else {
                continue;
            };
            let entry = state.agents.entry(name.clone()).or_default();
            entry.follow_label(server.labels.get(labels::AGENT_KEY));
            if let Some(agent) = fleet.agents.get(name.as_str())
                && server.labels.get(labels::RUNTIME) == Some(&labels::runtime_hash(agent))
            {
                entry.desired = Some(self.desired_of(agent));
            }
        }
    }

    /// The agents served nothing whose server's `tether/runtime` label shows a runtime not yet
    /// looked for: after a restart, the agents a rollout has not reached or rolled back. Their
    /// labels are marked as looked for; [`Service::serve_as_labelled`] serves them from the
    /// fleet commits that explain them.
    pub fn lagging(&self, fleet: &Fleet, servers: &[Server]) -> BTreeSet<String> {
        let mut state = self.lock();
        let mut lagging = BTreeSet::new();
        for server in fleet_servers(fleet.settings.name.as_str(), servers) {
            let (Some(name), Some(label)) = (
                server.labels.get(labels::AGENT),
                server.labels.get(labels::RUNTIME),
            ) else {
                continue;
            };
            let served = state.agents.get(name).is_some_and(|e| e.desired.is_some());
            if !served && !state.searched.contains(label) {
                lagging.insert((name.clone(), label.clone()));
            }
        }
        let (agents, searched): (BTreeSet<String>, Vec<String>) = lagging.into_iter().unzip();
        state.searched.extend(searched);
        agents
    }

    /// Serves each of `lagging` whose server's `tether/runtime` label is the runtime `old` (an
    /// earlier commit of the fleet) gave it that runtime, and takes it out of `lagging`: what
    /// it last ran well, so a restarted daemon's rollback restores it.
    pub fn serve_as_labelled(
        &self,
        old: &Fleet,
        servers: &[Server],
        lagging: &mut BTreeSet<String>,
    ) {
        let mut state = self.lock();
        for server in fleet_servers(old.settings.name.as_str(), servers) {
            let Some(name) = server.labels.get(labels::AGENT) else {
                continue;
            };
            let Some(agent) = old.agents.get(name.as_str()) else {
                continue;
            };
            if lagging.contains(name)
                && server.labels.get(labels::RUNTIME) == Some(&labels::runtime_hash(agent))
            {
                let desired = self.desired_of(agent);
                state.agents.entry(name.clone()).or_default().desired = Some(desired);
                lagging.remove(name);
            }
        }
    }

    /// Takes each agent's credential hash from its server's `tether/agent-key` label, for an
    /// agent the service does not know yet: what a restarted daemon does before its first pass,
    /// so its agents are answered at once instead of refused until the pass. Only servers
    /// labelled `tether/fleet=<fleet>`; what to serve them comes with the first pass.
    pub fn seed(&self, fleet: &str, servers: &[Server]) -> usize {
        let mut state = self.lock();
        let mut seeded = 0;
        for server in fleet_servers(fleet, servers) {
            let (Some(name), Some(key)) = (
                server.labels.get(labels::AGENT),
                server.labels.get(labels::AGENT_KEY),
            ) else {
                continue;
            };
            let entry = state.agents.entry(name.clone()).or_default();
            if entry.key.is_none() {
                entry.key = Some(key.clone());
                seeded += 1;
            }
        }
        seeded
    }

    /// Records a new agent's credential hash and what it runs (at create).
    pub fn enrol(&self, agent: &Agent, key: String) {
        let desired = self.desired_of(agent);
        let mut state = self.lock();
        let entry = state
            .agents
            .entry(agent.name.as_str().to_owned())
            .or_default();
        entry.key = Some(key);
        entry.next = None;
        entry.next_used = false;
        entry.desired = Some(desired);
        entry.reported = None;
    }

    /// Whether `credential` is `agent`'s: the labelled one, or a rotated one not labelled yet
    /// (which is then marked used, to be labelled by the next pass).
    pub fn authenticates(&self, agent: &str, credential: &Secret<String>) -> bool {
        let mut state = self.lock();
        let Some(entry) = state.agents.get_mut(agent) else {
            return false;
        };
        if entry
            .key
            .as_deref()
            .is_some_and(|key| credential::verify(credential, key))
        {
            return true;
        }
        let next = entry
            .next
            .as_deref()
            .is_some_and(|key| credential::verify(credential, key));
        entry.next_used |= next;
        next
    }

    /// The agent whose credential `credential` is, if any.
    pub fn owner_of(&self, credential: &Secret<String>) -> Option<String> {
        self.lock()
            .agents
            .iter()
            .find(|(_, e)| {
                [e.key.as_deref(), e.next.as_deref()]
                    .into_iter()
                    .flatten()
                    .any(|k| credential::verify(credential, k))
            })
            .map(|(name, _)| name.clone())
    }

    /// What `agent` should run now.
    pub fn desired(&self, agent: &str) -> Option<Desired> {
        self.lock()
            .agents
            .get(agent)
            .and_then(|e| e.desired.clone())
    }

    /// Serves `desired` to `agent` from now on; returns what was served before.
    pub fn serve(&self, agent: &str, desired: Option<Desired>) -> Option<Desired> {
        let mut state = self.lock();
        let entry = state.agents.entry(agent.to_owned()).or_default();
        std::mem::replace(&mut entry.desired, desired)
    }

    /// Counts a report of `agent` at `now` against its rate limit ([`limit`]).
    ///
    /// # Errors
    /// How long the agent should wait, when it is over the limit.
    pub fn admit(&self, agent: &str, now: SystemTime) -> Result<(), Duration> {
        self.lock()
            .agents
            .entry(agent.to_owned())
            .or_default()
            .bucket
            .take(now)
    }

    /// Records a report (a heartbeat) of `agent`.
    pub fn record(&self, agent: &str, report: Report, at: SystemTime) {
        let mut state = self.lock();
        let entry = state.agents.entry(agent.to_owned()).or_default();
        let same = entry.reported.as_ref().is_some_and(|r| {
            (&r.report.version, r.report.healthy) == (&report.version, report.healthy)
        });
        if !same {
            entry.steady_since = Some(at);
        }
        entry.reported = Some(Reported { report, at });
    }

    /// What `status/runtime.yaml` shows of `agent` at `now`, given what its reports say
    /// (`proposed`): [`settle::settle`] with the settle time of three poll intervals.
    pub fn shown(&self, agent: &str, proposed: settle::Shown, now: SystemTime) -> settle::Shown {
        let window = self.config.poll.max(Duration::from_secs(1)) * 3;
        let mut state = self.lock();
        let entry = state.agents.entry(agent.to_owned()).or_default();
        let shown = settle::settle(
            entry.shown.as_ref(),
            proposed,
            entry.steady_since,
            now,
            window,
        );
        entry.shown = Some(shown.clone());
        shown
    }

    /// The last report of `agent`.
    pub fn reported(&self, agent: &str) -> Option<Reported> {
        self.lock()
            .agents
            .get(agent)
            .and_then(|e| e.reported.clone())
    }

    /// Adds `key` as `agent`'s next credential hash. Both the labelled credential and the new
    /// one are accepted until the server's label carries the new one: the label moves
    /// ([`Service::pending_keys`]) only after the new credential was used, so neither a lost
    /// answer nor a daemon restart before the relabel locks the agent out (the old credential
    /// still works; rotate again).
    pub fn rotate(&self, agent: &str, key: String) {
        let mut state = self.lock();
        let entry = state.agents.entry(agent.to_owned()).or_default();
        entry.next = Some(key);
        entry.next_used = false;
    }

    /// Rotated credential hashes that have been used and are not yet on their server's
    /// `tether/agent-key` label.
    pub fn pending_keys(&self) -> Vec<(String, String)> {
        self.lock()
            .agents
            .iter()
            .filter(|(_, e)| e.next_used)
            .filter_map(|(name, e)| Some((name.clone(), e.next.clone()?)))
            .collect()
    }

    /// Counts a refusal of the API at `now`; the counts to log, when a line is due
    /// ([`refusals::Tally::count`]).
    pub fn refused(&self, refusal: refusals::Refusal, now: SystemTime) -> Option<refusals::Tally> {
        self.lock().refusals.count(refusal, now)
    }

    /// The current rollout's record.
    pub fn rollout(&self) -> Option<rollout::Record> {
        self.lock().rollout.clone()
    }

    /// Replaces the rollout's record.
    pub fn set_rollout(&self, record: rollout::Record) {
        self.lock().rollout = Some(record);
    }

    /// The halted rollout, if the current one is.
    pub fn halted(&self) -> Option<Halted> {
        self.lock()
            .rollout
            .as_ref()
            .and_then(rollout::Record::halted)
    }
}

/// Seeds `service` with the credential hashes on `fleet`'s servers ([`Service::seed`]): what
/// the daemon runs as soon as its agent API listens, before the first pass. A failed listing
/// is logged; the first pass then fills the service as before.
pub async fn seed_from_servers<C: crate::cloud::Compute>(
    compute: &C,
    service: &Service,
    fleet: &str,
) {
    let selector = format!("{}={fleet}", labels::FLEET);
    match compute.list_servers(Some(&selector)).await {
        Ok(servers) => {
            let seeded = service.seed(fleet, &servers);
            tracing::info!(
                agents = seeded,
                "agent API: credentials read from the servers' tether/agent-key labels; their agents are answered before the first pass"
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "agent API: listing the servers for their credentials failed; agents are answered after the first pass");
        }
    }
}

/// The servers labelled `tether/fleet=<fleet>`.
fn fleet_servers<'a>(fleet: &'a str, servers: &'a [Server]) -> impl Iterator<Item = &'a Server> {
    servers
        .iter()
        .filter(move |s| s.labels.get(labels::FLEET).map(String::as_str) == Some(fleet))
}

#[cfg(test)]
mod tests;
