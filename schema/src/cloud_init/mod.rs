//! The cloud-init document tether puts in a server's `user_data`: it writes the auth key and
//! the agent's environment, installs Tailscale and joins the tailnet with a one-off auth key.
//!
//! # Guarantees
//! - No value can change the document's structure, whatever it holds (NUL, any Unicode line
//!   break, quotes, `#`, YAML indicators): file contents are base64 (`encoding: b64`) and every
//!   other value is a double-quoted YAML scalar with everything outside printable ASCII escaped
//!   ([`yaml::scalar`]). The document is printable ASCII and LF only, so YAML 1.1 parsers
//!   (cloud-init's PyYAML, which also break lines at U+0085, U+2028 and U+2029) and YAML 1.2
//!   parsers read the same structure.
//! - `/etc/tether/agent.env` is a systemd `EnvironmentFile` (also safe to source from `sh`)
//!   holding exactly the agent's variables; see [`env_file`].
//! - The output is deterministic: the same agent and key always give the same bytes.
//!
//! The format is documented in `docs/spec.md` ("What runs on the VM") and
//! `docs/decisions/008-cloud-init-rendering.md`; the sandbox's Tailscale emulator reads the key
//! file and `--hostname` back out of it to enrol a device.

pub mod agent;
pub mod env_file;
mod fingerprint;
#[cfg(test)]
mod props;
mod size;
pub mod yaml;

pub use fingerprint::{fingerprint, legacy as legacy_fingerprint};
pub use size::{oversize, size_bound};

use crate::model::{Agent, FleetSettings};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::fmt::Write as _;

/// Hetzner's limit on `user_data`, in bytes.
pub const MAX_USER_DATA_BYTES: usize = 32 * 1024;
/// Where cloud-init writes the auth key on the VM; removed right after `tailscale up`.
pub const AUTH_KEY_PATH: &str = "/run/tether/tailscale-authkey";
/// Where cloud-init writes the agent's environment, the runtime service's `EnvironmentFile`.
pub const ENV_FILE_PATH: &str = "/etc/tether/agent.env";
/// Longest auth key tether budgets for when checking the user_data limit at validation time.
pub const MAX_AUTH_KEY_LEN: usize = 128;
/// Longest agent API or binary URL tether budgets for when checking the user_data limit.
pub const MAX_AGENT_URL_LEN: usize = 256;

/// The three variables that say who the VM is: fixed for the server's life.
pub fn identity_vars<'a>(agent: &'a Agent, fleet: &'a FleetSettings) -> Vec<(&'a str, &'a str)> {
    vec![
        ("TETHER_AGENT", agent.name.as_str()),
        ("TETHER_FLEET", fleet.name.as_str()),
        ("TETHER_SUBSCRIPTION", agent.subscription.as_str()),
    ]
}

/// The variables tether writes to [`ENV_FILE_PATH`], in order: its own four, then the agent's
/// `spec.runtime.env`. The on-VM agent rewrites the file when the runtime changes.
pub fn env_vars<'a>(agent: &'a Agent, fleet: &'a FleetSettings) -> Vec<(&'a str, &'a str)> {
    let mut vars = identity_vars(agent, fleet);
    vars.push(("AGENT_RUNTIME_VERSION", agent.runtime.version.as_str()));
    vars.extend(
        agent
            .runtime
            .env
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str())),
    );
    vars
}

/// The commands cloud-init runs, each an argv list: install Tailscale, join with the key file,
/// remove the key file.
fn commands(agent: &Agent) -> [Vec<String>; 3] {
    let tags = agent
        .tags
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let argv = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
    [
        argv(&[
            "sh",
            "-c",
            "curl -fsSL https://tailscale.com/install.sh | sh",
        ]),
        argv(&[
            "tailscale",
            "up",
            &format!("--auth-key=file:{AUTH_KEY_PATH}"),
            &format!("--hostname={}", agent.name),
            &format!("--advertise-tags={tags}"),
        ]),
        argv(&["rm", "-f", AUTH_KEY_PATH]),
    ]
}

/// Renders the cloud-init document for `agent`, embedding `auth_key`, without the on-VM agent.
///
/// The output is deterministic: the same agent and key always give the same bytes.
pub fn render(agent: &Agent, fleet: &FleetSettings, auth_key: &str) -> String {
    render_with_agent(agent, fleet, auth_key, None)
}

/// Renders the cloud-init document for `agent`, embedding `auth_key` and, when given, the
/// on-VM agent's configuration, credential and unit ([`agent`]), installed and started after
/// the VM joined the tailnet.
///
/// The output is deterministic: the same inputs always give the same bytes.
pub fn render_with_agent(
    agent: &Agent,
    fleet: &FleetSettings,
    auth_key: &str,
    boot: Option<&agent::Bootstrap<'_>>,
) -> String {
    let env = env_file::render(&env_vars(agent, fleet));
    let mut doc = String::from(
        "#cloud-config\n# Rendered by tether. Changing what it gives once (hostname, tags, identity) replaces the server; the runtime is updated in place by tether-agent. File contents are base64.\n",
    );
    let _ = writeln!(doc, "hostname: {}", yaml::scalar(agent.name.as_str()));
    doc.push_str("package_update: true\n");
    let _ = writeln!(doc, "packages: {}", yaml::flow(["curl", "ca-certificates"]));
    doc.push_str("write_files:\n");
    let mut files = vec![
        (AUTH_KEY_PATH, "0600", auth_key.to_owned()),
        (ENV_FILE_PATH, "0600", env),
    ];
    if let Some(boot) = boot {
        files.extend(agent::files(agent.name.as_str(), boot));
    }
    for (path, permissions, content) in &files {
        let _ = write!(
            doc,
            "  - path: {}\n    owner: {}\n    permissions: {}\n    encoding: {}\n    content: {}\n",
            yaml::scalar(path),
            yaml::scalar("root:root"),
            yaml::scalar(permissions),
            yaml::scalar("b64"),
            yaml::scalar(&BASE64.encode(content)),
        );
    }
    doc.push_str("runcmd:\n");
    let agent_commands = boot.map(agent::commands).into_iter().flatten();
    for command in commands(agent).into_iter().chain(agent_commands) {
        let _ = writeln!(doc, "  - {}", yaml::flow(&command));
    }
    doc
}

/// The size of the rendered document with the longest auth key tether budgets for.
pub fn worst_case_size(agent: &Agent, fleet: &FleetSettings) -> usize {
    let url = "u".repeat(MAX_AGENT_URL_LEN);
    let boot = agent::Bootstrap {
        url: &url,
        binary_url: &url,
        credential: &"c".repeat(MAX_AUTH_KEY_LEN),
    };
    render_with_agent(agent, fleet, &"k".repeat(MAX_AUTH_KEY_LEN), Some(&boot)).len()
}
