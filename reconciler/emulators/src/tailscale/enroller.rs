//! [`Enroller`]: what a real VM's cloud-init does to the tailnet, for emulated VMs. On first
//! boot (after a create or a rebuild) it reads the `tailscale up` command from the server's
//! cloud-config (parsed as YAML), takes the auth key from the `write_files` entry that command
//! names (`--auth-key=file:<path>`; plain or `encoding: b64`) or from the command itself, and
//! the hostname from `--hostname`, and enrols a device. Later boots reconnect the server's
//! devices (cloud-init runs once per instance); a stop takes them offline.
//!
//! Failed enrolments are logged (never with the key) and kept, with their reason, for
//! [`super::TailscaleEmulator::enrollment_failures`].

use super::Shared;
use super::state::{EnrollmentFailure, FailureReason};
use crate::Token;
use crate::{BootedServer, MachineHooks};
use std::sync::Arc;
use std::time::SystemTime;
use yaml_rust2::{Yaml, YamlLoader};

/// Enrols emulated VMs in the emulated tailnet. Get one from
/// [`super::TailscaleEmulator::enroller`].
#[derive(Debug, Clone)]
pub struct Enroller {
    shared: Arc<Shared>,
}

/// What `tailscale up` would be run with.
#[derive(Debug)]
struct Join {
    auth_key: Token,
    hostname: String,
}

impl Enroller {
    pub(super) fn new(shared: Arc<Shared>) -> Enroller {
        Enroller { shared }
    }

    /// Brings the nodes of `server_id` back online (a server booted again); returns how many.
    pub fn reconnect(&self, server_id: u64) -> usize {
        self.shared.lock().reconnect(server_id)
    }
}

impl MachineHooks for Enroller {
    fn booted(&self, server: &BootedServer) {
        let mut state = self.shared.lock();
        if !state.booted.insert(server.id) {
            let devices = state.reconnect(server.id);
            tracing::info!(
                provider = "tailscale-emulator",
                server_id = server.id,
                devices,
                "server booted again: its nodes reconnect"
            );
            return;
        }
        let injected = state.machines.cloud_init_fails(&server.name);
        let outcome = read_cloud_init(server).and_then(|join| {
            if injected {
                return Err(FailureReason::Injected);
            }
            state
                .enroll(&join.auth_key, &join.hostname, server.id, SystemTime::now())
                .map(|device| (device, join.hostname))
                .map_err(FailureReason::from)
        });
        match outcome {
            Ok((device, hostname)) => {
                tracing::info!(provider = "tailscale-emulator", server_id = server.id, %hostname, %device, "node enrolled");
            }
            Err(reason) => {
                tracing::warn!(provider = "tailscale-emulator", server_id = server.id, %reason, "enrolment failed");
                state.failures.push(EnrollmentFailure {
                    server_id: server.id,
                    server_name: server.name.clone(),
                    reason,
                });
            }
        }
    }

    fn rebuilt(&self, server_id: u64) {
        self.shared.lock().booted.remove(&server_id);
        tracing::info!(
            provider = "tailscale-emulator",
            server_id,
            "server rebuilt: its next boot runs cloud-init again"
        );
    }

    fn stopped(&self, server_id: u64) {
        let devices = self.shared.lock().set_offline(server_id, SystemTime::now());
        tracing::info!(
            provider = "tailscale-emulator",
            server_id,
            devices,
            "server stopped: its nodes are offline"
        );
    }
}

/// The key and hostname the server's cloud-init would pass to `tailscale up`.
fn read_cloud_init(server: &BootedServer) -> Result<Join, FailureReason> {
    let user_data = server
        .user_data
        .as_deref()
        .ok_or(FailureReason::NoUserData)?;
    if !user_data.starts_with("#cloud-config") {
        return Err(FailureReason::NotCloudConfig(
            "it does not start with `#cloud-config`".to_owned(),
        ));
    }
    let docs = YamlLoader::load_from_str(user_data)
        .map_err(|e| FailureReason::NotCloudConfig(e.to_string()))?;
    let doc = docs
        .first()
        .filter(|d| d.as_hash().is_some())
        .ok_or_else(|| FailureReason::NotCloudConfig("it is not a mapping".to_owned()))?;
    let args = tailscale_up(&doc["runcmd"]).ok_or(FailureReason::NoTailscaleUp)?;
    let key = flag(&args, &["auth-key", "authkey"])
        .ok_or_else(|| FailureReason::NoAuthKey("no --auth-key flag".to_owned()))?;
    let auth_key = match key.strip_prefix("file:") {
        Some(path) => written_file(doc, path)?,
        None => Token::new(key),
    };
    let hostname = flag(&args, &["hostname"])
        .or_else(|| doc["hostname"].as_str().map(str::to_owned))
        .unwrap_or_else(|| server.name.clone());
    Ok(Join { auth_key, hostname })
}

/// The arguments after `tailscale up` in the first `runcmd` entry that runs it, whether the
/// entry is a list or a shell string (`sh -c "…"` included); shell operators end it.
fn tailscale_up(runcmd: &Yaml) -> Option<Vec<String>> {
    runcmd.as_vec()?.iter().find_map(|entry| {
        let words: Vec<String> = match entry {
            Yaml::Array(items) => items
                .iter()
                .filter_map(scalar)
                .flat_map(|s| split_words(&s))
                .collect(),
            other => split_words(&scalar(other)?),
        };
        let at = words
            .windows(2)
            .position(|w| (w[0] == "tailscale" || w[0].ends_with("/tailscale")) && w[1] == "up")?;
        Some(
            words[at + 2..]
                .iter()
                .take_while(|w| !matches!(w.as_str(), "&&" | "||" | ";" | "|"))
                .cloned()
                .collect(),
        )
    })
}

