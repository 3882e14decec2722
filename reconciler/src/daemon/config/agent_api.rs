//! The `agentApi` block: where the on-VM agents' API listens (the daemon host's tailnet address;
//! never a public one), the URL the VMs are given, where they download `tether-agent`, how often
//! they poll and how long a rollout wave may take. Absent `listen`: no API, no runtime rollouts.

use super::check::Check;
use crate::process::parse_duration;
use crate::runtime::Config;
use std::net::SocketAddr;
use std::time::Duration;

const DURATION_HINT: &str = "write a number with a unit: `10s`, `5m`";

impl Check<'_> {
    pub(super) fn agent_api(&mut self) -> Option<Config> {
        let listen: Option<SocketAddr> = self.parsed(
            "agentApi.listen",
            None,
            "write the daemon host's tailnet address and a port, e.g. `100.64.0.1:8790`",
            |t| {
                t.parse()
                    .map(Some)
                    .map_err(|_| format!("`{t}` is not an address and port"))
            },
        );
        let poll = self.parsed(
            "agentApi.poll",
            Duration::from_secs(10),
            DURATION_HINT,
            parse_duration,
        );
        let wave_timeout = self.parsed(
            "agentApi.waveTimeout",
            Duration::from_secs(300),
            DURATION_HINT,
            parse_duration,
        );
        let listen = listen?;
        let url = self
            .text("agentApi.url")
            .unwrap_or_else(|| format!("http://{listen}"));
        let Some(binary_url) = self.text("agentApi.binaryUrl") else {
            self.bad(
                "agentApi.binaryUrl",
                "is required with `agentApi.listen`".to_owned(),
                "give the URL VMs download the tether-agent binary from (a release asset or your own mirror)",
            );
            return None;
        };
        if listen.ip().is_unspecified() {
            self.bad(
                "agentApi.listen",
                format!("`{listen}` listens on every interface, public ones included"),
                "bind the daemon host's tailnet address (`tailscale ip -4`), e.g. `100.64.0.1:8790`",
            );
        }
        Some(Config {
            listen,
            url,
            binary_url,
            poll,
            wave_timeout,
        })
    }
}
