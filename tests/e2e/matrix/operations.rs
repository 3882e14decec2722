//! The multi-step operations of the matrix: for each, the fleet policy, the fault-free passes
//! that bring the world to the state just before it, the change after which exactly one pass
//! performs it, and the state the world must reach.

use super::world::{AGENT, Policy, Spec, World};
use tether_emulators::tailscale::Until;

/// One multi-step operation on the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Key, server, enrolment.
    Create,
    /// Power off, change type, power on (to a bigger disk).
    Resize,
    /// The spec asks for a type with a smaller disk than the server's: Hetzner cannot resize
    /// to it.
    Downsize,
    /// A new server in another location, then the old one and its device deleted.
    Replace,
    /// The spec says `power: off`.
    PowerOff,
    /// The spec says `power: on` again.
    PowerOn,
    /// The spec is removed: power off, deauthorize the device, rename and label.
    Quarantine,
    /// The spec comes back during the grace period.
    Restore,
    /// The spec is removed, and comes back right after the (faulted) quarantine pass.
    QuarantineUndone,
    /// The spec is removed without grace: the server and its device are deleted.
    Delete,
    /// Self-healing of a server that never enrolled: rebuild with a fresh key.
    Rekey,
    /// Self-healing of a device that went offline: a hard reset.
    PowerCycle,
    /// Self-healing by replacement (no re-keys allowed): a new server, the old one retired.
    HealReplace,
}

/// What the world must look like once passes are quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    /// The agent's server exists as `Spec` says, its own device online (when on), status Ready.
    Runs(Spec),
    /// The server waits in quarantine: off, renamed, its devices deauthorized.
    Quarantined,
    /// Nothing of the agent is left.
    Gone,
}

/// Passes the preparation may take to settle.
const SETTLE: usize = 4;

impl Operation {
    /// Every operation of the matrix.
    pub const ALL: [Operation; 13] = [
        Operation::Create,
        Operation::Resize,
        Operation::Downsize,
        Operation::Replace,
        Operation::PowerOff,
        Operation::PowerOn,
        Operation::Quarantine,
        Operation::Restore,
        Operation::QuarantineUndone,
        Operation::Delete,
        Operation::Rekey,
        Operation::PowerCycle,
        Operation::HealReplace,
    ];

    /// The name in case identifiers.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Resize => "resize",
            Operation::Downsize => "downsize",
            Operation::Replace => "replace",
            Operation::PowerOff => "power-off",
            Operation::PowerOn => "power-on",
            Operation::Quarantine => "quarantine",
            Operation::Restore => "restore",
            Operation::QuarantineUndone => "quarantine-undone",
            Operation::Delete => "delete",
            Operation::Rekey => "heal-rekey",
            Operation::PowerCycle => "heal-power-cycle",
            Operation::HealReplace => "heal-replace",
        }
    }

    /// The fleet policy of the operation's world.
    pub fn policy(self) -> Policy {
        Policy {
            grace: if self == Operation::Delete {
                "0"
            } else {
                "24h"
            },
            rekeys: u32::from(self != Operation::HealReplace),
            power_cycles: 1,
        }
    }

    /// The agent's spec after the change (`None`: removed).
    pub fn target(self) -> Option<Spec> {
        let base = Spec::BASE;
        match self {
            Operation::Resize => Some(Spec {
                server_type: "cpx21",
                ..base
            }),
            Operation::Replace => Some(Spec {
                location: "nbg1",
                ..base
            }),
            Operation::Downsize => Some(base),
            Operation::PowerOff => Some(Spec { on: false, ..base }),
            Operation::Quarantine | Operation::QuarantineUndone | Operation::Delete => None,
            Operation::Create
            | Operation::PowerOn
            | Operation::Restore
            | Operation::Rekey
            | Operation::PowerCycle
            | Operation::HealReplace => Some(base),
        }
    }

    /// The agent's spec from the first pass after the operation's pass on: the target, or the
    /// spec back for [`Operation::QuarantineUndone`].
    pub fn after(self) -> Option<Spec> {
        match self {
            Operation::QuarantineUndone => Some(Spec::BASE),
            _ => self.target(),
        }
    }

    /// What the world must reach.
    pub fn desired(self) -> Desired {
        match (self, self.after()) {
            (Operation::Quarantine, _) => Desired::Quarantined,
            (_, None) => Desired::Gone,
            (_, Some(spec)) => Desired::Runs(spec),
        }
    }

    /// Brings `world` to the state just before the operation and makes the change after which
    /// the next pass performs it. Fault-free; returns the passes' summaries.
    pub async fn prepare(self, world: &mut World) -> Vec<String> {
        let base = Spec::BASE;
        let mut log = Vec::new();
        match self {
            Operation::Create => {}
            Operation::Rekey | Operation::HealReplace => {
                world
                    .stack
                    .tailscale
                    .fail_cloud_init(AGENT, Until::Times(1));
                world.commit(Some(base), "billing: a subscription");
                // The create; its VM never enrols, and the next pass is past the deadline.
                log.push(world.pass(&super::inject::Script::clean()).await.summary());
            }
            Operation::PowerOn => {
                world.commit(Some(base), "billing: a subscription");
                log.extend(world.settle(SETTLE).await);
                world.commit(Some(Spec { on: false, ..base }), "billing: paused");
                log.extend(world.settle(SETTLE).await);
            }
            Operation::Restore => {
                world.commit(Some(base), "billing: a subscription");
                log.extend(world.settle(SETTLE).await);
                world.commit(None, "billing: cancelled");
                log.extend(world.settle(SETTLE).await);
            }
            Operation::PowerCycle => {
                world.commit(Some(base), "billing: a subscription");
                log.extend(world.settle(SETTLE).await);
                let server = world
                    .stack
                    .hetzner
                    .servers()
                    .into_iter()
                    .find(|s| s.name == AGENT)
                    .expect("the agent's server");
                world
                    .stack
                    .tailscale
                    .hold_offline(server.id, Until::PowerCycle);
            }
            Operation::Downsize => {
                let big = Spec {
                    server_type: "cpx21",
                    ..base
                };
                world.commit(Some(big), "billing: a bigger plan");
                log.extend(world.settle(SETTLE).await);
            }
            Operation::Resize
            | Operation::QuarantineUndone
            | Operation::Replace
            | Operation::PowerOff
            | Operation::Quarantine
            | Operation::Delete => {
                world.commit(Some(base), "billing: a subscription");
                log.extend(world.settle(SETTLE).await);
            }
        }
        match self {
            Operation::Rekey | Operation::HealReplace | Operation::PowerCycle => {}
            _ => world.commit(self.target(), &format!("billing: {}", self.as_str())),
        }
        log
    }

    /// What changes between the operation's pass and the next: the spec of
    /// [`Operation::QuarantineUndone`] comes back.
    pub fn interlude(self, world: &World) {
        if self == Operation::QuarantineUndone {
            world.commit(self.after(), "billing: the subscription is back");
        }
    }
}
