//! The on-VM agent's part of cloud-init: its configuration (`/etc/tether/agent-client.env`: the
//! daemon's agent API URL and the agent's name), its credential (`/etc/tether/agent-credential`,
//! `0600`, written once and never logged), its systemd unit, and the commands that download the
//! `tether-agent` binary and start it. `docs/decisions/023-on-vm-agent.md` says why it pulls.

/// Where cloud-init writes the agent's configuration, an `EnvironmentFile` of its unit.
pub const CONFIG_PATH: &str = "/etc/tether/agent-client.env";
/// Where cloud-init writes the agent's credential (32 random bytes, base64url).
pub const CREDENTIAL_PATH: &str = "/etc/tether/agent-credential";
/// Where cloud-init writes the agent's systemd unit.
pub const UNIT_PATH: &str = "/etc/systemd/system/tether-agent.service";
/// Where the binary is installed.
pub const BINARY_PATH: &str = "/usr/local/bin/tether-agent";
/// The variable of [`CONFIG_PATH`] holding the agent API's base URL.
pub const URL_VAR: &str = "TETHER_AGENT_API";
/// The variable of [`CONFIG_PATH`] holding the agent's name.
pub const NAME_VAR: &str = "TETHER_AGENT_NAME";
/// The variable of [`CONFIG_PATH`] holding the credential file's path.
pub const CREDENTIAL_VAR: &str = "TETHER_AGENT_CREDENTIAL_FILE";

/// What a VM needs to run the on-VM agent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Bootstrap<'a> {
    /// The daemon's agent API as the VM reaches it over the tailnet (`http://100.x.y.z:8790`).
    pub url: &'a str,
    /// Where the VM downloads the `tether-agent` binary from.
    pub binary_url: &'a str,
    /// The agent's credential; only ever written to [`CREDENTIAL_PATH`].
    pub credential: &'a str,
}

impl std::fmt::Debug for Bootstrap<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrap")
            .field("url", &self.url)
            .field("binary_url", &self.binary_url)
            .field("credential", &"[redacted]")
            .finish()
    }
}

/// The files cloud-init writes for the agent: `(path, permissions, content)`.
pub fn files(agent_name: &str, boot: &Bootstrap<'_>) -> [(&'static str, &'static str, String); 3] {
    let config = super::env_file::render(&[
        (URL_VAR, boot.url),
        (NAME_VAR, agent_name),
        (CREDENTIAL_VAR, CREDENTIAL_PATH),
    ]);
    let unit = format!(
        "[Unit]\nDescription=tether on-VM agent: pulls the desired runtime and reports back\nAfter=network-online.target tailscaled.service\nWants=network-online.target\n\n[Service]\nEnvironmentFile={CONFIG_PATH}\nExecStart={BINARY_PATH}\nRestart=always\nRestartSec=5\n\n[Install]\nWantedBy=multi-user.target\n"
    );
    [
        (CONFIG_PATH, "0600", config),
        (CREDENTIAL_PATH, "0600", boot.credential.to_owned()),
        (UNIT_PATH, "0644", unit),
    ]
}

/// The commands that install and start the agent, each an argv list.
pub fn commands(boot: &Bootstrap<'_>) -> [Vec<String>; 3] {
    let argv = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
    [
        argv(&["curl", "-fsSL", "-o", BINARY_PATH, boot.binary_url]),
        argv(&["chmod", "0755", BINARY_PATH]),
        argv(&["systemctl", "enable", "--now", "tether-agent.service"]),
    ]
}
