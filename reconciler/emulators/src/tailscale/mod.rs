//! The Tailscale emulator: the API v2 subset tether uses, served on 127.0.0.1, with the
//! control plane's behaviour behind it (auth keys enrol devices, nodes go offline, ephemeral
//! nodes are reaped). Stricter than the real API where the real rule is unclear; every such
//! choice is listed in `docs/tailscale.md`.
//!
//! Start at [`TailscaleEmulator::start`]. The rooms:
//! - `access`: tokens, OAuth clients, scopes, tag rules;
//! - `keys` and `devices`: the two resources and their JSON;
//! - `state`: enrolment, offline, reaping;
//! - `api` and `admin`: the HTTP routes (`/api/v2/…` and the unauthenticated `/_emulator/…`);
//! - [`enroller`]: the [`crate::MachineHooks`] that enrols emulated VMs from their
//!   cloud-init.

mod access;
mod admin;
mod api;
mod devices;
pub mod enroller;
mod keys;
pub mod machines;
mod state;
pub mod wire;

pub use enroller::Enroller;
pub use machines::Until;
pub use state::{EnrollError, EnrollmentFailure, FailureReason};

use crate::Token;
use crate::emulator::{Faults, RequestLog, Server};
use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

/// An API access token the emulator accepts: it acts as `user`, an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The token (`tskey-api-…`).
    pub token: Token,
    /// The owning user's login, e.g. `admin@example.com`.
    pub user: String,
}

/// An OAuth client the emulator accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// Client id, e.g. `kTether1CNTRL`.
    pub id: String,
    /// Client secret (`tskey-client-…`).
    pub secret: Token,
    /// Scopes, e.g. `devices:core`, `auth_keys`, `all:read`.
    pub scopes: Vec<String>,
    /// The client's tags.
    pub tags: Vec<String>,
}

/// Which tags an OAuth client may put on the keys it creates (and on devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyTagRule {
    /// Exactly the client's set of tags, or only tags owned by the client's tags (via
    /// `tag_owners`). What the docs say and users observe: a subset of the client's own tags
    /// is refused.
    #[default]
    ExactOrOwned,
    /// Each tag is one of the client's tags or owned by one: the lenient reading.
    EachHeldOrOwned,
}

/// How to set up an emulated tailnet.
#[derive(Debug, Clone)]
pub struct Config {
    /// The tailnet's name, accepted in paths besides `-` (e.g. `example.com`).
    pub tailnet: String,
    /// MagicDNS suffix; `tail<4 hex>.ts.net` from the seed when `None`.
    pub dns_suffix: Option<String>,
    /// Accepted API access tokens.
    pub api_tokens: Vec<ApiToken>,
    /// Accepted OAuth clients.
    pub oauth_clients: Vec<OAuthClient>,
    /// The policy file's `tagOwners`: tag → owners (users, groups or tags). Its tags, and the
    /// OAuth clients' tags, are the tags that exist.
    pub tag_owners: BTreeMap<String, Vec<String>>,
    /// The tag rule for OAuth clients.
    pub key_tag_rule: KeyTagRule,
    /// How long an ephemeral device may stay offline before it is removed.
    pub ephemeral_timeout: Duration,
    /// Seed of every id, address and secret, so runs are reproducible.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tailnet: "example.com".to_owned(),
            dns_suffix: None,
            api_tokens: Vec::new(),
            oauth_clients: Vec::new(),
            tag_owners: BTreeMap::new(),
            key_tag_rule: KeyTagRule::default(),
            ephemeral_timeout: Duration::from_secs(30 * 60),
            seed: 0,
        }
    }
}

/// An API error: the status and `{"message": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: String) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    fn not_implemented(message: String) -> ApiError {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, message)
    }

    fn unauthorized() -> ApiError {
        ApiError::unauthorized_with("API token invalid")
    }

    fn unauthorized_with(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "calling actor does not have enough permissions to perform this function",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({"message": self.message})),
        )
            .into_response()
    }
}

/// Renders an injected fault in the API's envelope.
fn fault_body(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("injected fault");
    ApiError::new(status, reason).into_response()
}

