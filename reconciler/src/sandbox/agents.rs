//! The on-VM agent on every emulated VM: when a server boots, its cloud-init runs as on a real
//! VM (the Tailscale emulator enrols it), and if it carries tether-agent's configuration and
//! credential, the same [`agent_client::run`] loop starts in-process with a [`Simulated`]
//! applier; it stops when the server stops. [`AgentSimulator::fail_version`] makes a version
//! fail on every VM, as a broken release would.

use crate::agent_client::{self, Applier, Client};
use crate::runtime::wire::Desired;
use crate::secret::Secret;
use base64::Engine as _;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tether_emulators::{BootedServer, MachineHooks};
use tether_schema::cloud_init::agent::{CONFIG_PATH, CREDENTIAL_PATH, NAME_VAR, URL_VAR};
use tokio::sync::watch;
use yaml_rust2::{Yaml, YamlLoader};

/// How often simulated agents poll.
pub const SIMULATED_POLL: Duration = Duration::from_millis(25);

/// Applies a runtime by pretending to: versions named failing report why.
#[derive(Debug, Clone, Default)]
pub struct Simulated {
    failing: Arc<Mutex<BTreeSet<String>>>,
}

impl Applier for Simulated {
    async fn apply(&self, desired: &Desired) -> Result<(), String> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let failing = self
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&desired.version);
        if failing {
            Err(format!(
                "tether-runtime.service {} exited with status 1 right after the restart (simulated failure)",
                desired.version
            ))
        } else {
            Ok(())
        }
    }
}

/// Runs the agents of booted emulated VMs; wraps the Tailscale emulator's enroller.
#[derive(Debug)]
pub struct AgentSimulator {
    inner: Arc<dyn MachineHooks>,
    applier: Simulated,
    running: Mutex<BTreeMap<u64, watch::Sender<bool>>>,
}

impl AgentSimulator {
    /// Runs agents after `inner` (the enroller) has seen each boot.
    pub fn new(inner: Arc<dyn MachineHooks>) -> AgentSimulator {
        AgentSimulator {
            inner,
            applier: Simulated::default(),
            running: Mutex::default(),
        }
    }

    /// From now on, `version` fails to start on every VM.
    pub fn fail_version(&self, version: &str) {
        self.applier
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(version.to_owned());
    }

    /// How many agents run.
    pub fn running(&self) -> usize {
        self.tasks().len()
    }

    fn tasks(&self) -> MutexGuard<'_, BTreeMap<u64, watch::Sender<bool>>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MachineHooks for AgentSimulator {
    fn booted(&self, server: &BootedServer) {
        self.inner.booted(server);
        let Some((url, name, credential)) = server.user_data.as_deref().and_then(agent_files)
        else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut tasks = self.tasks();
        if tasks.get(&server.id).is_some_and(|t| !t.is_closed()) {
            return;
        }
        let (stop_tx, stop) = watch::channel(false);
        tasks.insert(server.id, stop_tx);
        let applier = self.applier.clone();
        tracing::info!(provider = "sandbox", server_id = server.id, agent = %name, "tether-agent started");
        handle.spawn(async move {
            let client = Client::new(&url, &name, credential);
            agent_client::run(&client, &applier, Some(SIMULATED_POLL), stop).await;
        });
    }

    fn stopped(&self, server_id: u64) {
        self.inner.stopped(server_id);
        if let Some(stop) = self.tasks().remove(&server_id) {
            let _ = stop.send(true);
        }
    }

    fn rebuilt(&self, server_id: u64) {
        self.inner.rebuilt(server_id);
        if let Some(stop) = self.tasks().remove(&server_id) {
            let _ = stop.send(true);
        }
    }
}

/// The agent API URL, agent name and credential cloud-init writes for tether-agent.
fn agent_files(user_data: &str) -> Option<(String, String, Secret<String>)> {
    let docs = YamlLoader::load_from_str(user_data).ok()?;
    let doc = docs.first()?;
    let config = written(doc, CONFIG_PATH)?;
    let credential = Secret::new(written(doc, CREDENTIAL_PATH)?.trim().to_owned());
    let var = |name: &str| {
        config.lines().find_map(|line| {
            let value = line
                .strip_prefix(name)?
                .strip_prefix("=\"")?
                .strip_suffix('"')?;
            Some(value.replace("\\\"", "\"").replace("\\\\", "\\"))
        })
    };
    Some((var(URL_VAR)?, var(NAME_VAR)?, credential))
}

/// The decoded content of a base64 `write_files` entry.
fn written(doc: &Yaml, path: &str) -> Option<String> {
    let entry = doc["write_files"]
        .as_vec()?
        .iter()
        .find(|f| f["path"].as_str() == Some(path))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(entry["content"].as_str()?.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}
