//! The real applier: installs the version with the VM's own install command (when configured),
//! rewrites the runtime's env file, points `current` at the version's directory, restarts the
//! runtime's systemd unit and checks it is active.

use super::Applier;
use crate::runtime::wire::Desired;
use std::path::{Path, PathBuf};
use tether_schema::cloud_init::{ENV_FILE_PATH, env_file};
use tokio::process::Command;

/// How the runtime is laid out on the VM.
#[derive(Debug, Clone)]
pub struct SystemdApplier {
    /// The runtime's env file (`/etc/tether/agent.env`).
    pub env_file: PathBuf,
    /// Where versions live: `<root>/<version>/`, and `<root>/current` → the running one.
    pub root: PathBuf,
    /// A shell command that installs `$TETHER_RUNTIME_VERSION` into
    /// `$TETHER_RUNTIME_DIR` when that directory does not exist yet.
    pub install: Option<String>,
    /// The runtime's unit.
    pub unit: String,
}

impl Default for SystemdApplier {
    fn default() -> Self {
        SystemdApplier {
            env_file: ENV_FILE_PATH.into(),
            root: "/opt/tether/runtime".into(),
            install: None,
            unit: "tether-runtime.service".to_owned(),
        }
    }
}

impl SystemdApplier {
    /// The env file for `desired`: the identity lines cloud-init wrote (`TETHER_*`) kept, then
    /// the version and the runtime's env.
    fn env_text(&self, desired: &Desired) -> String {
        let kept: String = std::fs::read_to_string(&self.env_file)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("TETHER_"))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut vars = vec![("AGENT_RUNTIME_VERSION", desired.version.as_str())];
        vars.extend(desired.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        kept + &env_file::render(&vars)
    }

    async fn install(&self, version: &str, dir: &Path) -> Result<(), String> {
        if dir.is_dir() {
            return Ok(());
        }
        let Some(install) = &self.install else {
            return Err(format!(
                "version {version} is not installed ({} missing) and no install command is configured",
                dir.display()
            ));
        };
        run(Command::new("sh")
            .args(["-c", install])
            .env("TETHER_RUNTIME_VERSION", version)
            .env("TETHER_RUNTIME_DIR", dir))
        .await
        .map_err(|e| format!("installing {version}: {e}"))
    }
}

async fn run(command: &mut Command) -> Result<(), String> {
    let out = command.output().await.map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "{} ({})",
        out.status,
        stderr.trim().chars().take(300).collect::<String>()
    ))
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path)
}

impl Applier for SystemdApplier {
    async fn apply(&self, desired: &Desired) -> Result<(), String> {
        let dir = self.root.join(&desired.version);
        self.install(&desired.version, &dir).await?;
        write_atomically(&self.env_file, &self.env_text(desired))
            .map_err(|e| format!("writing {}: {e}", self.env_file.display()))?;
        let current = self.root.join("current");
        let link = self.root.join("current.new");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&dir, &link)
            .and_then(|()| std::fs::rename(&link, &current))
            .map_err(|e| format!("selecting {}: {e}", dir.display()))?;
        run(Command::new("systemctl").args(["restart", &self.unit]))
            .await
            .map_err(|e| format!("restarting {}: {e}", self.unit))?;
        run(Command::new("systemctl").args(["is-active", "--quiet", &self.unit]))
            .await
            .map_err(|e| format!("{} is not active after the restart: {e}", self.unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_env_file_keeps_the_identity_and_takes_the_new_runtime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env_file = dir.path().join("agent.env");
        std::fs::write(
            &env_file,
            "TETHER_AGENT=\"a1\"\nTETHER_FLEET=\"f\"\nAGENT_RUNTIME_VERSION=\"1.0\"\nOLD=\"x\"\n",
        )
        .expect("write");
        let applier = SystemdApplier {
            env_file,
            ..SystemdApplier::default()
        };
        let desired = Desired {
            version: "1.1".into(),
            env: BTreeMap::from([("NEW".to_owned(), "a \"b\"".to_owned())]),
            poll_seconds: 10,
        };
        assert_eq!(
            applier.env_text(&desired),
            "TETHER_AGENT=\"a1\"\nTETHER_FLEET=\"f\"\nAGENT_RUNTIME_VERSION=\"1.1\"\nNEW=\"a \\\"b\\\"\"\n"
        );
    }
}
