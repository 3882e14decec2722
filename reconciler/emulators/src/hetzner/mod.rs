//! The Hetzner Cloud API emulator: servers, actions, SSH keys, firewalls and the catalog under
//! `/v1`,
//! answering like the real API (api-facts §1) — bearer auth, error envelopes, pagination,
//! label selectors, rate limits, and asynchronous actions that take time.
//!
//! Start with [`HetznerEmulator::start`] and a [`Config`]; point a client at
//! [`HetznerEmulator::url`]. Where to look next:
//! - `routes/`: the HTTP surface, one file per resource, and `/_emulator` control routes;
//! - `lifecycle.rs`: how servers move between states over time, and when hooks fire
//!   (`timing.rs`: how long each action takes);
//! - `state.rs`: the model; `firewall.rs`: firewall rules, targets and what they cover; `catalog.rs` + `seed.rs`: locations, server types, images;
//! - `selector.rs`, `labels.rs`, `pagination.rs`, `ratelimit.rs`, `errors.rs`: pure rules.

mod body;
pub mod catalog;
mod errors;
mod firewall;
pub mod labels;
mod lifecycle;
pub mod pagination;
mod query;
pub mod ratelimit;
mod routes;
mod seed;
pub mod selector;
mod shared;
mod state;
mod status;
mod timing;
mod wire;

#[cfg(test)]
mod tests;

pub use catalog::Catalog;
pub use ratelimit::RateLimit;
pub use status::ServerStatus;
pub use timing::Latencies;

use super::MachineHooks;
use super::emulator::{Faults, RequestLog, Server};
use crate::Token;
use rand::Rng;
use rand::distr::Alphanumeric;
use ratelimit::Limiter;
use shared::Shared;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use timing::Timing;
use tokio::sync::watch;

/// The public key of the seeded SSH key `ops-2026` (tether's example fleet uses it).
pub const OPS_2026_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINfcn3vIynvFYbAIJLbbgioi47ppWs15Mn5QVG1VmBt8 ops-2026";

/// How to run the emulator.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port. Keep it on loopback: `/_emulator` needs no
    /// token.
    pub addr: SocketAddr,
    /// Tokens that authenticate, all for the one project. The default is one random token.
    pub tokens: Vec<Token>,
    /// How long each kind of action takes.
    pub latencies: Latencies,
    /// Time from `running` to the `booted` hook (cloud-init).
    pub boot_delay: Duration,
    /// The token bucket.
    pub rate_limit: RateLimit,
    /// Most servers the project may have (`resource_limit_exceeded` beyond).
    pub server_limit: usize,
    /// Locations, server types and images.
    pub catalog: Catalog,
    /// SSH keys that exist from the start: `(name, public key line)`.
    pub ssh_keys: Vec<(String, String)>,
    /// Seed of the fault injector's random source.
    pub fault_seed: u64,
    /// Added to the first server and action ids (100001 and 5000001), so several instances,
    /// like the projects of Hetzner's one id space, never hand out the same id.
    pub id_offset: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: vec![random_token()],
            latencies: Latencies::default(),
            boot_delay: Duration::from_millis(30),
            rate_limit: RateLimit::default(),
            server_limit: 50,
            catalog: Catalog::default(),
            ssh_keys: vec![("ops-2026".to_owned(), OPS_2026_KEY.to_owned())],
            fault_seed: 0,
            id_offset: 0,
        }
    }
}

/// A random 64-character token, the length of a real Hetzner API token.
pub fn random_token() -> Token {
    Token::new(
        rand::rng()
            .sample_iter(Alphanumeric)
            .take(64)
            .map(char::from)
            .collect::<String>(),
    )
}

/// A server as the control API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSummary {
    /// Server id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Lifecycle state.
    pub status: ServerStatus,
    /// Server type name.
    pub server_type: String,
    /// Location name.
    pub location: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// cloud-init as given at create time; secret because it may embed an auth key.
    pub user_data: Option<Token>,
}

/// A server to add with [`HetznerEmulator::seed_running`].
#[derive(Debug, Clone)]
pub struct Seed<'a> {
    /// Name, unique in the project.
    pub name: &'a str,
    /// Server type name.
    pub server_type: &'a str,
    /// Location name.
    pub location: &'a str,
    /// Image name.
    pub image: &'a str,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A running Hetzner Cloud emulator. Dropping it stops the server and the lifecycle tasks;
