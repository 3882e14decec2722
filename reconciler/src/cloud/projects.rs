//! One fleet over several Hetzner projects (`spec.projects`): [`Projects`] is a [`Compute`]
//! over one client per project (each with its own token and rate-limit bucket), so the planner
//! and the executor see one inventory and make one plan.
//!
//! # Guarantees
//! - `list_servers` is the union of every project's servers, each stamped with the project it
//!   was listed in ([`Server::project`]); a failing project fails the listing (a partial
//!   inventory would look like missing servers).
//! - A create goes to [`NewServer::project`], which must name one of the projects.
//! - With one unnamed project ([`Projects::single`], a fleet without `spec.projects`) every
//!   call passes straight through and nothing is stamped: tether as before.
//! - Every call about a server or an action goes to the project that listed or created it,
//!   and only there; a call for an id no listing or create has placed is refused
//!   ([`hetzner::Error::Unplaced`]) rather than sent to a guessed project.
//!
//! # Assumptions
//! - Server and action ids are unique across projects, as Hetzner's are (one id space for
//!   the whole API); the emulator gets a first id per instance to match.

pub mod tokens;

use super::hetzner::ratelimit::Observed;
use super::retry::Clock;
use super::{
    Action, ActionId, Compute, Created, Image, Location, NewServer, Server, ServerId, ServerType,
    SshKey, hetzner,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// The fleet's projects, each behind its own client, as one [`Compute`]. Cheap to clone: the
/// clones share their projects and what they learned about where servers live, so the daemon
/// can [`Projects::set`] the projects of each pass on the copy its fenced clients wrap.
#[derive(Debug)]
pub struct Projects<C> {
    shared: Arc<Shared<C>>,
}

impl<C> Clone for Projects<C> {
    fn clone(&self) -> Self {
        Projects {
            shared: self.shared.clone(),
        }
    }
}

#[derive(Debug)]
struct Shared<C> {
    members: RwLock<Arc<Members<C>>>,
    servers: Mutex<HashMap<ServerId, String>>,
    actions: Mutex<HashMap<ActionId, String>>,
}

/// The clients of a pass: `single` is one project without a name (a fleet that declares no
/// `spec.projects`): nothing is stamped or labelled and every call goes to its client.
#[derive(Debug)]
struct Members<C> {
    list: Vec<(String, C)>,
    single: bool,
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

impl<C: Compute + Clone> Projects<C> {
    /// The projects in the order given: `(name, client)`.
    pub fn new(members: Vec<(String, C)>) -> Self {
        Projects::with(Members {
            list: members,
            single: false,
        })
    }

    /// One unnamed project: today's single-token behaviour, every call passed through.
    pub fn single(client: C) -> Self {
        Projects::with(Members {
            list: vec![(String::new(), client)],
            single: true,
        })
    }

    fn with(members: Members<C>) -> Self {
        Projects {
            shared: Arc::new(Shared {
                members: RwLock::new(Arc::new(members)),
                servers: Mutex::default(),
                actions: Mutex::default(),
            }),
        }
    }

    /// Replaces the projects (for every clone): `Some` names them, `None` is [`Projects::single`]
    /// with `client`. What was learned about where servers live is kept.
    pub fn set(&self, members: Option<Vec<(String, C)>>, client: Option<C>) {
        let next = match (members, client) {
            (Some(list), _) => Members {
                list,
                single: false,
            },
            (None, Some(client)) => Members {
                list: vec![(String::new(), client)],
                single: true,
            },
            (None, None) => Members {
                list: Vec::new(),
                single: false,
            },
        };
        *self
            .shared
            .members
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
    }

    fn members(&self) -> Arc<Members<C>> {
        self.shared
            .members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The client of `project`, if it is one of the fleet's.
    pub fn member(&self, project: &str) -> Option<C> {
        self.members()
            .list
            .iter()
            .find(|(name, _)| name == project)
            .map(|(_, c)| c.clone())
    }

    /// The projects' names, in order (none for a single unnamed project).
    pub fn names(&self) -> Vec<String> {
        let m = self.members();
        if m.single {
            return Vec::new();
        }
        m.list.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The client a call about server `id` goes to, and its project's name.
    fn by_server(&self, id: ServerId, operation: &str) -> Result<(String, C), hetzner::Error> {
        let m = self.members();
        if let (true, Some((name, c))) = (m.single, m.list.first()) {
            return Ok((name.clone(), c.clone()));
        }
        let project = self
            .shared
            .servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        project
            .and_then(|p| {
                m.list
                    .iter()
                    .find(|(n, _)| *n == p)
                    .map(|(n, c)| (n.clone(), c.clone()))
            })
            .ok_or_else(|| hetzner::Error::Unplaced {
                operation: operation.to_owned(),
                reason: format!(
                    "server {id} was not seen in any of the fleet's projects ({}); list the servers first",
                    self.names().join(", ")
                ),
            })
    }

    fn place_actions<'a>(&self, project: &str, actions: impl IntoIterator<Item = &'a Action>) {
        let mut map = self
            .shared
            .actions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for a in actions {
            map.insert(a.id, project.to_owned());
        }
    }

    /// `server`, as listed in `project`: remembered there and, unless single, stamped with it.
    fn stamp(&self, project: &str, mut server: Server) -> Server {
        self.shared
            .servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(server.id, project.to_owned());
        if !self.members().single {
            server.project = Some(project.to_owned());
        }
        server
    }

    /// `result` (an action of `project`), its action recorded as that project's.
    fn recorded(
        &self,
        project: &str,
        result: Result<Action, hetzner::Error>,
    ) -> Result<Action, hetzner::Error> {
        if let Ok(action) = &result {
            self.place_actions(project, [action]);
        }
        result
    }

    fn first(&self, operation: &str) -> Result<C, hetzner::Error> {
        self.members()
            .list
            .first()
            .map(|(_, c)| c.clone())
            .ok_or_else(|| hetzner::Error::Unplaced {
                operation: operation.to_owned(),
                reason: "the fleet has no projects".to_owned(),
            })
    }
}

impl<K: Clock + Clone + 'static> Projects<hetzner::Client<K>> {
    /// The bucket of the project with the fewest requests left: the one that limits the fleet.
    pub fn rate_limit(&self) -> Observed {
        self.usage()
            .into_iter()
            .map(|u| u.bucket)
            .min_by_key(|b| b.remaining)
            .unwrap_or(Observed {
                limit: 0,
                remaining: 0,
            })
    }

    /// Each project's requests and bucket, in order.
    pub fn usage(&self) -> Vec<Usage> {
        self.members()
            .list
            .iter()
            .map(|(name, c)| Usage {
                project: name.clone(),
                requests: c.request_counts(),
                bucket: c.rate_limit(),
            })
            .collect()
    }
}

impl<C: Compute + Clone> Compute for Projects<C> {
    async fn list_servers(
        &self,
        label_selector: Option<&str>,
    ) -> Result<Vec<Server>, hetzner::Error> {
        let mut all = Vec::new();
        for (project, client) in &self.members().list {
            let servers = client.list_servers(label_selector).await?;
            all.extend(servers.into_iter().map(|s| self.stamp(project, s)));
        }
        Ok(all)
    }

    /// The server named `name` in the first project (in `spec.projects` order) that has one.
    async fn find_server(&self, name: &str) -> Result<Option<Server>, hetzner::Error> {
        for (project, client) in &self.members().list {
            if let Some(server) = client.find_server(name).await? {
                return Ok(Some(self.stamp(project, server)));
            }
        }
        Ok(None)
    }

    async fn get_server(&self, id: ServerId) -> Result<Option<Server>, hetzner::Error> {
        let (project, client) = self.by_server(id, &format!("get server {id}"))?;
        Ok(client
            .get_server(id)
            .await?
            .map(|s| self.stamp(&project, s)))
    }

    async fn create_server(&self, new: &NewServer) -> Result<Created, hetzner::Error> {
        let operation = format!("create server {}", new.name);
        let m = self.members();
        let member = match (m.single, new.project.as_deref()) {
            (true, _) => m.list.first(),
            (false, Some(wanted)) => m.list.iter().find(|(n, _)| n == wanted),
            (false, None) => None,
        };
        let (project, client) = member.ok_or_else(|| hetzner::Error::Unplaced {
            operation: operation.clone(),
            reason: format!(
                "project `{}` is not one of the fleet's projects ({}); declare it in `spec.projects` and give it a token (HCLOUD_TOKEN_<PROJECT>)",
                new.project.as_deref().unwrap_or("(none given)"),
                self.names().join(", ")
            ),
        })?;
        let mut created = client.create_server(new).await?;
        created.server = self.stamp(project, created.server);
        self.place_actions(
            project,
            std::iter::once(&created.action).chain(&created.next_actions),
        );
        Ok(created)
    }

    async fn delete_server(&self, id: ServerId) -> Result<Option<Action>, hetzner::Error> {
        let (project, client) = self.by_server(id, &format!("delete server {id}"))?;
        let action = client.delete_server(id).await?;
        self.place_actions(&project, action.iter());
        Ok(action)
    }

    async fn update_server(
        &self,
        id: ServerId,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<Server, hetzner::Error> {
        let (project, client) = self.by_server(id, &format!("update server {id}"))?;
        let server = client.update_server(id, name, labels).await?;
        Ok(self.stamp(&project, server))
    }

    async fn power_on(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let (project, c) = self.by_server(id, &format!("power on server {id}"))?;
        self.recorded(&project, c.power_on(id).await)
    }

    async fn power_off(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let (project, c) = self.by_server(id, &format!("power off server {id}"))?;
        self.recorded(&project, c.power_off(id).await)
    }

    async fn shutdown(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let (project, c) = self.by_server(id, &format!("shut down server {id}"))?;
        self.recorded(&project, c.shutdown(id).await)
    }

    async fn change_type(
        &self,
        id: ServerId,
        server_type: &str,
        upgrade_disk: bool,
    ) -> Result<Action, hetzner::Error> {
        let (project, c) = self.by_server(id, &format!("change type of server {id}"))?;
        self.recorded(&project, c.change_type(id, server_type, upgrade_disk).await)
    }

    /// Waits for each project's actions with that project's client; the results come back in
    /// the order of `ids`.
    async fn wait_for_actions(&self, ids: &[ActionId]) -> Result<Vec<Action>, hetzner::Error> {
        let m = self.members();
        if let (true, Some((_, client))) = (m.single, m.list.first()) {
            return client.wait_for_actions(ids).await;
        }
        let mut groups: BTreeMap<String, Vec<ActionId>> = BTreeMap::new();
        {
            let map = self
                .shared
                .actions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for id in ids {
                let project = map
                    .get(id)
                    .cloned()
                    .ok_or_else(|| hetzner::Error::Unplaced {
                        operation: format!("wait for action {id}"),
                        reason: format!(
                            "action {id} was not started through any of the fleet's projects ({})",
                            self.names().join(", ")
                        ),
                    })?;
                groups.entry(project).or_default().push(*id);
            }
        }
        let mut done: HashMap<ActionId, Action> = HashMap::new();
        for (project, group) in groups {
            let client = m
                .list
                .iter()
                .find(|(n, _)| *n == project)
                .map(|(_, c)| c)
                .ok_or_else(|| hetzner::Error::Unplaced {
                    operation: "wait for actions".to_owned(),
                    reason: format!("project `{project}` is no longer one of the fleet's"),
                })?;
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
        for (_, client) in self.members().list.iter().skip(1) {
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
        let (project, c) = self.by_server(id, &format!("rebuild server {id}"))?;
        self.recorded(&project, c.rebuild(id, image, user_data).await)
    }

    async fn reset(&self, id: ServerId) -> Result<Action, hetzner::Error> {
        let (project, c) = self.by_server(id, &format!("reset server {id}"))?;
        self.recorded(&project, c.reset(id).await)
    }
}

#[cfg(test)]
mod emulator_tests;
