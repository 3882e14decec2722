//! The emulated tailnet's state and the control plane's own acts: enrolling a node with an
//! auth key, a node going offline or coming back, and the ephemeral-node reaper.

use super::access::Access;
use super::devices::{Devices, NewDevice};
use super::keys::{Keys, Spent};
use crate::Token;
use rand::rngs::SmallRng;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

/// A server whose cloud-init did not get it into the tailnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentFailure {
    /// Hetzner server id.
    pub server_id: u64,
    /// Server name.
    pub server_name: String,
    /// Why.
    pub reason: FailureReason,
}

/// Why an emulated VM did not join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureReason {
    /// The server was created without user_data.
    #[error("the server has no user_data")]
    NoUserData,
    /// The user_data is not a `#cloud-config` YAML mapping.
    #[error("user_data is not a cloud-config document: {0}")]
    NotCloudConfig(String),
    /// No `runcmd` entry runs `tailscale up`.
    #[error("cloud-init runs no `tailscale up`")]
    NoTailscaleUp,
    /// `tailscale up` names no auth key that cloud-init provides.
    #[error("`tailscale up` has no usable auth key: {0}")]
    NoAuthKey(String),
    /// A failure injected with [`super::TailscaleEmulator::fail_cloud_init`].
    #[error("cloud-init failed before `tailscale up` (injected)")]
    Injected,
    /// The control plane refused the key.
    #[error("the control plane refused the auth key: {0}")]
    Rejected(#[from] EnrollError),
}

/// Why the control plane refused to register a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollError {
    /// The secret matches no key (malformed or never issued).
    #[error("unknown auth key")]
    UnknownKey,
    /// The key was revoked.
    #[error("auth key {0} was revoked")]
    Revoked(String),
    /// The key expired.
    #[error("auth key {0} has expired")]
    Expired(String),
    /// The single-use key already registered a device.
    #[error("auth key {0} was already used")]
    AlreadyUsed(String),
}

/// Everything the emulator knows.
#[derive(Debug)]
pub(super) struct State {
    pub access: Access,
    pub devices: Devices,
    pub keys: Keys,
    pub rng: SmallRng,
    /// The tailnet's name, accepted in paths besides `-`.
    pub tailnet: String,
    /// Enrolments that failed, in order.
    pub failures: Vec<EnrollmentFailure>,
    /// Servers whose first boot (cloud-init) has run.
    pub booted: BTreeSet<u64>,
    /// Injected machine faults: failing cloud-init, nodes held offline.
    pub machines: super::machines::MachineFaults,
}

impl State {
    /// Whether `name` (a path segment) is this tailnet.
    pub(super) fn is_tailnet(&self, name: &str) -> bool {
        name == "-" || name == self.tailnet
    }

    /// Registers a node, as `tailscale up --auth-key=…` does against the control plane.
    ///
    /// The key must be known, unrevoked, unexpired, and (if single-use) unused; it is consumed.
    /// The device gets the key's tags, is authorized if the key is pre-authorized (the emulated
    /// tailnet requires device approval), is ephemeral if the key is, and is online.
    pub(super) fn enroll(
        &mut self,
        auth_key: &Token,
        hostname: &str,
        server_id: u64,
        now: SystemTime,
    ) -> Result<String, EnrollError> {
        let key = self
            .keys
            .by_secret_mut(auth_key.expose())
            .ok_or(EnrollError::UnknownKey)?;
        match key.spent(now) {
            Some(Spent::Revoked) => return Err(EnrollError::Revoked(key.id.clone())),
            Some(Spent::Expired) => return Err(EnrollError::Expired(key.id.clone())),
            Some(Spent::UsedUp) => return Err(EnrollError::AlreadyUsed(key.id.clone())),
            None => {}
        }
        key.uses += 1;
        let new = NewDevice {
            hostname: hostname.to_owned(),
            user: key.owner.clone().unwrap_or_default(),
            tags: key.capabilities.tags.clone(),
            authorized: key.capabilities.preauthorized,
            ephemeral: key.capabilities.ephemeral,
            server_id: Some(server_id),
        };
        let device = self.devices.add(new, &mut self.rng, now);
        Ok(device.node_id.clone())
    }

    /// Marks the devices of `server_id` offline (`lastSeen` = `now`); returns how many.
    pub(super) fn set_offline(&mut self, server_id: u64, now: SystemTime) -> usize {
        let mut n = 0;
        for device in self.devices.of_server(server_id).filter(|d| d.connected) {
            device.connected = false;
            device.last_seen = Some(now);
            n += 1;
        }
        n
    }

    /// Marks the devices of `server_id` online again (a reboot), unless they are held offline;
    /// returns how many.
    pub(super) fn reconnect(&mut self, server_id: u64) -> usize {
        if self.machines.stays_offline(server_id) {
            return 0;
        }
        let mut n = 0;
        for device in self.devices.of_server(server_id) {
            device.connected = true;
            n += 1;
        }
        n
    }

    /// Takes the devices of `server_id` off the control plane (`lastSeen` = `now`, then frozen)
    /// and holds them offline as `until` says; returns how many.
    pub(super) fn hold_offline(
        &mut self,
        server_id: u64,
        until: super::machines::Until,
        now: SystemTime,
    ) -> usize {
        self.machines.hold_offline(server_id, until);
        self.set_offline(server_id, now)
    }

    /// Removes ephemeral devices offline for at least `timeout`; returns how many.
    pub(super) fn reap(&mut self, now: SystemTime, timeout: Duration) -> usize {
        self.devices.remove_where(|d| {
            d.ephemeral && !d.connected && d.last_seen.is_some_and(|seen| seen + timeout <= now)
        })
    }
}
