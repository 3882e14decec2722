//! The emulated outside world in one piece: a Hetzner project and a tailnet, tied together so a
//! booted server enrols in the tailnet from its cloud-init, with the credentials a real
//! deployment would use (a Hetzner token; a Tailscale OAuth client tagged `tag:tether` that owns
//! the agent tags). Tests, benchmarks and `tether sandbox` all start it the same way.

use super::agents::AgentSimulator;
use crate::cloud::retry::Backoff;
use crate::cloud::{hetzner as hcloud, tailscale};
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tether_emulators::Token;
use tether_emulators::hetzner::{self, HetznerEmulator, Latencies};
use tether_emulators::tailscale::{self as ts, OAuthClient, TailscaleEmulator};
use tether_emulators::vmbox::{BoxOptions, Boxes};

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
    /// Boot each server as a VM in a box instead of reading its user_data (opt-in; the fast
    /// mode is the default).
    pub boxes: Option<BoxMode>,
}

/// Where VMs in a box come from and live ([`tether_emulators::vmbox`]).
#[derive(Debug, Clone)]
pub struct BoxMode {
    /// The image every box is copied from ([`tether_emulators::vmbox::rootfs::ensure`]).
    pub rootfs: std::path::PathBuf,
    /// A folder for the boxes' disks and console logs.
    pub machines: std::path::PathBuf,
}

/// Boot, cloud-init and Tailscale enrolment on a real server: about 30 s after `running`.
pub const REALISTIC_BOOT: Duration = Duration::from_secs(30);

/// How fast the emulated world moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatencyProfile {
    /// Tens of milliseconds per action: for tests and quick tries.
    Fast,
    /// Real Hetzner timings ([`Latencies::realistic`]) and a 30 s boot and enrolment.
    Realistic,
}

