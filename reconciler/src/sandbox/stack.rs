//! The emulated outside world in one piece: a Hetzner project and a tailnet, tied together so a
//! booted server enrols in the tailnet from its cloud-init, with the credentials a real
//! deployment would use (a Hetzner token; a Tailscale OAuth client tagged `tag:tether` that owns
//! the agent tags). Tests, benchmarks and `tether sandbox` all start it the same way.

use super::hetzner::{self, HetznerEmulator, Latencies};
use super::tailscale::{self as ts, OAuthClient, TailscaleEmulator};
use crate::cloud::retry::Backoff;
use crate::cloud::{hetzner as hcloud, tailscale};
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The tag of tether's OAuth client; it owns every agent tag.
pub const CLIENT_TAG: &str = "tag:tether";
/// The OAuth client id.
pub const CLIENT_ID: &str = "kTether1CNTRL";

/// How the emulated world behaves.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Hetzner action latencies.
    pub latencies: Latencies,
    /// Time from `running` to the device enrolling (cloud-init).
    pub boot_delay: Duration,
    /// Agent tags the OAuth client may mint keys for.
    pub agent_tags: Vec<String>,
    /// Most servers the project may have.
    pub server_limit: usize,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            latencies: Latencies::default(),
            boot_delay: Duration::from_millis(30),
            agent_tags: ["tag:agent", "tag:agent-eu", "tag:agent-us"]
                .map(str::to_owned)
                .to_vec(),
            server_limit: 1000,
        }
    }
}

/// Both emulators, running and wired.
#[derive(Debug)]
pub struct Stack {
    /// The Hetzner project.
    pub hetzner: HetznerEmulator,
    /// The tailnet.
    pub tailscale: TailscaleEmulator,
    client_secret: Secret<String>,
}

impl Stack {
    /// Starts both emulators on free loopback ports.
    ///
    /// # Errors
    /// A port cannot be bound.
    pub async fn start(options: StackOptions) -> std::io::Result<Stack> {
        let client_secret = Secret::new(format!(
            "tskey-client-{CLIENT_ID}-{}",
            hetzner::random_token().expose()
        ));
        let tag_owners: BTreeMap<String, Vec<String>> = options
            .agent_tags
            .iter()
            .map(|t| (t.clone(), vec![CLIENT_TAG.to_owned()]))
            .collect();
        let tailscale = TailscaleEmulator::start(ts::Config {
            oauth_clients: vec![OAuthClient {
                id: CLIENT_ID.to_owned(),
                secret: client_secret.clone(),
                scopes: vec!["devices:core".to_owned(), "auth_keys".to_owned()],
                tags: vec![CLIENT_TAG.to_owned()],
            }],
            tag_owners,
            ..ts::Config::default()
        })
        .await?;
        let hetzner = HetznerEmulator::start(hetzner::Config {
            latencies: options.latencies,
            boot_delay: options.boot_delay,
            server_limit: options.server_limit,
            ..hetzner::Config::default()
        })
        .await?;
        hetzner.set_hooks(Arc::new(tailscale.enroller()));
        Ok(Stack {
            hetzner,
            tailscale,
            client_secret,
        })
    }

    /// Environment variables pointing tether's clients at the emulators.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HCLOUD_ENDPOINT", self.hetzner.url()),
            ("HCLOUD_TOKEN", self.hetzner.token().expose().clone()),
            ("TS_API_URL", self.tailscale.url()),
            ("TS_OAUTH_CLIENT_ID", CLIENT_ID.to_owned()),
            (
                "TS_OAUTH_CLIENT_SECRET",
                self.client_secret.expose().clone(),
            ),
        ]
    }

    /// A Hetzner client for the emulator, polling actions every `poll`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn hetzner_client(&self, poll: Duration) -> Result<hcloud::Client, hcloud::Error> {
        let mut config = hcloud::Config::new(self.hetzner.url(), self.hetzner.token());
        config.poll_interval = poll;
        config.backoff = Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(500),
            max_retries: 8,
        };
        hcloud::Client::new(config)
    }

    /// A Tailscale client for the emulator, authenticated as the OAuth client.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn tailscale_client(&self) -> Result<tailscale::Client, tailscale::Error> {
        let mut config = tailscale::Config::new(tailscale::Credentials::OAuth {
            client_id: CLIENT_ID.to_owned(),
            client_secret: self.client_secret.clone(),
        });
        config.api_url = self.tailscale.url();
        tailscale::Client::new(config)
    }

    /// Stops both emulators.
    pub async fn shutdown(self) {
        self.hetzner.shutdown().await;
        self.tailscale.shutdown().await;
    }
}
