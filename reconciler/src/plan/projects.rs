//! Which fleet project (`spec.projects`) each new server goes to, and the `tether/project`
//! label of existing ones. Pure: decided from the fleet and the observed servers alone.
//!
//! # Guarantees
//! - A server stays in the project it lives in: nothing here moves one. Only a pin
//!   (`spec.server.project`) that differs from where the server lives moves it, as a
//!   replacement ([`super::fields::replacement_changes`]).
//! - An unpinned agent's project is chosen by rendezvous hashing of its name over the projects
//!   with room left, so adding a project never changes where an existing agent lives and moves
//!   only the choice of new agents whose highest score it gets.
//! - No create is planned into a project whose live plus planned servers would exceed its
//!   capacity; such a create waits for a later run with a [`Note::Deferred`].

use super::{Action, Note};
use crate::cloud::Server;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tether_schema::projects::Project;
use tether_schema::{Agent, Fleet, labels};

/// The projects' capacities and how much of each is taken, live and planned, during one plan.
#[derive(Debug)]
pub struct Placement<'a> {
    projects: &'a [Project],
    used: BTreeMap<&'a str, u32>,
}

impl<'a> Placement<'a> {
    /// Counts every observed server (the fleet's or not: Hetzner's limit counts them all) in
    /// the project it was listed in.
    pub fn new(fleet: &'a Fleet, servers: &[Server]) -> Placement<'a> {
        let projects = fleet.settings.projects.as_slice();
        let mut used: BTreeMap<&str, u32> = BTreeMap::new();
        for p in projects {
            let n = servers
                .iter()
                .filter(|s| s.project.as_deref() == Some(p.name.as_str()))
                .count();
            used.insert(p.name.as_str(), u32::try_from(n).unwrap_or(u32::MAX));
        }
        Placement { projects, used }
    }

    /// The project for a new server of `agent`, with its slot taken: `Ok(None)` when the fleet
    /// declares no projects, `Err` with the reason when the agent's pin, or every project, is
    /// full.
    pub fn choose(&mut self, agent: &Agent) -> Result<Option<&'a str>, String> {
        if self.projects.is_empty() {
            return Ok(None);
        }
        let room = |p: &&Project, used: &BTreeMap<&str, u32>| {
            used.get(p.name.as_str()).copied().unwrap_or(0) < p.capacity
        };
        let chosen = match &agent.server.project {
            Some(pin) => {
                let p = self.projects.iter().find(|p| &p.name == pin);
                match p {
                    Some(p) if room(&p, &self.used) => p,
                    _ => {
                        return Err(format!(
                            "its pinned project `{pin}` is at its capacity; raise `capacity` in `spec.projects` (within the project's Hetzner server limit) or pin another project"
                        ));
                    }
                }
            }
            None => self
                .projects
                .iter()
                .filter(|p| room(p, &self.used))
                .max_by_key(|p| score(agent.name.as_str(), p.name.as_str()))
                .ok_or_else(|| {
                    "every project in `spec.projects` is at its capacity; add a project or raise a capacity".to_owned()
                })?,
        };
        *self.used.entry(chosen.name.as_str()).or_insert(0) += 1;
        Ok(Some(chosen.name.as_str()))
    }

    /// `action` (a create of `agent`) placed into its project, its `tether/project` label set;
    /// `None`, with a note, when there is no room for it.
    pub fn place(
        &mut self,
        agent: &Agent,
        mut action: Action,
        notes: &mut Vec<Note>,
    ) -> Option<Action> {
        match self.choose(agent) {
            Ok(None) => Some(action),
            Ok(Some(project)) => {
                if let Action::Create { labels, .. } = &mut action {
                    labels.insert(labels::PROJECT.to_owned(), project.to_owned());
                }
                Some(action)
            }
            Err(reason) => {
                notes.push(Note::Deferred {
                    agent: agent.name.as_str().to_owned(),
                    action: "create".to_owned(),
                    reason,
                });
                None
            }
        }
    }
}

/// The rendezvous score of `agent` in `project`: the first 8 bytes of SHA-256 over both names,
/// so it is the same on every machine and in every version.
pub fn score(agent: &str, project: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(agent.as_bytes());
    h.update([0]);
    h.update(project.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

/// Keeps an existing server's `tether/project` label as where it lives: a relabel never
/// writes another project onto it (that would disown it).
pub fn keep_label(server: &Server, want: &mut BTreeMap<String, String>) {
    if let Some(project) = &server.project {
        want.insert(labels::PROJECT.to_owned(), project.clone());
    }
}

/// The labels of `agent`'s replacement server: those of the old one, with the project its pin
/// names when it has one.
pub fn replacement_labels(
    agent: &Agent,
    mut want: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    if let (Some(pin), Some(project)) = (&agent.server.project, want.get_mut(labels::PROJECT)) {
        pin.as_str().clone_into(project);
    }
    want
}
