//! The project's mutable state, held behind one mutex: servers, actions, SSH keys, firewalls
//! and the id counters, and [`Effect`]s, the small state changes that timed lifecycle steps apply.

use super::catalog::{Image, Location, ServerType};
use super::firewall::FirewallRecord;
use crate::BootedServer;
use crate::hetzner::ServerStatus;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use time::OffsetDateTime;
use tokio::time::Instant;

/// What an action does (its `command`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `create_server`.
    CreateServer,
    /// `start_server` (poweron, and the create's follow-up).
    StartServer,
    /// `stop_server` (poweroff).
    StopServer,
    /// `shutdown_server`.
    ShutdownServer,
    /// `reboot_server`.
    RebootServer,
    /// `reset_server`.
    ResetServer,
    /// `change_server_type`.
    ChangeServerType,
    /// `delete_server`.
    DeleteServer,
    /// `rebuild_server`.
    RebuildServer,
    /// `change_protection`.
    ChangeProtection,
    /// `set_firewall_rules`.
    SetFirewallRules,
    /// `apply_firewall`.
    ApplyFirewall,
    /// `remove_firewall`.
    RemoveFirewall,
}

impl Command {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::CreateServer => "create_server",
            Command::StartServer => "start_server",
            Command::StopServer => "stop_server",
            Command::ShutdownServer => "shutdown_server",
            Command::RebootServer => "reboot_server",
            Command::ResetServer => "reset_server",
            Command::ChangeServerType => "change_server_type",
            Command::DeleteServer => "delete_server",
            Command::RebuildServer => "rebuild_server",
            Command::ChangeProtection => "change_protection",
            Command::SetFirewallRules => "set_firewall_rules",
            Command::ApplyFirewall => "apply_firewall",
            Command::RemoveFirewall => "remove_firewall",
        }
    }
}

/// An action's outcome so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionState {
    /// Not finished.
    Running,
    /// Finished successfully.
    Success,
    /// Failed, with Hetzner's `{code, message}`.
    Error(String, String),
}

/// One action.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRecord {
    /// Action id.
    pub id: u64,
    /// What it does.
    pub command: Command,
    /// Outcome so far.
    pub state: ActionState,
    /// Wall-clock creation time.
    pub started: OffsetDateTime,
    /// Wall-clock end time, once finished.
    pub finished: Option<OffsetDateTime>,
    /// When its work begins (later than creation for a create's `start_server`).
    pub begins: Instant,
    /// When its work is scheduled to end.
    pub ends: Instant,
    /// The server it acts on, if any.
    pub server: Option<u64>,
    /// The firewall it acts on, if any.
    pub firewall: Option<u64>,
}

/// One server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRecord {
    /// Server id.
    pub id: u64,
    /// Name, unique in the project.
    pub name: String,
    /// Lifecycle state.
    pub status: ServerStatus,
    /// Creation time.
    pub created: OffsetDateTime,
    /// Current type.
    pub server_type: ServerType,
    /// Where it runs.
    pub location: Location,
    /// What it was created from.
    pub image: Image,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// cloud-init, as given at create time.
    pub user_data: Option<String>,
    /// Disk size in GB.
    pub primary_disk_size: u64,
    /// Public IPv4 address (none when disabled at create time or none was free).
    pub ipv4: Option<Ipv4Addr>,
    /// Whether the server has a public IPv6 network.
    pub ipv6: bool,
    /// Index of its IPv6 /64 (and id of both primary IPs).
    pub ip_index: u64,
    /// Whether the `booted` hook has fired without a `stopped` since.
    pub booted: bool,
    /// Delete and rebuild protection.
    pub protection: Protection,
}

impl ServerRecord {
    /// Whether it has a public interface (a firewall needs one: `private_net_only_server`).
    pub fn has_public_net(&self) -> bool {
        self.ipv4.is_some() || self.ipv6
    }
}

/// A server's `protection`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protection {
    /// Delete protection: `DELETE` is refused with `protected`.
    pub delete: bool,
    /// Rebuild protection: `rebuild` is refused with `protected`.
    pub rebuild: bool,
}

/// One SSH key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey {
    /// Key id.
    pub id: u64,
    /// Name, unique in the project.
    pub name: String,
    /// MD5 of the key blob, colon-separated hex; unique in the project.
    pub fingerprint: String,
    /// `type base64 [comment]`.
    pub public_key: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Creation time.
    pub created: OffsetDateTime,
}

/// A state change made by a timed lifecycle step.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Marks a running action successful.
    Finish(u64),
    /// Sets a server's status (firing `stopped` when a booted server turns `off`).
    Status(u64, ServerStatus),
    /// Gives a server a new type and disk size.
    ChangeType(u64, Box<ServerType>, u64),
    /// Removes a server (firing `stopped` when it was booted).
    Remove(u64),
    /// Fires `booted` if the server is still running and has not booted yet.
    Boot(u64),
    /// The machine restarts under a running status (reboot, reset): `stopped` fires if it
    /// had booted; a later [`Effect::Boot`] brings it back.
    Halt(u64),
}

