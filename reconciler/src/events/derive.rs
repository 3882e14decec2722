//! The lifecycle events, derived from the status branch's history: each status commit that
//! changed what an agent's `status/<agent>.yaml` (or its runtime in `status/runtime.yaml`)
//! says is compared with what the agent's document said before, and the change becomes at most
//! one event ([`transition`]). Start at [`Deriver::advance`], which walks only the commits it
//! has not seen yet, so the daemon's outbox costs one walk at start and a few commits per pass.
//!
//! # Guarantees
//! - The same status branch gives the same events, with the same ids, sequences and times,
//!   whoever derives them (the daemon that wrote the commits, a daemon that took the lease
//!   over, `tether events list` on a clone): an event's id hashes the status commit, the agent
//!   and the type.
//! - Events are in status-branch order (topological, oldest first), so each agent's are in
//!   its `sequence` order.

use super::{AgentData, Kind, LifecycleEvent};
use crate::audit::commit::STATUS_DIR;
use crate::audit::ledger::{DELETIONS_FILE, DEVICES_FILE, FLEET_FILE, RUNTIME_FILE};
use git2::{Oid, Repository, Sort};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

/// What an agent's status document says that its events follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `phase`.
    pub phase: String,
    /// The server, the device and the runtime, as the event's data carries them.
    pub data: AgentData,
    /// `lastError`.
    pub error: Option<String>,
}

/// One agent as last derived.
#[derive(Debug, Clone, Default)]
struct Known {
    last: Option<Snapshot>,
    ever_ready: bool,
    sequence: u64,
}

/// The events of one status branch, derived incrementally.
#[derive(Debug, Default)]
pub struct Deriver {
    tip: Option<Oid>,
    fleet: String,
    agents: BTreeMap<String, Known>,
    blobs: BTreeMap<String, Oid>,
    runtime: BTreeMap<String, String>,
    runtime_blob: Option<Oid>,
    restarted: bool,
}

impl Deriver {
    /// Nothing seen yet.
    pub fn new() -> Deriver {
        Deriver::default()
    }

    /// Whether the last [`Deriver::advance`] started again from the first commit because the
    /// branch was rewritten: its events replace, not extend, those derived before.
    pub fn restarted(&self) -> bool {
        self.restarted
    }

    /// The status commit derived up to, if any.
    pub fn tip(&self) -> Option<Oid> {
        self.tip
    }

    /// The events of the commits between the last tip derived and `tip` (every commit the
    /// first time), oldest first. When `tip` does not descend from the last tip (the branch
    /// was rewritten), everything is derived again from the start and returned.
    ///
    /// # Errors
    /// A commit, tree or blob of the branch cannot be read.
    pub fn advance(
        &mut self,
        repo: &Repository,
        tip: Oid,
    ) -> Result<Vec<LifecycleEvent>, git2::Error> {
        if self.tip == Some(tip) {
            self.restarted = false;
            return Ok(Vec::new());
        }
        self.restarted = false;
        if let Some(old) = self.tip
            && !repo.graph_descendant_of(tip, old)?
        {
            *self = Deriver::new();
            self.restarted = true;
        }
        let mut walk = repo.revwalk()?;
        walk.push(tip)?;
        if let Some(old) = self.tip {
            walk.hide(old)?;
        }
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
        let mut out = Vec::new();
        for oid in walk {
            let commit = repo.find_commit(oid?)?;
            self.commit(repo, &commit, &mut out)?;
        }
        self.tip = Some(tip);
        Ok(out)
    }

    fn commit(
        &mut self,
        repo: &Repository,
        commit: &git2::Commit<'_>,
        out: &mut Vec<LifecycleEvent>,
    ) -> Result<(), git2::Error> {
        let files = status_blobs(repo, &commit.tree()?);
        if let Some(fleet) = files.get(FLEET_FILE).and_then(|b| yaml(repo, *b))
            && let Some(name) = fleet["fleet"].as_str()
        {
            name.clone_into(&mut self.fleet);
        }
        let runtime_blob = files.get(RUNTIME_FILE).copied();
        let runtime_moved = runtime_blob != self.runtime_blob;
        if runtime_moved {
            self.runtime = runtime_blob
                .and_then(|b| yaml(repo, b))
                .map(|doc| running_versions(&doc))
                .unwrap_or_default();
            self.runtime_blob = runtime_blob;
        }
        let agents: BTreeMap<String, Oid> = files
            .into_iter()
            .filter(|(name, _)| {
                ![FLEET_FILE, DEVICES_FILE, DELETIONS_FILE, RUNTIME_FILE].contains(&name.as_str())
            })
            .filter_map(|(name, blob)| Some((name.strip_suffix(".yaml")?.to_owned(), blob)))
            .collect();
        let mut names: Vec<&String> = agents.keys().collect();
        names.extend(self.blobs.keys().filter(|n| !agents.contains_key(*n)));
        names.sort();
        names.dedup();
        for name in names {
            let blob = agents.get(name).copied();
            let runtime = self.runtime.get(name).cloned();
            let known = self.agents.entry(name.clone()).or_default();
            let unchanged_runtime = known
                .last
                .as_ref()
                .is_none_or(|l| l.data.runtime_version == runtime);
            if blob == self.blobs.get(name).copied() && (!runtime_moved || unchanged_runtime) {
                continue;
            }
            let now = match blob {
                Some(b) => match yaml(repo, b).and_then(|doc| snapshot(name, &doc, runtime)) {
                    Some(s) => Some(s),
                    None => continue,
                },
                None => None,
            };
            for kind in transitions(known.last.as_ref(), now.as_ref(), known.ever_ready) {
                known.sequence += 1;
                let shown = now.as_ref().or(known.last.as_ref());
                out.push(LifecycleEvent {
                    id: event_id(&commit.id().to_string(), name, kind),
                    kind,
                    agent: name.clone(),
                    fleet: self.fleet.clone(),
                    sequence: known.sequence,
                    time: commit.time().seconds(),
                    status_commit: commit.id().to_string(),
                    phase: now.as_ref().map(|s| s.phase.clone()),
                    reason: match kind {
                        Kind::Failed | Kind::Unhealthy => shown.and_then(|s| s.error.clone()),
                        _ => None,
                    },
                    data: shown.map(|s| s.data.clone()).unwrap_or_default(),
                });
            }
            if now.as_ref().is_some_and(|s| s.phase == "Ready") {
                known.ever_ready = true;
            }
            match now {
                Some(s) => known.last = Some(s),
                None => {
                    self.agents.remove(name);
                }
            }
        }
        self.blobs = agents;
        Ok(())
    }
}