/// [`HetznerEmulator::shutdown`] also waits for open connections to close.
#[derive(Debug)]
pub struct HetznerEmulator {
    /// `None` only inside `shutdown`.
    server: Option<Server>,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl HetznerEmulator {
    /// Starts the emulator on `config.addr`.
    ///
    /// # Errors
    /// The address cannot be bound, or a seeded SSH key is malformed (`InvalidInput`).
    pub async fn start(config: Config) -> io::Result<HetznerEmulator> {
        let mut model = state::Model::default();
        model.offset_ids(config.id_offset);
        for (name, key) in &config.ssh_keys {
            routes::seed_key(&mut model, name, key).map_err(|message| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("SSH key '{name}': {message}"),
                )
            })?;
        }
        let faults = Arc::new(Faults::new(config.fault_seed));
        let requests = Arc::new(RequestLog::default());
        let shared = Arc::new(Shared {
            model: Mutex::new(model),
            catalog: config.catalog,
            timing: Timing {
                latencies: config.latencies,
                boot_delay: config.boot_delay,
            },
            server_limit: config.server_limit,
            tokens: config.tokens,
            limiter: Limiter::new(config.rate_limit),
            hooks: RwLock::new(None),
            faults: faults.clone(),
            requests: requests.clone(),
            stop: watch::Sender::new(false),
            drop_labels: AtomicBool::new(false),
        });
        let router = routes::router(shared.clone());
        let server =
            Server::start_on(config.addr, router, faults, requests, errors::fault_body).await?;
        Ok(HetznerEmulator {
            addr: server.addr(),
            server: Some(server),
            shared,
        })
    }

    /// The API base URL, including `/v1`: `http://127.0.0.1:<port>/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first valid token.
    pub fn token(&self) -> Token {
        self.shared.tokens.first().cloned().unwrap_or_default()
    }

    /// Sets who hears about boots and stops from now on.
    pub fn set_hooks(&self, hooks: Arc<dyn MachineHooks>) {
        *self
            .shared
            .hooks
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(hooks);
    }

    /// Every server, by id.
    pub fn servers(&self) -> Vec<ServerSummary> {
        self.shared
            .model()
            .servers
            .values()
            .map(|s| ServerSummary {
                id: s.id,
                name: s.name.clone(),
                status: s.status,
                server_type: s.server_type.name.clone(),
                location: s.location.name.clone(),
                labels: s.labels.clone(),
                user_data: s.user_data.clone().map(Token::new),
            })
            .collect()
    }

    /// Every action ever started on a server, oldest first, as `(command, server id)`: e.g.
    /// how many `create_server` there were, or whether a server got its own `apply_firewall`.
    pub fn action_commands(&self) -> Vec<(&'static str, u64)> {
        self.shared
            .model()
            .actions
            .values()
            .filter_map(|a| Some((a.command.as_str(), a.server?)))
            .collect()
    }

    /// Deletes a server "by hand", as from the console: it is gone at once, its running
    /// actions fail, and `stopped` fires if it had booted. Returns whether it existed.
    pub fn delete_server(&self, id: u64) -> bool {
        let (existed, event) = self.shared.model().remove_by_hand(id);
        self.shared.fire(event.into_iter().collect());
        existed
    }

    /// Adds a running, booted server at once, as if it had been created long ago: no action,
    /// no hook. For benchmarks that need a large converged project without creating it request
    /// by request. Returns its id.
    ///
    /// # Errors
    /// The name is taken, the project is full, or the type, location or image is not in the
    /// catalog.
    pub fn seed_running(&self, seed: Seed<'_>) -> Result<u64, String> {
        let catalog = &self.shared.catalog;
        let server_type = catalog
            .server_type(seed.server_type)
            .ok_or_else(|| format!("no server type `{}`", seed.server_type))?
            .clone();
        let location = catalog
            .location(seed.location)
            .ok_or_else(|| format!("no location `{}`", seed.location))?
            .clone();
        let image = catalog
            .image(seed.image, &server_type.architecture)
            .ok_or_else(|| format!("no image `{}`", seed.image))?
            .clone();
        let mut model = self.shared.model();
        if model.server_named(seed.name).is_some() {
            return Err(format!("the name `{}` is taken", seed.name));
        }
        if model.servers.len() >= self.shared.server_limit {
            return Err("the project's server limit is reached".to_owned());
        }
        let id = model.server_id();
        let (ip_index, ipv4) = model.allocate_ips();
        let record = state::ServerRecord {
            id,
            name: seed.name.to_owned(),
            status: ServerStatus::Running,
            created: time::OffsetDateTime::now_utc(),
            primary_disk_size: server_type.disk,
            server_type,
            location,
            image,
            labels: seed.labels,
            user_data: None,
            ipv4,
            ipv6: true,
            ip_index,
            booted: true,
            protection: Default::default(),
        };
        model.servers.insert(id, record);
        Ok(id)
    }

    /// Makes later creates drop the labels they ask for (`true`), as a misbehaving cloud
    /// would, or keep them again (`false`).
    pub fn set_drop_labels(&self, drop: bool) {
        self.shared.drop_labels.store(drop, Ordering::SeqCst);
    }

    /// The fault injector.
    pub fn faults(&self) -> Arc<Faults> {
        self.shared.faults.clone()
    }

    /// The request counters.
    pub fn requests(&self) -> Arc<RequestLog> {
        self.shared.requests.clone()
    }

    /// Replaces the rate-limit settings; every bucket starts full.
    pub fn set_rate_limit(&self, limit: RateLimit) {
        self.shared.limiter.set(limit);
    }

    /// Stops the lifecycle tasks and the HTTP server.
    pub async fn shutdown(mut self) {
        self.shared.stop.send_replace(true);
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

impl Drop for HetznerEmulator {
    fn drop(&mut self) {
        self.shared.stop.send_replace(true);
    }
}