impl StackOptions {
    /// The options for `profile`, with every duration multiplied by `time_scale` (`1.0`: as
    /// is; `0.1`: the same shape ten times faster).
    pub fn with_latency(profile: LatencyProfile, time_scale: f64) -> StackOptions {
        let base = StackOptions::default();
        let (latencies, boot_delay) = match profile {
            LatencyProfile::Fast => (base.latencies, base.boot_delay),
            LatencyProfile::Realistic => (Latencies::realistic(), REALISTIC_BOOT),
        };
        StackOptions {
            latencies: latencies.scaled(time_scale),
            boot_delay: boot_delay.mul_f64(time_scale.max(0.0)),
            ..base
        }
    }
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
            boxes: None,
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
    /// tether-agent on every booted VM that carries it (the fast mode).
    pub agents: Arc<AgentSimulator>,
    /// The VMs in a box, in the box mode.
    pub boxes: Option<Arc<Boxes>>,
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
                secret: Token::new(client_secret.expose().clone()),
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
        let agents = Arc::new(AgentSimulator::new(Arc::new(tailscale.enroller())));
        let boxes = options.boxes.map(|mode| {
            let places = BoxOptions {
                rootfs: mode.rootfs,
                machines: mode.machines,
                tailscale_url: tailscale.url(),
            };
            Arc::new(Boxes::new(places, tailscale.enroller()))
        });
        match &boxes {
            Some(boxes) => hetzner.set_hooks(boxes.clone()),
            None => hetzner.set_hooks(agents.clone()),
        }
        Ok(Stack {
            hetzner,
            tailscale,
            agents,
            boxes,
            client_secret,
        })
    }

    /// Environment variables pointing tether's clients at the emulators.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HCLOUD_ENDPOINT", self.hetzner.url()),
            ("HCLOUD_TOKEN", self.hetzner.token().expose().to_owned()),
            ("TS_API_URL", self.tailscale.url()),
            ("TS_OAUTH_CLIENT_ID", CLIENT_ID.to_owned()),
            (
                "TS_OAUTH_CLIENT_SECRET",
                self.client_secret.expose().clone(),
            ),
        ]
    }

    /// The Hetzner emulator's API token, as tether's clients take it.
    pub fn hetzner_token(&self) -> Secret<String> {
        Secret::new(self.hetzner.token().expose().to_owned())
    }

    /// A Hetzner client for the emulator, polling actions every `poll`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn hetzner_client(&self, poll: Duration) -> Result<hcloud::Client, hcloud::Error> {
        let mut config = hcloud::Config::new(self.hetzner.url(), self.hetzner_token());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::tailscale::{DeviceQuery, NewAuthKey, Tailnet};
    use crate::cloud::{ActionId, Compute, NewServer};
    use tether_schema::{Content, SourceFile, cloud_init, load_fleet};

    fn fleet() -> tether_schema::Fleet {
        let files = vec![
            SourceFile { path: "fleet.yaml".into(), content: Content::Bytes(b"apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: f}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  catalog: {serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}\n".to_vec()) },
            SourceFile { path: "agents/a.yaml".into(), content: Content::Bytes(b"apiVersion: tether/v1\nkind: Agent\nmetadata: {name: enrol-me}\nspec: {subscription: s1, runtime: {version: '1'}}\n".to_vec()) },
        ];
        load_fleet(&files).expect("fleet")
    }

    async fn create(compute: &hcloud::Client, name: &str, user_data: String) -> u64 {
        let c = compute
            .create_server(&NewServer {
                name: name.into(),
                server_type: "cpx21".into(),
                image: "ubuntu-24.04".into(),
                location: "fsn1".into(),
                ssh_keys: vec![],
                user_data: Some(Secret::new(user_data)),
                labels: BTreeMap::new(),
                start_after_create: true,
                project: None,
                public_net: Default::default(),
            })
            .await
            .expect("create");
        let ids: Vec<ActionId> = std::iter::once(c.action.id)
            .chain(c.next_actions.iter().map(|a| a.id))
            .collect();
        compute.wait_for_actions(&ids).await.expect("actions");
        c.server.id.0
    }

    async fn eventually<T>(mut probe: impl AsyncFnMut() -> Option<T>) -> Option<T> {
        for _ in 0..200 {
            if let Some(v) = probe().await {
                return Some(v);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    #[test]
    fn the_realistic_profile_scales_every_duration_by_the_time_scale() {
        let full = StackOptions::with_latency(LatencyProfile::Realistic, 1.0);
        assert_eq!(full.latencies.create, Duration::from_secs(25));
        assert_eq!(full.latencies.delete, Duration::from_secs(5));
        assert_eq!(full.boot_delay, REALISTIC_BOOT);
        let tenth = StackOptions::with_latency(LatencyProfile::Realistic, 0.1);
        assert_eq!(tenth.latencies.create, Duration::from_millis(2500));
        assert_eq!(tenth.latencies.start, Duration::from_secs(1));
        assert_eq!(tenth.boot_delay, Duration::from_secs(3));
        let fast = StackOptions::with_latency(LatencyProfile::Fast, 1.0);
        assert_eq!(fast.latencies, Latencies::default());
    }

    #[tokio::test]
    async fn a_booted_server_enrols_from_its_cloud_init_once_per_key() {
        let stack = Stack::start(StackOptions::default()).await.expect("stack");
        let compute = stack
            .hetzner_client(Duration::from_millis(10))
            .expect("hetzner");
        let tailnet = stack.tailscale_client().expect("tailscale");
        let fleet = fleet();
        let agent = fleet.agents.values().next().expect("agent");
        let key = tailnet
            .create_auth_key(&NewAuthKey::for_agent(&agent.name, agent.tags.clone()))
            .await
            .expect("key");
        let user_data = cloud_init::render(agent, &fleet.settings, key.secret.expose());

        let first = create(&compute, "enrol-me", user_data.clone()).await;
        let query = DeviceQuery {
            hostname: Some("enrol-me".into()),
            ..DeviceQuery::default()
        };
        let device = eventually(async || {
            tailnet
                .list_devices(&query)
                .await
                .expect("list")
                .into_iter()
                .find(|d| d.online)
        })
        .await
        .expect("device enrolled");
        assert_eq!(device.tags, ["tag:agent"]);
        assert!(
            tailnet
                .get_key(&key.key.id)
                .await
                .expect("get key")
                .expect("key exists")
                .invalid,
            "a single-use key is consumed"
        );

        create(&compute, "copycat", user_data).await;
        let failure = eventually(async || {
            stack
                .tailscale
                .enrollment_failures()
                .into_iter()
                .find(|f| f.server_name == "copycat")
        })
        .await;
        assert!(failure.is_some(), "reusing the key must fail to enrol");
        assert!(
            tailnet
                .list_devices(&DeviceQuery {
                    hostname: Some("copycat".into()),
                    ..DeviceQuery::default()
                })
                .await
                .expect("list")
                .is_empty()
        );

        let action = compute
            .delete_server(crate::cloud::ServerId(first))
            .await
            .expect("delete")
            .expect("action");
        compute
            .wait_for_actions(&[action.id])
            .await
            .expect("deleted");
        let offline = eventually(async || {
            tailnet
                .get_device(&device.id)
                .await
                .expect("get")
                .filter(|d| !d.online)
        })
        .await
        .expect("device stays listed, offline");
        assert!(offline.last_seen.is_some());
        assert!(
            tailnet
                .delete_device(&device.id)
                .await
                .expect("delete device")
        );
        assert_eq!(tailnet.get_device(&device.id).await.expect("get"), None);
        stack.shutdown().await;
    }
}