/// A hook call to make once the model is unlocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEvent {
    /// `MachineHooks::booted`.
    Booted(BootedServer),
    /// `MachineHooks::stopped`.
    Stopped(u64),
    /// `MachineHooks::rebuilt`.
    Rebuilt(u64),
}

/// Three documentation /24 ranges (RFC 5737) to hand out IPv4 addresses from.
const IPV4_RANGES: [[u8; 3]; 3] = [[203, 0, 113], [198, 51, 100], [192, 0, 2]];

/// Everything that changes.
#[derive(Debug)]
pub struct Model {
    /// Servers by id.
    pub servers: BTreeMap<u64, ServerRecord>,
    /// Actions by id (kept after their server is gone, as Hetzner does).
    pub actions: BTreeMap<u64, ActionRecord>,
    /// SSH keys by id.
    pub ssh_keys: BTreeMap<u64, SshKey>,
    /// Firewalls by id.
    pub firewalls: BTreeMap<u64, FirewallRecord>,
    next_server: u64,
    next_action: u64,
    next_key: u64,
    next_firewall: u64,
    next_ip: u64,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            servers: BTreeMap::new(),
            actions: BTreeMap::new(),
            ssh_keys: BTreeMap::new(),
            firewalls: BTreeMap::new(),
            next_server: 100_001,
            next_action: 5_000_001,
            next_key: 30_001,
            next_firewall: 70_001,
            next_ip: 1,
        }
    }
}

impl Model {
    /// Starts server and action ids `offset` higher ([`super::Config::id_offset`]).
    pub fn offset_ids(&mut self, offset: u64) {
        self.next_server += offset;
        self.next_action += offset;
    }

    /// A fresh server id.
    pub fn server_id(&mut self) -> u64 {
        self.next_server += 1;
        self.next_server - 1
    }

    /// A fresh SSH key id.
    pub fn key_id(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key - 1
    }

    /// A fresh firewall id.
    pub fn firewall_id(&mut self) -> u64 {
        self.next_firewall += 1;
        self.next_firewall - 1
    }

    /// A fresh primary-IP index and the lowest free IPv4 address, if any.
    pub fn allocate_ips(&mut self) -> (u64, Option<Ipv4Addr>) {
        let index = self.next_ip;
        self.next_ip += 1;
        let taken: Vec<Ipv4Addr> = self.servers.values().filter_map(|s| s.ipv4).collect();
        let free = IPV4_RANGES
            .iter()
            .flat_map(|[a, b, c]| (1..=254).map(move |d| Ipv4Addr::new(*a, *b, *c, d)))
            .find(|ip| !taken.contains(ip));
        (index, free)
    }

    /// Records a running action on `server` whose work spans `begins..ends`.
    pub fn new_action(
        &mut self,
        server: u64,
        command: Command,
        begins: Instant,
        ends: Instant,
    ) -> u64 {
        self.record_action(Some(server), None, command, begins, ends)
    }

    /// Records a running action on `firewall` (and `server`, when it concerns one) that ends
    /// at `ends`.
    pub fn new_firewall_action(
        &mut self,
        firewall: u64,
        server: Option<u64>,
        command: Command,
        now: Instant,
        ends: Instant,
    ) -> u64 {
        self.record_action(server, Some(firewall), command, now, ends)
    }

    fn record_action(
        &mut self,
        server: Option<u64>,
        firewall: Option<u64>,
        command: Command,
        begins: Instant,
        ends: Instant,
    ) -> u64 {
        let id = self.next_action;
        self.next_action += 1;
        self.actions.insert(
            id,
            ActionRecord {
                id,
                command,
                state: ActionState::Running,
                started: OffsetDateTime::now_utc(),
                finished: None,
                begins,
                ends,
                server,
                firewall,
            },
        );
        id
    }

    /// Whether an action is running on `server` (requests for other actions get `locked`).
    pub fn is_locked(&self, server: u64) -> bool {
        self.actions
            .values()
            .any(|a| a.server == Some(server) && a.state == ActionState::Running)
    }

    /// The server with this exact name.
    pub fn server_named(&self, name: &str) -> Option<&ServerRecord> {
        self.servers.values().find(|s| s.name == name)
    }

    /// Brings every firewall's covered servers up to date: servers with a public interface
    /// that a target covers are covered, newly covered ones `pending` for `delay` from `now`.
    pub fn sync_firewalls(&mut self, now: Instant, delay: std::time::Duration) {
        let servers = &self.servers;
        for firewall in self.firewalls.values_mut() {
            let wanted: Vec<u64> = servers
                .values()
                .filter(|s| s.has_public_net() && firewall.targets_cover(s.id, &s.labels))
                .map(|s| s.id)
                .collect();
            firewall.cover(&wanted, now + delay);
        }
    }

    /// `(firewall id, status)` of every firewall covering `server` at `now`.
    pub fn firewalls_of(&self, server: u64, now: Instant) -> Vec<(u64, &'static str)> {
        self.firewalls
            .values()
            .filter_map(|f| f.status(server, now).map(|status| (f.id, status)))
            .collect()
    }