/// `n` random ASCII letters and digits.
fn random_alnum(rng: &mut SmallRng, n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// RFC 3339 in whole seconds, UTC, as the API writes times (`2021-12-09T23:22:39Z`).
fn timestamp(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What the routes, the enroller and the reaper share.
#[derive(Debug)]
struct Shared {
    state: Mutex<state::State>,
    faults: Arc<Faults>,
    log: Arc<RequestLog>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Aborts a background task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running Tailscale emulator. Dropping it stops the server and the reaper.
#[derive(Debug)]
pub struct TailscaleEmulator {
    server: Server,
    shared: Arc<Shared>,
    _reaper: AbortOnDrop,
}

impl TailscaleEmulator {
    /// Starts the emulator on 127.0.0.1 with a free port, and its ephemeral-node reaper.
    ///
    /// # Errors
    /// The socket cannot be bound.
    pub async fn start(config: Config) -> std::io::Result<TailscaleEmulator> {
        let mut rng = SmallRng::seed_from_u64(config.seed);
        let suffix = config
            .dns_suffix
            .unwrap_or_else(|| format!("tail{:04x}.ts.net", rng.random::<u16>()));
        let state = state::State {
            access: access::Access::new(
                config.api_tokens,
                config.oauth_clients,
                config.tag_owners,
                config.key_tag_rule,
            ),
            devices: devices::Devices::new(suffix),
            keys: keys::Keys::default(),
            rng,
            tailnet: config.tailnet,
            failures: Vec::new(),
            booted: BTreeSet::new(),
            machines: machines::MachineFaults::default(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            faults: Arc::new(Faults::new(config.seed)),
            log: Arc::new(RequestLog::default()),
        });
        let router = api::routes()
            .merge(admin::routes())
            .fallback(api::no_route)
            .method_not_allowed_fallback(api::no_method)
            .with_state(shared.clone());
        let server = Server::start(
            router,
            shared.faults.clone(),
            shared.log.clone(),
            fault_body,
        )
        .await?;
        let reaper = tokio::spawn(reap(shared.clone(), config.ephemeral_timeout));
        Ok(TailscaleEmulator {
            server,
            shared,
            _reaper: AbortOnDrop(reaper),
        })
    }

    /// The base URL without `/api/v2`, like `https://api.tailscale.com`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Fault injection rules.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Request counters.
    pub fn requests(&self) -> &RequestLog {
        &self.shared.log
    }

    /// Every device, as the API would report it (all fields).
    pub fn devices(&self) -> Vec<wire::Device> {
        let state = self.shared.lock();
        state.devices.all().map(|d| d.to_wire(true)).collect()
    }

    /// The emulated server each device runs on, by node id (`None`: a device enrolled without
    /// a server), for tests that check which server a device belongs to.
    pub fn device_servers(&self) -> BTreeMap<String, Option<u64>> {
        let state = self.shared.lock();
        state
            .devices
            .all()
            .map(|d| (d.node_id.clone(), d.server_id))
            .collect()
    }

    /// Every key, without secrets.
    pub fn keys(&self) -> Vec<wire::Key> {
        let now = SystemTime::now();
        let state = self.shared.lock();
        state.keys.all().map(|k| k.to_wire(now, false)).collect()
    }

    /// Registers a node running on `server_id` with `auth_key`, as the control plane would;
    /// returns the new device's node id.
    ///
    /// # Errors
    /// The key is unknown, revoked, expired, or a used single-use key.
    pub fn enroll(
        &self,
        auth_key: &Token,
        hostname: &str,
        server_id: u64,
    ) -> Result<String, EnrollError> {
        self.shared
            .lock()
            .enroll(auth_key, hostname, server_id, SystemTime::now())
    }

    /// Adds an authorized, online device of `server_id` with `tags` at once, as if it had
    /// enrolled long ago with a tagged key, and marks the server's first boot as done: for
    /// benchmarks that need a large converged tailnet without enrolling it node by node.
    /// Returns the device's node id.
    pub fn seed_device(&self, hostname: &str, tags: &[String], server_id: u64) -> String {
        let mut state = self.shared.lock();
        let state = &mut *state;
        state.booted.insert(server_id);
        let new = devices::NewDevice {
            hostname: hostname.to_owned(),
            user: String::new(),
            tags: tags.to_vec(),
            authorized: true,
            ephemeral: false,
            server_id: Some(server_id),
        };
        state
            .devices
            .add(new, &mut state.rng, SystemTime::now())
            .node_id
            .clone()
    }

    /// Marks the devices of `server_id` offline (they stay listed); returns how many.
    pub fn set_offline(&self, server_id: u64) -> usize {
        self.shared.lock().set_offline(server_id, SystemTime::now())
    }

    /// Makes the cloud-init of servers named `name` fail (they boot but never enrol) for the
    /// next `Until::Times(n)` first boots, or forever.
    pub fn fail_cloud_init(&self, name: &str, until: Until) {
        self.shared.lock().machines.fail_cloud_init(name, until);
    }

    /// Takes the devices of `server_id` offline (`lastSeen` frozen) until the server is
    /// power-cycled, or forever; returns how many.
    pub fn hold_offline(&self, server_id: u64, until: Until) -> usize {
        self.shared
            .lock()
            .hold_offline(server_id, until, SystemTime::now())
    }

    /// The hooks that enrol emulated VMs from their cloud-init; give it to the Hetzner
    /// emulator.
    pub fn enroller(&self) -> Enroller {
        Enroller::new(self.shared.clone())
    }

    /// Enrolments that failed, in order.
    pub fn enrollment_failures(&self) -> Vec<EnrollmentFailure> {
        self.shared.lock().failures.clone()
    }

    /// Stops the server and the reaper.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// Removes ephemeral devices once they have been offline for `timeout`, checking often enough
/// to be at most a quarter of `timeout` (and at most a second) late.
async fn reap(shared: Arc<Shared>, timeout: Duration) {
    let tick = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        let removed = shared.lock().reap(SystemTime::now(), timeout);
        if removed > 0 {
            tracing::info!(
                provider = "tailscale-emulator",
                removed,
                "reaped ephemeral devices"
            );
        }
    }
}
