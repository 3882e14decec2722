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
use crate::compute::Server;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::{ServerId, ServerStatus};
    use tether_schema::{Content, SourceFile, load_fleet};

    /// A fleet over `projects` (name, capacity) with agents `a000`…, `pins` pinning some.
    fn fleet(projects: &[(&str, u32)], agents: usize, pins: &[(&str, &str)]) -> Fleet {
        let list: String = projects
            .iter()
            .map(|(n, c)| format!("  - {{name: {n}, capacity: {c}}}\n"))
            .collect();
        let mut files = vec![SourceFile {
            path: "fleet.yaml".into(),
            content: Content::Bytes(format!("apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: f}}\nspec:\n  defaults: {{server: {{type: cpx21, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  catalog: {{serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}}\n  projects:\n{list}").into_bytes()),
        }];
        for i in 0..agents {
            let name = format!("a{i:03}");
            let server = pins
                .iter()
                .find(|(a, _)| *a == name)
                .map_or(String::new(), |(_, p)| {
                    format!("  server: {{project: {p}}}\n")
                });
            files.push(SourceFile {
                path: format!("agents/{name}.yaml"),
                content: Content::Bytes(format!("apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {name}}}\nspec:\n  subscription: s{name}\n  runtime: {{version: '1'}}\n{server}").into_bytes()),
            });
        }
        load_fleet(&files).expect("valid fleet")
    }

    fn server(id: u64, project: &str) -> Server {
        Server {
            id: ServerId(id),
            name: format!("other-{id}"),
            status: ServerStatus::Running,
            server_type: "cpx21".into(),
            location: "fsn1".into(),
            image: None,
            labels: BTreeMap::new(),
            ipv4: None,
            ipv6: None,
            created: "2026-01-01T00:00:00Z".into(),
            delete_protected: false,
            rebuild_protected: false,
            disk_gb: None,
            project: Some(project.to_owned()),
        }
    }

    fn choices(f: &Fleet, servers: &[Server]) -> BTreeMap<String, Option<String>> {
        let mut placement = Placement::new(f, servers);
        f.agents
            .values()
            .map(|a| {
                let p = placement.choose(a).ok().flatten().map(str::to_owned);
                (a.name.as_str().to_owned(), p)
            })
            .collect()
    }

    #[test]
    fn adding_a_project_only_sends_new_agents_to_it() {
        let three = fleet(&[("p1", 1000), ("p2", 1000), ("p3", 1000)], 300, &[]);
        let four = fleet(
            &[("p1", 1000), ("p2", 1000), ("p3", 1000), ("p4", 1000)],
            300,
            &[],
        );
        let before = choices(&three, &[]);
        let after = choices(&four, &[]);
        let mut moved_to_p4 = 0;
        for (agent, was) in &before {
            let now = &after[agent];
            if now != was {
                assert_eq!(now.as_deref(), Some("p4"), "{agent} moved elsewhere");
                moved_to_p4 += 1;
            }
        }
        // About a quarter of the agents score highest in the new project; none other moves.
        assert!((50..=100).contains(&moved_to_p4), "{moved_to_p4}");
        let spread: std::collections::BTreeSet<_> = before.values().collect();
        assert_eq!(spread.len(), 3, "every project gets agents");
    }

    #[test]
    fn placement_is_the_same_every_time_and_independent_of_project_order() {
        let a = fleet(&[("p1", 1000), ("p2", 1000), ("p3", 1000)], 50, &[]);
        let b = fleet(&[("p3", 1000), ("p1", 1000), ("p2", 1000)], 50, &[]);
        assert_eq!(choices(&a, &[]), choices(&a, &[]));
        assert_eq!(choices(&a, &[]), choices(&b, &[]));
    }

    #[test]
    fn live_servers_count_against_capacity_and_a_full_fleet_defers_creates() {
        let f = fleet(&[("p1", 2), ("p2", 1)], 4, &[]);
        // p1 already holds a server that is not the fleet's: it still takes a slot.
        let live = [server(1, "p1")];
        let mut placement = Placement::new(&f, &live);
        let mut got: BTreeMap<&str, u32> = BTreeMap::new();
        let mut refused = 0;
        for agent in f.agents.values() {
            match placement.choose(agent) {
                Ok(Some(p)) => *got.entry(p).or_default() += 1,
                Ok(None) => panic!("the fleet declares projects"),
                Err(reason) => {
                    assert!(reason.contains("capacity"), "{reason}");
                    refused += 1;
                }
            }
        }
        assert_eq!(got, BTreeMap::from([("p1", 1), ("p2", 1)]));
        assert_eq!(refused, 2);
    }

    #[test]
    fn a_pinned_agent_goes_to_its_project_or_waits_when_that_is_full() {
        let f = fleet(
            &[("p1", 5), ("p2", 1)],
            2,
            &[("a000", "p2"), ("a001", "p2")],
        );
        let mut placement = Placement::new(&f, &[]);
        let mut agents = f.agents.values();
        let first = agents.next().expect("a000");
        let second = agents.next().expect("a001");
        assert_eq!(placement.choose(first), Ok(Some("p2")));
        let err = placement.choose(second).expect_err("p2 is full");
        assert!(err.contains("`p2`"), "{err}");
    }

    #[test]
    fn a_fleet_without_projects_places_nothing_and_labels_nothing() {
        let f = fleet(&[("p1", 5)], 1, &[]);
        let mut single = f.clone();
        single.settings.projects.clear();
        let agent = single.agents.values().next().expect("agent");
        assert_eq!(Placement::new(&single, &[]).choose(agent), Ok(None));
        let mut want = BTreeMap::new();
        keep_label(&server(1, "p1"), &mut want);
        assert_eq!(want.get(labels::PROJECT).map(String::as_str), Some("p1"));
        let mut unstamped = server(2, "p1");
        unstamped.project = None;
        let mut none = BTreeMap::new();
        keep_label(&unstamped, &mut none);
        assert!(none.is_empty());
    }
}
