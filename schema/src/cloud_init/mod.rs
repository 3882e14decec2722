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

pub mod env_file;
mod fingerprint;
#[cfg(test)]
mod props;
mod size;
pub mod yaml;

pub use fingerprint::fingerprint;
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

/// The variables tether writes to [`ENV_FILE_PATH`], in order: its own four, then the agent's
/// `spec.runtime.env`.
pub fn env_vars<'a>(agent: &'a Agent, fleet: &'a FleetSettings) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![
        ("TETHER_AGENT", agent.name.as_str()),
        ("TETHER_FLEET", fleet.name.as_str()),
        ("TETHER_SUBSCRIPTION", agent.subscription.as_str()),
        ("AGENT_RUNTIME_VERSION", agent.runtime.version.as_str()),
    ];
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

/// Renders the cloud-init document for `agent`, embedding `auth_key`.
///
/// The output is deterministic: the same agent and key always give the same bytes.
pub fn render(agent: &Agent, fleet: &FleetSettings, auth_key: &str) -> String {
    let env = env_file::render(&env_vars(agent, fleet));
    let mut doc = String::from(
        "#cloud-config\n# Rendered by tether; changing it replaces the server. File contents are base64.\n",
    );
    let _ = writeln!(doc, "hostname: {}", yaml::scalar(agent.name.as_str()));
    doc.push_str("package_update: true\n");
    let _ = writeln!(doc, "packages: {}", yaml::flow(["curl", "ca-certificates"]));
    doc.push_str("write_files:\n");
    for (path, content) in [(AUTH_KEY_PATH, auth_key), (ENV_FILE_PATH, env.as_str())] {
        let _ = write!(
            doc,
            "  - path: {}\n    owner: {}\n    permissions: {}\n    encoding: {}\n    content: {}\n",
            yaml::scalar(path),
            yaml::scalar("root:root"),
            yaml::scalar("0600"),
            yaml::scalar("b64"),
            yaml::scalar(&BASE64.encode(content)),
        );
    }
    doc.push_str("runcmd:\n");
    for command in commands(agent) {
        let _ = writeln!(doc, "  - {}", yaml::flow(&command));
    }
    doc
}
