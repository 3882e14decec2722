//! The text the `tether/spec` hash covers for cloud-init, in a form frozen at the layout tether
//! rendered up to 0.1 with the key left out: [`fingerprint`] covers what only a new server can
//! change (hostname, tags, the three identity variables); [`legacy`] is the form servers
//! created before runtime updates were delivered in place were hashed with (it also covers the
//! runtime version and env; `docs/decisions/023-on-vm-agent.md`).
//!
//! It is frozen so that a change of rendering (such as base64 file contents) never changes an
//! agent's hash and so never replaces servers whose spec did not change; see
//! `docs/decisions/008-cloud-init-rendering.md`. It is hashed, never sent to a VM.

use crate::model::{Agent, FleetSettings};
use std::fmt::Write as _;

/// Stands in for the auth key, so the hash does not depend on the key.
const KEY_PLACEHOLDER: &str = "tskey-placeholder";

/// The frozen description of `agent`'s create-only cloud-init inputs: the runtime version and
/// env are left out, since the on-VM agent delivers them in place. Distinct agents give
/// distinct texts: every value is quoted with `"` and `\` escaped, one variable per line.
pub fn fingerprint(agent: &Agent, fleet: &FleetSettings) -> String {
    frozen(agent, fleet, &super::identity_vars(agent, fleet))
}

/// The frozen description as hashed before runtime fields were delivered in place: every
/// variable of the env file, runtime version and env included.
pub fn legacy(agent: &Agent, fleet: &FleetSettings) -> String {
    frozen(agent, fleet, &super::env_vars(agent, fleet))
}

fn frozen(agent: &Agent, fleet: &FleetSettings, vars: &[(&str, &str)]) -> String {
    let name = agent.name.as_str();
    let tags = agent
        .tags
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let mut env = String::new();
    for (key, value) in vars {
        let _ = writeln!(env, "      {key}={}", quote(value));
    }
    let path = super::AUTH_KEY_PATH;
    format!(
        "#cloud-config\n\
         # Rendered by tether for agent {name} of fleet {fleet}. Changing it replaces the server.\n\
         hostname: {name}\n\
         package_update: true\n\
         packages: [curl, ca-certificates]\n\
         write_files:\n\
         \x20 - path: {path}\n\
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
         \x20 - [tailscale, up, \"--auth-key=file:{path}\", \"--hostname={name}\", \"--advertise-tags={tags}\"]\n\
         \x20 - [rm, -f, {path}]\n",
        fleet = fleet.name,
        key = quote(KEY_PLACEHOLDER),
    )
}

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