/// The events a change of an agent's document from `before` to `now` makes (`None`: the
/// document is absent), in order. An agent the status branch records for the first time past
/// provisioning (a pass created its server and saw it ready, or failed) gets
/// `agent.provisioning` first, so every agent's life starts with one. `ever_ready`: the agent
/// was Ready at some point before.
pub fn transitions(
    before: Option<&Snapshot>,
    now: Option<&Snapshot>,
    ever_ready: bool,
) -> Vec<Kind> {
    let Some(kind) = transition(before, now, ever_ready) else {
        return Vec::new();
    };
    let first_seen_past_provisioning = before.is_none()
        && matches!(
            kind,
            Kind::Ready | Kind::Failed | Kind::Unhealthy | Kind::Recovered
        );
    if first_seen_past_provisioning {
        vec![Kind::Provisioning, kind]
    } else {
        vec![kind]
    }
}

fn transition(before: Option<&Snapshot>, now: Option<&Snapshot>, ever_ready: bool) -> Option<Kind> {
    let was = before.map(|s| s.phase.as_str());
    let Some(now) = now else {
        return before.map(|_| Kind::Deleted);
    };
    let starting = |p: Option<&str>| matches!(p, None | Some("Pending" | "Provisioning"));
    if was == Some(now.phase.as_str()) {
        let before = before?;
        let moved = before.data.server_type != now.data.server_type
            || before.data.runtime_version != now.data.runtime_version
            || before.data.server_id != now.data.server_id;
        return (now.phase == "Ready" && moved).then_some(Kind::Updated);
    }
    match now.phase.as_str() {
        "Pending" | "Provisioning" if was == Some("Quarantined") => Some(Kind::Restored),
        "Pending" | "Provisioning" if starting(was) || was == Some("Deleting") => {
            Some(Kind::Provisioning)
        }
        "Ready" if was == Some("Quarantined") => Some(Kind::Restored),
        "Ready" if starting(was) && !ever_ready => Some(Kind::Ready),
        "Ready" => Some(Kind::Recovered),
        "Degraded" => Some(Kind::Unhealthy),
        "Failed" => Some(Kind::Failed),
        "Quarantined" => Some(Kind::Quarantined),
        _ => None,
    }
}

/// An event's id: stable per transition, whoever derives it.
pub fn event_id(status_commit: &str, agent: &str, kind: Kind) -> String {
    let digest = Sha256::digest(format!("{status_commit}\n{agent}\n{}", kind.as_str()));
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("evt_{hex}")
}

/// `status/` of `tree`: file name → blob.
fn status_blobs(repo: &Repository, tree: &git2::Tree<'_>) -> BTreeMap<String, Oid> {
    let Some(folder) = tree
        .get_path(Path::new(STATUS_DIR))
        .ok()
        .and_then(|e| repo.find_tree(e.id()).ok())
    else {
        return BTreeMap::new();
    };
    folder
        .iter()
        .filter_map(|item| Some((item.name()?.to_owned(), item.id())))
        .collect()
}

fn yaml(repo: &Repository, blob: Oid) -> Option<Yaml> {
    let blob = repo.find_blob(blob).ok()?;
    let text = std::str::from_utf8(blob.content()).ok()?;
    YamlLoader::load_from_str(text).ok()?.into_iter().next()
}

/// `status/runtime.yaml`'s running version per agent.
fn running_versions(doc: &Yaml) -> BTreeMap<String, String> {
    doc["agents"]
        .as_hash()
        .map(|agents| {
            agents
                .iter()
                .filter_map(|(name, a)| {
                    Some((name.as_str()?.to_owned(), a["running"].as_str()?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn strings(list: &Yaml) -> Vec<String> {
    list.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What `status/<agent>.yaml` says, with the agent's running version; `None` when it has no
/// phase.
fn snapshot(agent: &str, doc: &Yaml, runtime_version: Option<String>) -> Option<Snapshot> {
    let server = &doc["server"];
    let device = &doc["device"];
    let public: Vec<String> = strings(&server["publicIps"]);
    let text = |y: &Yaml| y.as_str().map(str::to_owned);
    Some(Snapshot {
        phase: doc["phase"].as_str()?.to_owned(),
        error: text(&doc["lastError"]),
        data: AgentData {
            server_id: server["id"].as_i64().and_then(|i| u64::try_from(i).ok()),
            server_type: text(&server["serverType"]),
            location: text(&server["location"]),
            ipv4: public.iter().find(|ip| !ip.contains(':')).cloned(),
            ipv6: public.iter().find(|ip| ip.contains(':')).cloned(),
            device_id: text(&device["id"]),
            tailnet_ips: strings(&device["tailnetIps"]),
            hostname: server["id"].as_i64().map(|_| agent.to_owned()),
            runtime_version,
        },
    })
}

#[cfg(test)]
#[path = "derive_tests.rs"]
mod tests;
