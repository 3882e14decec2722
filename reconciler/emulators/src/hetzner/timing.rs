//! How long the emulated Hetzner takes: each kind of action ([`Latencies`]) and a server's boot
//! after `running` ([`Timing`]).

use std::time::Duration;

/// How long each kind of action takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latencies {
    /// `create_server`.
    pub create: Duration,
    /// `start_server` (poweron and the create's follow-up).
    pub start: Duration,
    /// `stop_server` (poweroff).
    pub stop: Duration,
    /// `shutdown_server`.
    pub shutdown: Duration,
    /// `reboot_server` and `reset_server`.
    pub reboot: Duration,
    /// `change_server_type`.
    pub change_type: Duration,
    /// `delete_server`.
    pub delete: Duration,
    /// Firewall actions (`set_firewall_rules`, `apply_firewall`, `remove_firewall`), and how
    /// long a newly covered server's firewall stays `pending`.
    pub firewall: Duration,
}

impl Default for Latencies {
    /// Tens of milliseconds: create 40 ms, everything else 20 ms.
    fn default() -> Self {
        Latencies {
            create: Duration::from_millis(40),
            ..Latencies::uniform(Duration::from_millis(20))
        }
    }
}

impl Latencies {
    /// What the real Hetzner Cloud API takes, roughly: create 25 s, start 10 s, power off 7 s,
    /// ACPI shutdown 10 s, reboot 7 s, change type 30 s, delete 5 s, firewall changes 3 s
    /// ("can take up to a few seconds", the firewalls reference).
    pub fn realistic() -> Self {
        let s = Duration::from_secs;
        Latencies {
            create: s(25),
            start: s(10),
            stop: s(7),
            shutdown: s(10),
            reboot: s(7),
            change_type: s(30),
            delete: s(5),
            firewall: s(3),
        }
    }

    /// Every latency multiplied by `factor` (e.g. `0.1`: the same shape, ten times faster).
    pub fn scaled(self, factor: f64) -> Self {
        let f = |d: Duration| d.mul_f64(factor.max(0.0));
        Latencies {
            create: f(self.create),
            start: f(self.start),
            stop: f(self.stop),
            shutdown: f(self.shutdown),
            reboot: f(self.reboot),
            change_type: f(self.change_type),
            delete: f(self.delete),
            firewall: f(self.firewall),
        }
    }

    /// The same latency for every action.
    pub fn uniform(each: Duration) -> Self {
        Latencies {
            create: each,
            start: each,
            stop: each,
            shutdown: each,
            reboot: each,
            change_type: each,
            delete: each,
            firewall: each,
        }
    }
}

/// Action latencies plus the time cloud-init takes after `running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Per action.
    pub latencies: Latencies,
    /// From `running` to the `booted` hook.
    pub boot_delay: Duration,
}
