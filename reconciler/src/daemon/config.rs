//! Daemon configuration: a YAML file (read with the fleet specs' strict parser) plus
//! environment overrides, validated into a [`DaemonConfig`]. Start at [`DaemonConfig::load`].
//!
//! Secrets (API tokens, the webhook secret) come only from the environment or from files named
//! in the configuration; a secret written inline is refused with an error naming the key. Every
//! problem is reported at once, with the file, line and column (or the environment variable),
//! the key and a hint. The reference is `docs/operations.md`; the choice of YAML is
//! `docs/decisions/005-daemon-config-format.md`.

mod agent_api;
mod check;
mod dashboard;
mod events;
mod notify;
mod print;
mod raw;
mod secrets;

use crate::daemon::trigger::Schedule;
use crate::secret::Secret;
use check::Check;
pub use dashboard::DashboardConfig;
pub use events::{
    DEFAULT_EVENTS_TIMEOUT, DEFAULT_GIVE_UP_AFTER, DEFAULT_RETRY_FIRST, DEFAULT_RETRY_MAX,
    EventsConfig, EventsEndpoint,
};
pub use notify::{
    DEFAULT_NOTIFY_RETRIES, DEFAULT_NOTIFY_TIMEOUT, DEFAULT_UNHEALTHY_AFTER, NotifyConfig,
    SinkConfig, SinkFormat,
};
pub use raw::DASHBOARD_TOKEN_ENV;
pub use raw::{ENV_ALIASES, ENV_OVERRIDES, Origin};
use raw::{Settings, apply_env};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the HTTP endpoints listen unless configured.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9180));
/// The environment variable holding the webhook secret unless `webhook.secretEnv` names another.
pub const DEFAULT_WEBHOOK_SECRET_ENV: &str = "TETHER_WEBHOOK_SECRET";
/// The environment variable holding `POST /reconcile`'s bearer token.
pub const RECONCILE_TOKEN_ENV: &str = "TETHER_RECONCILE_TOKEN";
/// Where `tether run` looks for its configuration unless `--config` or `TETHER_CONFIG` say
/// otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tether/tether.yaml";
/// The grace period after SIGTERM/SIGINT unless configured.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(60);
/// Failed passes in a row before `/readyz` reports degraded, unless configured.
pub const DEFAULT_DEGRADED_AFTER: u32 = 3;

/// Where the desired fleet is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetSource {
    /// A git remote, mirrored in `cache_dir`, at the tip of `branch`.
    Remote {
        /// The remote URL (no credentials).
        url: String,
        /// The branch followed.
        branch: String,
        /// The mirror's directory.
        cache_dir: PathBuf,
    },
    /// A directory on this machine, watched for changes.
    Directory {
        /// The fleet directory (holding `fleet.yaml` and `agents/`).
        path: PathBuf,
    },
}