/// Whitespace-separated words, with surrounding quotes removed.
fn split_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_owned())
        .collect()
}

/// The value of `--name=value`, `--name value` (or with one dash, as Go's flags allow).
fn flag(args: &[String], names: &[&str]) -> Option<String> {
    args.iter().enumerate().find_map(|(i, arg)| {
        let bare = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
        names
            .iter()
            .find_map(|name| match bare.strip_prefix(name)? {
                "" => args.get(i + 1).cloned(),
                rest => rest.strip_prefix('=').map(str::to_owned),
            })
    })
}

/// The content cloud-init writes to `path`, trimmed as `tailscale up` reads key files.
fn written_file(doc: &Yaml, path: &str) -> Result<Token, FailureReason> {
    let missing = || FailureReason::NoAuthKey(format!("no write_files entry for {path}"));
    let entry = doc["write_files"]
        .as_vec()
        .and_then(|files| files.iter().find(|f| f["path"].as_str() == Some(path)))
        .ok_or_else(missing)?;
    let raw = scalar(&entry["content"]).unwrap_or_default();
    let content = match entry["encoding"].as_str().unwrap_or("text/plain") {
        "text/plain" => raw,
        "b64" | "base64" => decode_base64(&raw)
            .ok_or_else(|| FailureReason::NoAuthKey(format!("{path} is not valid base64")))?,
        other => {
            return Err(FailureReason::NoAuthKey(format!(
                "{path} is written with encoding {other}, which the emulator does not decode"
            )));
        }
    };
    let content = content.trim();
    if content.is_empty() {
        return Err(FailureReason::NoAuthKey(format!("{path} is written empty")));
    }
    Ok(Token::new(content.to_owned()))
}

/// Base64 file content as cloud-init decodes it (`encoding: b64`), as UTF-8 text.
fn decode_base64(text: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// A YAML scalar as text.
fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(user_data: &str) -> BootedServer {
        BootedServer {
            id: 7,
            name: "vm-7".into(),
            user_data: Some(user_data.to_owned()),
        }
    }

    #[test]
    fn keys_come_from_the_named_file_and_hostnames_from_the_flag() {
        let join = read_cloud_init(&server("#cloud-config\nhostname: fallback\nwrite_files:\n  - path: /k\n    content: \"tskey-auth-k1-abc\\n\"\nruncmd:\n  - [tailscale, up, \"--auth-key=file:/k\", \"--hostname=web\"]\n")).expect("join");
        assert_eq!(
            (join.auth_key.expose(), join.hostname.as_str()),
            ("tskey-auth-k1-abc", "web")
        );
    }

    #[test]
    fn base64_key_files_are_decoded_as_cloud_init_does() {
        let join = read_cloud_init(&server("#cloud-config\nwrite_files:\n  - path: \"/k\"\n    encoding: \"b64\"\n    content: \"dHNrZXktYXV0aC1rOS16\"\nruncmd:\n  - [\"tailscale\", \"up\", \"--auth-key=file:/k\", \"--hostname=web\"]\n")).expect("join");
        assert_eq!(join.auth_key.expose(), "tskey-auth-k9-z");
        let reason = read_cloud_init(&server("#cloud-config\nwrite_files:\n  - {path: /k, encoding: b64, content: \"not base64!\"}\nruncmd: [[tailscale, up, \"--auth-key=file:/k\"]]\n")).expect_err("refused");
        assert_eq!(
            reason,
            FailureReason::NoAuthKey("/k is not valid base64".to_owned())
        );
    }

    #[test]
    fn shell_strings_literal_keys_and_fallback_hostnames_work() {
        let join = read_cloud_init(&server("#cloud-config\nhostname: from-cloud-init\nruncmd:\n  - sh -c 'tailscale up --authkey tskey-auth-k2-x && echo ok'\n")).expect("join");
        assert_eq!(
            (join.auth_key.expose(), join.hostname.as_str()),
            ("tskey-auth-k2-x", "from-cloud-init")
        );
        let join = read_cloud_init(&server(
            "#cloud-config\nruncmd:\n  - /usr/bin/tailscale up -auth-key=tskey-auth-k3-y\n",
        ))
        .expect("join");
        assert_eq!(join.hostname, "vm-7");
    }

    #[test]
    fn documents_without_a_usable_key_are_refused_with_a_reason() {
        let reason = |text: &str| read_cloud_init(&server(text)).expect_err("refused");
        assert!(matches!(
            reason("runcmd: []"),
            FailureReason::NotCloudConfig(_)
        ));
        assert!(matches!(
            reason("#cloud-config\n- a\n"),
            FailureReason::NotCloudConfig(_)
        ));
        assert_eq!(
            reason("#cloud-config\nruncmd: [[echo, hi]]\n"),
            FailureReason::NoTailscaleUp
        );
        assert!(matches!(
            reason("#cloud-config\nruncmd: [[tailscale, up, \"--auth-key=file:/nope\"]]\n"),
            FailureReason::NoAuthKey(_)
        ));
        let none = BootedServer {
            user_data: None,
            ..server("")
        };
        assert_eq!(
            read_cloud_init(&none).expect_err("none"),
            FailureReason::NoUserData
        );
    }
}
