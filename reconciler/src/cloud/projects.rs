//! One fleet over several Hetzner projects (`spec.projects`): [`Projects`] is a [`Compute`]
//! over one client per project (each with its own token and rate-limit bucket), so the planner
//! and the executor see one inventory and make one plan.
//!
//! # Guarantees
//! - `list_servers` is the union of every project's servers, each stamped with the project it
//!   was listed in ([`Server::project`]); a failing project fails the listing (a partial
//!   inventory would look like missing servers).
//! - A create goes to [`NewServer::project`], which must name one of the projects.
//! - Every call about a server or an action goes to the project that listed or created it,
//!   and only there; a call for an id no listing or create has placed is refused
//!   ([`hetzner::Error::Unplaced`]) rather than sent to a guessed project.
//!
//! # Assumptions
//! - Server and action ids are unique across projects, as Hetzner's are (one id space for
//!   the whole API); the emulator gets a first id per instance to match.

use super::hetzner::ratelimit::Observed;
use super::retry::Clock;
use super::{
    Action, ActionId, Compute, Created, Image, Location, NewServer, Server, ServerId, ServerType,
    SshKey, hetzner,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};

/// The fleet's projects, each behind its own client, as one [`Compute`].
#[derive(Debug)]
pub struct Projects<C> {
    members: Vec<(String, C)>,
    servers: Mutex<HashMap<ServerId, usize>>,
    actions: Mutex<HashMap<ActionId, usize>>,
}

/// One project's use of its API since its client was built: what the daemon's rate budget
/// needs per project.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// The project's name.
    pub project: String,
    /// Requests sent by HTTP status (`None`: no answer).
    pub requests: BTreeMap<Option<u16>, u64>,
    /// Its rate-limit bucket as last seen.
    pub bucket: Observed,
}

impl<C: Compute> Projects<C> {
    /// The projects in the order given: `(name, client)`.
    pub fn new(members: Vec<(String, C)>) -> Self {
        Projects {
            members,
            servers: Mutex::default(),
            actions: Mutex::default(),
        }
    }

    /// The client of `project`, if it is one of the fleet's.
    pub fn member(&self, project: &str) -> Option<&C> {
        self.members
            .iter()
            .find(|(name, _)| name == project)
            .map(|(_, c)| c)
    }

    /// The projects' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.members.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn by_server(&self, id: ServerId, operation: &str) -> Result<(usize, &C), hetzner::Error> {
        let index = self
            .servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .copied();
        index
            .and_then(|i| self.members.get(i).map(|(_, c)| (i, c)))
            .ok_or_else(|| hetzner::Error::Unplaced {
                operation: operation.to_owned(),
                reason: format!(
                    "server {id} was not seen in any of the fleet's projects ({}); list the servers first",
                    self.names().join(", ")
                ),
            })
    }

    fn place_server(&self, id: ServerId, index: usize) {
        self.servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, index);
    }

    fn place_actions<'a>(&self, index: usize, actions: impl IntoIterator<Item = &'a Action>) {
        let mut map = self.actions.lock().unwrap_or_else(PoisonError::into_inner);
        for a in actions {
            map.insert(a.id, index);
        }
    }

    fn stamp(&self, index: usize, mut server: Server) -> Server {
        self.place_server(server.id, index);
        server.project = self.members.get(index).map(|(n, _)| n.clone());
        server
    }

    /// `result` (an action of project `index`), its action recorded as that project's.
    fn recorded(
        &self,
        index: usize,
        result: Result<Action, hetzner::Error>,
    ) -> Result<Action, hetzner::Error> {
        if let Ok(action) = &result {
            self.place_actions(index, [action]);
        }
        result
    }

    fn first(&self, operation: &str) -> Result<&C, hetzner::Error> {
        self.members
            .first()
            .map(|(_, c)| c)
            .ok_or_else(|| hetzner::Error::Unplaced {
                operation: operation.to_owned(),
                reason: "the fleet has no projects".to_owned(),
            })
    }
}

impl<K: Clock + Clone + 'static> Projects<hetzner::Client<K>> {
    /// Each project's requests and bucket, in order.
    pub fn usage(&self) -> Vec<Usage> {
        self.members
            .iter()
            .map(|(name, c)| Usage {
                project: name.clone(),
                requests: c.request_counts(),
                bucket: c.rate_limit(),
            })
            .collect()
    }
}

impl<C: Compute> Compute for Projects<C> {
    async fn list_servers(
        &self,
        label_selector: Option<&str>,
    ) -> Result<Vec<Server>, hetzner::Error> {
        let mut all = Vec::new();
        for (index, (_, client)) in self.members.iter().enumerate() {
            let servers = client.list_servers(label_selector).await?;
            all.extend(servers.into_iter().map(|s| self.stamp(index, s)));
        }
        Ok(all)
    }

    /// The server named `name` in the first project (in `spec.projects` order) that has one.
    async fn find_server(&self, name: &str) -> Result<Option<Server>, hetzner::Error> {
        for (index, (_, client)) in self.members.iter().enumerate() {
            if let Some(server) = client.find_server(name).await? {
                return Ok(Some(self.stamp(index, server)));
            }
        }
        Ok(None)
    }

    async fn get_server(&self, id: ServerId) -> Result<Option<Server>, hetzner::Error> {
        let (index, client) = self.by_server(id, &format!("get server {id}"))?;
        Ok(client.get_server(id).await?.map(|s| self.stamp(index, s)))
    }

