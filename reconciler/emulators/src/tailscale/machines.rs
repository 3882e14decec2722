//! Misbehaving machines, for showing tether's self-healing: a server whose cloud-init fails
//! (it boots but never runs `tailscale up`), for its next N first boots or forever, and a
//! node that drops off the control plane (`connectedToControl` false, `lastSeen` frozen) until
//! its server is power-cycled, or forever. Set over `/_emulator/…` (the `admin` routes) or the
//! [`super::TailscaleEmulator`] handle.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long a knob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Until {
    /// For the next `n` times (cloud-init: first boots, i.e. create or rebuild).
    Times(u32),
    /// Until the server is power-cycled (reboot, reset, power off and on); offline only.
    PowerCycle,
    /// For good.
    Forever,
}

/// The knobs set, by server name (cloud-init) and server id (offline nodes).
#[derive(Debug, Default)]
pub(super) struct MachineFaults {
    cloud_init: BTreeMap<String, Until>,
    offline: BTreeMap<u64, Until>,
}

impl MachineFaults {
    /// Makes the cloud-init of servers named `name` fail as `until` says.
    pub fn fail_cloud_init(&mut self, name: &str, until: Until) {
        self.cloud_init.insert(name.to_owned(), until);
    }

    /// Whether this first boot of `name` fails; counts it against a [`Until::Times`].
    pub fn cloud_init_fails(&mut self, name: &str) -> bool {
        match self.cloud_init.get_mut(name) {
            Some(Until::Times(0)) | None => false,
            Some(Until::Times(n)) => {
                *n -= 1;
                true
            }
            Some(_) => true,
        }
    }

    /// Keeps the nodes of `server_id` offline as `until` says.
    pub fn hold_offline(&mut self, server_id: u64, until: Until) {
        self.offline.insert(server_id, until);
    }

    /// Whether the nodes of `server_id` stay offline through this boot; a boot ends a
    /// [`Until::PowerCycle`] hold.
    pub fn stays_offline(&mut self, server_id: u64) -> bool {
        match self.offline.get(&server_id) {
            Some(Until::Forever) => true,
            Some(_) => {
                self.offline.remove(&server_id);
                false
            }
            None => false,
        }
    }

    /// Every knob, for `GET /_emulator/machines`.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "cloudInitFailures": self.cloud_init,
            "offline": self.offline.iter().map(|(id, u)| (id.to_string(), *u)).collect::<BTreeMap<_, _>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_failures_run_out_and_power_cycles_end_a_hold() {
        let mut m = MachineFaults::default();
        m.fail_cloud_init("a", Until::Times(1));
        m.fail_cloud_init("b", Until::Forever);
        assert!(m.cloud_init_fails("a"));
        assert!(!m.cloud_init_fails("a"));
        assert!(m.cloud_init_fails("b") && m.cloud_init_fails("b"));
        assert!(!m.cloud_init_fails("c"));
        m.hold_offline(7, Until::PowerCycle);
        m.hold_offline(8, Until::Forever);
        assert!(!m.stays_offline(7), "a boot is the power cycle");
        assert!(m.stays_offline(8) && m.stays_offline(8));
    }
}