    /// Applies one effect; returns the hook call it causes, if any.
    pub fn apply(&mut self, effect: &Effect) -> Option<HookEvent> {
        match effect {
            Effect::Finish(id) => {
                if let Some(a) = self.actions.get_mut(id)
                    && a.state == ActionState::Running
                {
                    a.state = ActionState::Success;
                    a.finished = Some(OffsetDateTime::now_utc());
                }
                None
            }
            Effect::Status(id, status) => {
                let server = self.servers.get_mut(id)?;
                server.status = *status;
                (*status == ServerStatus::Off)
                    .then(|| stop(server))
                    .flatten()
            }
            Effect::ChangeType(id, server_type, disk) => {
                let server = self.servers.get_mut(id)?;
                server.server_type = (**server_type).clone();
                server.primary_disk_size = *disk;
                None
            }
            Effect::Remove(id) => {
                let mut server = self.servers.remove(id)?;
                stop(&mut server)
            }
            Effect::Halt(id) => stop(self.servers.get_mut(id)?),
            Effect::Boot(id) => {
                let server = self.servers.get_mut(id)?;
                if server.status != ServerStatus::Running || server.booted {
                    return None;
                }
                server.booted = true;
                Some(HookEvent::Booted(BootedServer {
                    id: server.id,
                    name: server.name.clone(),
                    user_data: server.user_data.clone(),
                }))
            }
        }
    }

    /// Deletes a server "by hand" (as from the console): it is gone at once and its running
    /// actions fail. Returns whether it existed and the hook call it causes.
    pub fn remove_by_hand(&mut self, id: u64) -> (bool, Option<HookEvent>) {
        let Some(mut server) = self.servers.remove(&id) else {
            return (false, None);
        };
        for action in self.actions.values_mut() {
            if action.server == Some(id) && action.state == ActionState::Running {
                action.state =
                    ActionState::Error("action_failed".into(), "the server was deleted".into());
                action.finished = Some(OffsetDateTime::now_utc());
            }
        }
        (true, stop(&mut server))
    }
}

/// `stopped` for a booted server, once.
fn stop(server: &mut ServerRecord) -> Option<HookEvent> {
    std::mem::take(&mut server.booted).then_some(HookEvent::Stopped(server.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hetzner::Catalog;

    fn model_with_server() -> (Model, u64) {
        let catalog = Catalog::default();
        let mut model = Model::default();
        let id = model.server_id();
        let (ip_index, ipv4) = model.allocate_ips();
        model.servers.insert(
            id,
            ServerRecord {
                id,
                name: "s".into(),
                status: ServerStatus::Running,
                created: OffsetDateTime::now_utc(),
                server_type: catalog.server_types[0].clone(),
                location: catalog.locations[0].clone(),
                image: catalog.images[0].clone(),
                labels: BTreeMap::new(),
                user_data: Some("#cloud-config".into()),
                primary_disk_size: 40,
                ipv4,
                ipv6: true,
                ip_index,
                booted: false,
                protection: Protection::default(),
            },
        );
        (model, id)
    }

    #[test]
    fn booted_and_stopped_fire_once_each_in_pairs() {
        let (mut model, id) = model_with_server();
        let booted = model.apply(&Effect::Boot(id));
        assert!(
            matches!(booted, Some(HookEvent::Booted(ref s)) if s.user_data.as_deref() == Some("#cloud-config"))
        );
        assert_eq!(model.apply(&Effect::Boot(id)), None);
        assert_eq!(
            model.apply(&Effect::Status(id, ServerStatus::Off)),
            Some(HookEvent::Stopped(id))
        );
        assert_eq!(model.apply(&Effect::Status(id, ServerStatus::Off)), None);
        assert_eq!(model.apply(&Effect::Remove(id)), None);
    }

    #[test]
    fn a_server_that_stopped_before_booting_never_boots() {
        let (mut model, id) = model_with_server();
        model.apply(&Effect::Status(id, ServerStatus::Off));
        assert_eq!(model.apply(&Effect::Boot(id)), None);
    }

    #[test]
    fn finishing_never_overrides_a_failed_action() {
        let (mut model, id) = model_with_server();
        let now = Instant::now();
        let action = model.new_action(id, Command::StartServer, now, now);
        assert!(model.is_locked(id));
        let (existed, event) = model.remove_by_hand(id);
        assert!(existed && event.is_none());
        model.apply(&Effect::Finish(action));
        assert!(matches!(
            model.actions[&action].state,
            ActionState::Error(..)
        ));
        assert!(!model.is_locked(id));
    }

    #[test]
    fn ipv4_addresses_are_reused_once_free() {
        let (mut model, id) = model_with_server();
        let first = model.servers[&id].ipv4;
        assert_eq!(first, Some(Ipv4Addr::new(203, 0, 113, 1)));
        assert_eq!(model.allocate_ips().1, Some(Ipv4Addr::new(203, 0, 113, 2)));
        model.servers.clear();
        assert_eq!(model.allocate_ips().1, first);
    }
}