    async fn create_server(&self, new: &NewServer) -> Result<Created, hetzner::Error> {
        let operation = format!("create server {}", new.name);
        let wanted = new
            .project
            .as_deref()
            .ok_or_else(|| hetzner::Error::Unplaced {
                operation: operation.clone(),
                reason: format!(
                    "no project given; the fleet's projects are {}",
                    self.names().join(", ")
                ),
            })?;
        let index = self
            .members
            .iter()
            .position(|(n, _)| n == wanted)
            .ok_or_else(|| hetzner::Error::Unplaced {
                operation: operation.clone(),
                reason: format!(
                    "project `{wanted}` is not one of the fleet's projects ({}); give it a token in the daemon configuration",
                    self.names().join(", ")
                ),
            })?;
        let client = &self.members[index].1;
        let mut created = client.create_server(new).await?;
        created.server = self.stamp(index, created.server);
        self.place_actions(
            index,
            std::iter::once(&created.action).chain(&created.next_actions),
        );
        Ok(created)
    }

    async fn delete_server(&self, id: ServerId) -> Result<Option<Action>, hetzner::Error> {
        let (index, client) = self.by_server(id, &format!("delete server {id}"))?;
        let action = client.delete_server(id).await?;
        self.place_actions(index, action.iter());
        Ok(action)
    }

    async fn update_server(
        &self,
        id: ServerId,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<Server, hetzner::Error> {
        let (index, client) = self.by_server(id, &format!("update server {id}"))?;
        let server = client.update_server(id, name, labels).await?;
        Ok(self.stamp(index, server))
    }

    async fn power_on(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let (index, c) = self.by_server(id, &format!("power on server {id}"))?;
        self.recorded(index, c.power_on(id).await)
    }

    async fn power_off(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let (index, c) = self.by_server(id, &format!("power off server {id}"))?;
        self.recorded(index, c.power_off(id).await)
    }

    async fn shutdown(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let (index, c) = self.by_server(id, &format!("shut down server {id}"))?;
        self.recorded(index, c.shutdown(id).await)
    }

    async fn change_type(
        &self,
        id: ServerId,
        server_type: &str,
        upgrade_disk: bool,
    ) -> Result<Action, hetzner::Error> {
        let (index, c) = self.by_server(id, &format!("change type of server {id}"))?;
        self.recorded(index, c.change_type(id, server_type, upgrade_disk).await)
    }

    /// Waits for each project's actions with that project's client; the results come back in
    /// the order of `ids`.
    async fn wait_for_actions(&self, ids: &[ActionId]) -> Result<Vec<Action>, hetzner::Error> {
        let mut groups: BTreeMap<usize, Vec<ActionId>> = BTreeMap::new();
        {
            let map = self.actions.lock().unwrap_or_else(PoisonError::into_inner);
            for id in ids {
                let index = map
                    .get(id)
                    .copied()
                    .ok_or_else(|| hetzner::Error::Unplaced {
                        operation: format!("wait for action {id}"),
                        reason: format!(
                            "action {id} was not started through any of the fleet's projects ({})",
                            self.names().join(", ")
                        ),
                    })?;
                groups.entry(index).or_default().push(*id);
            }
        }
        let mut done: HashMap<ActionId, Action> = HashMap::new();
        for (index, group) in groups {
            let client = &self.members[index].1;
            for action in client.wait_for_actions(&group).await? {
                done.insert(action.id, action);
            }
        }
        ids.iter()
            .map(|id| {
                done.remove(id)
                    .ok_or(hetzner::Error::ActionMissing { id: id.0 })
            })
            .collect()
    }

    /// The first project's server types: prices and availability are the same in every
    /// project.
    async fn server_types(&self) -> Result<Vec<ServerType>, hetzner::Error> {
        self.first("list server types")?.server_types().await
    }

    async fn locations(&self) -> Result<Vec<Location>, hetzner::Error> {
        self.first("list locations")?.locations().await
    }

    async fn images(&self) -> Result<Vec<Image>, hetzner::Error> {
        self.first("list images")?.images().await
    }

    /// The SSH keys stored in every project under the same name (as the first project has
    /// them): a key missing from one project counts as missing, since a server created there
    /// could not get it.
    async fn ssh_keys(&self) -> Result<Vec<SshKey>, hetzner::Error> {
        let mut keys = self.first("list ssh keys")?.ssh_keys().await?;
        for (_, client) in self.members.iter().skip(1) {
            let names: BTreeSet<String> = client
                .ssh_keys()
                .await?
                .into_iter()
                .map(|k| k.name)
                .collect();
            keys.retain(|k| names.contains(&k.name));
        }
        Ok(keys)
    }

    async fn rebuild(
        &self,
        id: ServerId,
        image: &str,
        user_data: &crate::secret::Secret<String>,
    ) -> Result<Action, hetzner::Error> {
        let (index, c) = self.by_server(id, &format!("rebuild server {id}"))?;
        self.recorded(index, c.rebuild(id, image, user_data).await)
    }

    async fn reset(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let (index, c) = self.by_server(id, &format!("reset server {id}"))?;
        self.recorded(index, c.reset(id).await)
    }
}

#[cfg(test)]
mod emulator_tests;
