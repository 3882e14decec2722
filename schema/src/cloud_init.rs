//! The cloud-init document tether puts in a server's `user_data`: it writes the agent's
//! environment, installs Tailscale and joins the tailnet with a one-off auth key.
//!
//! The format is documented in `docs/spec.md` ("What runs on the VM"); the sandbox's Hetzner
//! emulator reads the key file and `--hostname` back out of it to enrol a device.

use crate::model::{Agent, FleetSettings};
use std::fmt::Write as _;

/// Hetzner's limit on `user_data`, in bytes.
pub const MAX_USER_DATA_BYTES: usize = 32 * 1024;
/// Where cloud-init writes the auth key on the VM; removed right after `tailscale up`.
pub const AUTH_KEY_PATH: &str = "/run/tether/tailscale-authkey";
/// Longest auth key tether budgets for when checking the user_data limit at validation time.
pub const MAX_AUTH_KEY_LEN: usize = 128;

/// Renders the cloud-init document for `agent`, embedding `auth_key`.
///
/// The output is deterministic: the same agent and key always give the same bytes.
pub fn render(agent: &Agent, fleet: &FleetSettings, auth_key: &str) -> String {
    let name = agent.name.as_str();
    let tags = agent
        .tags
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let mut env = String::new();
    let _ = writeln!(env, "      TETHER_AGENT={}", quote(name));
    let _ = writeln!(env, "      TETHER_FLEET={}", quote(fleet.name.as_str()));
    let _ = writeln!(
        env,
        "      TETHER_SUBSCRIPTION={}",
        quote(agent.subscription.as_str())
    );
    let _ = writeln!(
        env,
        "      AGENT_RUNTIME_VERSION={}",
        quote(agent.runtime.version.as_str())
    );
    for (key, value) in &agent.runtime.env {
        let _ = writeln!(env, "      {key}={}", quote(value));
    }
    format!(
        "#cloud-config\n\
         # Rendered by tether for agent {name} of fleet {fleet}. Changing it replaces the server.\n\
         hostname: {name}\n\
         package_update: true\n\
         packages: [curl, ca-certificates]\n\
         write_files:\n\
         \x20 - path: {AUTH_KEY_PATH}\n\
         \x20   owner: root:root\n\
         \x20   permissions: \"0600\"\n\
         \x20   content: {key}\n\
         \x20 - path: /etc/tether/agent.env\n\
         \x20   owner: root:root\n\
         \x20   permissions: \"0600\"\n\
         \x20   content: |\n\
         {env}\
         runcmd:\n\
         \x20 - [sh, -c, \"curl -fsSL https://tailscale.com/install.sh | sh\"]\n\
         \x20 - [tailscale, up, \"--auth-key=file:{AUTH_KEY_PATH}\", \"--hostname={name}\", \"--advertise-tags={tags}\"]\n\
         \x20 - [rm, -f, {AUTH_KEY_PATH}]\n",
        fleet = fleet.name,
        key = quote(auth_key),
    )
}

/// Double-quotes `value` so it reads back the same as a YAML scalar and as a systemd
/// `EnvironmentFile` value.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The size of the rendered document with the longest auth key tether budgets for.
pub fn worst_case_size(agent: &Agent, fleet: &FleetSettings) -> usize {
    render(agent, fleet, &"k".repeat(MAX_AUTH_KEY_LEN)).len()
}