/// How to authenticate to Tailscale.
#[derive(Debug, Clone)]
pub enum TailscaleAuth {
    /// An API access token (`TS_API_KEY`).
    ApiKey(Secret<String>),
    /// An OAuth client (`TS_OAUTH_CLIENT_ID`, `TS_OAUTH_CLIENT_SECRET`).
    OAuth {
        /// The client id (not secret).
        client_id: String,
        /// The client secret.
        client_secret: Secret<String>,
    },
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A validated daemon configuration. Its `Debug` output holds no secret.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The fleet's name: the lock ref is `refs/tether/locks/<fleet>`.
    pub fleet: String,
    /// Where the desired fleet is read from.
    pub source: FleetSource,
    /// How often to reconcile without other triggers.
    pub schedule: Schedule,
    /// Where `/healthz`, `/readyz`, `/metrics` and `/webhook` listen.
    pub listen: SocketAddr,
    /// The GitHub webhook secret; `/webhook` is served only when set.
    pub webhook_secret: Option<Secret<String>>,
    /// The single-writer lease's TTL.
    pub lock_ttl: Duration,
    /// This daemon's lease holder id.
    pub lock_holder: String,
    /// Hetzner Cloud API base URL.
    pub hetzner_endpoint: String,
    /// `HCLOUD_TOKEN`.
    pub hetzner_token: Secret<String>,
    /// Tailscale API base URL.
    pub tailscale_endpoint: String,
    /// The tailnet (`-` is the token's own).
    pub tailnet: String,
    /// Tailscale credentials.
    pub tailscale_auth: TailscaleAuth,
    /// `GITHUB_TOKEN`: fetches private https remotes and pushes the lease (the daemon calls no
    /// GitHub API; statuses come from `tether apply --github-status`).
    pub github_token: Option<Secret<String>>,
    /// Most actions making requests at once (waiting ones hold no slot).
    pub concurrency: usize,
    /// Log line format.
    pub log_format: LogFormat,
    /// How long an in-flight pass may take to wind down after SIGTERM/SIGINT. A pass without a
    /// shutdown request runs to completion however long it takes.
    pub shutdown_grace: Duration,
    /// After this many failed passes in a row, `/readyz` reports degraded.
    pub degraded_after: u32,
    /// How long a Hetzner action may stay `running` before tether gives up on it.
    pub action_timeout: Duration,
    /// The bearer token `POST /reconcile` requires; the endpoint is served only when set.
    pub reconcile_token: Option<Secret<String>>,
    /// Where notifications go (`notify`); no sink, no notification.
    pub notify: NotifyConfig,
    /// Where the agents' lifecycle events go (`events`); no endpoint, no delivery.
    pub events: EventsConfig,
    /// The on-VM agents' API (`agentApi`); runtime updates roll out only when it is served.
    pub agent_api: Option<crate::runtime::Config>,
    /// The dashboard's read token and commit links.
    pub dashboard: DashboardConfig,
    /// The Hetzner rate-limit budget that stretches `schedule` (`rateLimit`).
    pub rate_budget: crate::daemon::budget::RateBudget,
    /// The key status commits are signed with (`signing.keyFile`, `TETHER_SIGNING_KEY`,
    /// `TETHER_SIGNING_KEY_FILE`); unsigned without one.
    pub signer: Option<std::sync::Arc<crate::audit::signing::Signer>>,
}

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The dotted key (`source.cacheDir`) or environment variable concerned.
    pub key: String,
    /// Where the offending value came from, when it was given.
    pub origin: Option<Origin>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the daemon configuration `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file or environment holds problems, all listed.
    #[error("{}", Problems { path, problems })]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<ConfigProblem>,
    },
}

struct Problems<'a> {
    path: &'a Path,
    problems: &'a [ConfigProblem],
}

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        let s = if n == 1 { "" } else { "s" };
        write!(
            f,
            "invalid daemon configuration `{}` ({n} problem{s}):",
            self.path.display()
        )?;
        for p in self.problems {
            let path = self.path.display();
            let at = match &p.origin {
                Some(Origin::File(span)) => {
                    format!("{path}:{}:{}: `{}`", span.line, span.column, p.key)
                }
                Some(Origin::Env(var)) if *var == p.key => format!("environment {var}"),
                Some(Origin::Env(var)) => format!("environment {var}: `{}`", p.key),
                None => format!("{path}: `{}`", p.key),
            };
            write!(f, "\n  {at}: {}\n    hint: {}", p.message, p.hint)?;
        }
        Ok(())
    }
}

impl DaemonConfig {
    /// Reads `path` and the process environment.
    ///
    /// # Errors
    /// See [`DaemonConfig::load`].
    pub fn from_file_and_process_env(path: &Path) -> Result<DaemonConfig, ConfigError> {
        DaemonConfig::load(path, &|var| std::env::var(var).ok())
    }

    /// Reads `path`, applies overrides and secrets from `env`, and validates. Relative paths
    /// in the file are relative to the file's directory.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read; [`ConfigError::Invalid`] with every
    /// problem found.
    pub fn load(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DaemonConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        DaemonConfig::parse(path, &text, env)
    }

    /// Like [`DaemonConfig::load`], with the file's text given.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with every problem found.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DaemonConfig, ConfigError> {
        let mut check = Check {
            base: path.parent().unwrap_or(Path::new(".")).to_owned(),
            settings: Settings::new(),
            env,
            problems: Vec::new(),
        };
        check.read_file(text);
        for (var, alias) in apply_env(&mut check.settings, env) {
            check.report(
                var,
                Some(Origin::Env(var.to_owned())),
                format!("{var} and {alias} are both set, to different values"),
                format!("{alias} is the older name of {var}: unset it"),
            );
        }
        let config = check.validate();
        match config {
            Some(config) if check.problems.is_empty() => Ok(config),
            _ => Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems: check.problems,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
