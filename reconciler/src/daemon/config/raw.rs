//! The configuration file as written: serde types that know every key (so unknown keys are
//! reported with a suggestion, and secret-looking ones refused), flattened into [`Settings`]
//! keyed by dotted path, where environment overrides then replace values.

use serde::Deserialize;
use std::collections::BTreeMap;
use tether_schema::Span;
use tether_schema::spanned::Spanned;

type Text = Option<Spanned<String>>;

/// The environment variable holding the dashboard's read token.
pub const DASHBOARD_TOKEN_ENV: &str = "TETHER_DASHBOARD_TOKEN";

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawConfig {
    fleet: Text,
    #[serde(default)]
    source: RawSource,
    interval: Text,
    jitter: Text,
    listen: Text,
    #[serde(default)]
    webhook: RawWebhook,
    #[serde(default)]
    lock: RawLock,
    #[serde(default)]
    hetzner: RawEndpoint,
    #[serde(default)]
    tailscale: RawTailscale,
    #[serde(default)]
    github: RawGitHub,
    concurrency: Text,
    log_format: Text,
    shutdown_grace: Text,
    degraded_after: Text,
    #[serde(default)]
    reconcile: RawReconcile,
    #[serde(default)]
    notify: RawNotify,
    #[serde(default)]
    events: RawEvents,
    #[serde(default)]
    dashboard: RawDashboard,
    #[serde(default)]
    agent_api: RawAgentApi,
    #[serde(default)]
    rate_limit: RawRateLimit,
    #[serde(default)]
    signing: RawSigning,
}

/// The SSH key status commits are signed with (`docs/operations.md`, "For auditors").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSigning {
    key_file: Text,
}

/// The on-VM agents' API (`crate::runtime`); served only when `listen` is set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAgentApi {
    listen: Text,
    url: Text,
    binary_url: Text,
    poll: Text,
    wave_timeout: Text,
}

/// The Hetzner rate-limit budget (`crate::daemon::budget`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRateLimit {
    hourly: Text,
    observe_share: Text,
}

/// `POST /reconcile`: its bearer token comes from `TETHER_RECONCILE_TOKEN` or this file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawReconcile {
    token_file: Text,
}

/// The daemon reads git over https with the GitHub token; it calls no GitHub API.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawGitHub {
    token_file: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSource {
    remote: Text,
    path: Text,
    branch: Text,
    cache_dir: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWebhook {
    secret_env: Text,
    secret_file: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawLock {
    ttl: Text,
    holder: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawEndpoint {
    endpoint: Text,
    token_file: Text,
    action_timeout: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTailscale {
    endpoint: Text,
    tailnet: Text,
    api_key_file: Text,
    oauth_client_secret_file: Text,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file, at this position.
    File(Span),
    /// This environment variable.
    Env(String),
}

/// One setting's value and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Setting {
    pub value: String,
    pub origin: Origin,
}

/// Every setting given, by dotted key (`source.cacheDir`).
pub(super) type Settings = BTreeMap<&'static str, Setting>;

/// Environment variables that override a key of the file. Secrets are not here: they are read
/// from the environment only (see `super::secrets`).
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("TETHER_FLEET", "fleet"),
    ("TETHER_SOURCE_REMOTE", "source.remote"),
    ("TETHER_SOURCE_PATH", "source.path"),
    ("TETHER_BRANCH", "source.branch"),
    ("TETHER_CACHE_DIR", "source.cacheDir"),
    ("TETHER_INTERVAL", "interval"),
    ("TETHER_JITTER", "jitter"),
    ("TETHER_LISTEN", "listen"),
    ("TETHER_LOCK_TTL", "lock.ttl"),
    ("TETHER_LOCK_HOLDER", "lock.holder"),
    ("HCLOUD_ENDPOINT", "hetzner.endpoint"),
    ("TS_API_URL", "tailscale.endpoint"),
    ("TETHER_TAILNET", "tailscale.tailnet"),
    ("TETHER_CONCURRENCY", "concurrency"),
    ("TETHER_LOG_FORMAT", "logFormat"),
    ("TETHER_SHUTDOWN_GRACE", "shutdownGrace"),
    ("TETHER_DEGRADED_AFTER", "degradedAfter"),
    ("TETHER_HETZNER_ACTION_TIMEOUT", "hetzner.actionTimeout"),
    ("TETHER_AGENT_API_LISTEN", "agentApi.listen"),
    ("TETHER_AGENT_API_URL", "agentApi.url"),
    ("TETHER_AGENT_BINARY_URL", "agentApi.binaryUrl"),
    ("TETHER_AGENT_POLL", "agentApi.poll"),
    ("TETHER_WAVE_TIMEOUT", "agentApi.waveTimeout"),
];

impl RawConfig {
    /// The settings present in the file, by dotted key.
    pub(super) fn flatten(self) -> Settings {
        let mut out = Settings::new();
        self.notify.flatten_into(&mut out);
        self.events.flatten_into(&mut out);
        let dashboard = self.dashboard.entries();
        let entries: [(&'static str, Text); 33] = [
            ("fleet", self.fleet),
            ("source.remote", self.source.remote),
            ("source.path", self.source.path),
            ("source.branch", self.source.branch),
            ("source.cacheDir", self.source.cache_dir),
            ("interval", self.interval),
            ("jitter", self.jitter),
            ("listen", self.listen),
            ("webhook.secretEnv", self.webhook.secret_env),
            ("webhook.secretFile", self.webhook.secret_file),
            ("lock.ttl", self.lock.ttl),
            ("lock.holder", self.lock.holder),
            ("hetzner.endpoint", self.hetzner.endpoint),
            ("hetzner.tokenFile", self.hetzner.token_file),
            ("tailscale.endpoint", self.tailscale.endpoint),
            ("tailscale.tailnet", self.tailscale.tailnet),
            ("tailscale.apiKeyFile", self.tailscale.api_key_file),
            (
                "tailscale.oauthClientSecretFile",
                self.tailscale.oauth_client_secret_file,
            ),
            ("github.tokenFile", self.github.token_file),
            ("concurrency", self.concurrency),
            ("logFormat", self.log_format),
            ("shutdownGrace", self.shutdown_grace),
            ("degradedAfter", self.degraded_after),
            ("hetzner.actionTimeout", self.hetzner.action_timeout),
            ("reconcile.tokenFile", self.reconcile.token_file),
            ("agentApi.listen", self.agent_api.listen),
            ("agentApi.url", self.agent_api.url),
            ("agentApi.binaryUrl", self.agent_api.binary_url),
            ("agentApi.poll", self.agent_api.poll),
            ("agentApi.waveTimeout", self.agent_api.wave_timeout),
            ("rateLimit.hourly", self.rate_limit.hourly),
            ("rateLimit.observeShare", self.rate_limit.observe_share),
            ("signing.keyFile", self.signing.key_file),
        ];
        for (key, value) in entries.into_iter().chain(dashboard) {
            if let Some(v) = value {
                out.insert(
                    key,
                    Setting {
                        value: v.value,
                        origin: Origin::File(v.span),
                    },
                );
            }
        }
        out
    }
}

/// Older names of [`ENV_OVERRIDES`] variables, still accepted: (the name, its alias). The CLI
/// and the daemon share one vocabulary, the providers' own (`HCLOUD_*`, `TS_*`).
pub const ENV_ALIASES: &[(&str, &str)] = &[
    ("HCLOUD_ENDPOINT", "TETHER_HETZNER_ENDPOINT"),
    ("TS_API_URL", "TETHER_TAILSCALE_ENDPOINT"),
];

/// Applies [`ENV_OVERRIDES`] (and their [`ENV_ALIASES`]): a variable that is set (even to an
/// empty string) replaces the file's value. Returns the variables set under both a name and
/// its alias with different values: (name, alias), which the caller reports.
pub(super) fn apply_env(
    settings: &mut Settings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<(&'static str, &'static str)> {
    let mut conflicts = Vec::new();
    for (var, key) in ENV_OVERRIDES {
        let alias = ENV_ALIASES
            .iter()
            .find(|(name, _)| name == var)
            .map(|(_, alias)| *alias);
        let given = match (env(var), alias.and_then(|a| env(a).map(|v| (a, v)))) {
            (Some(value), Some((alias, other))) => {
                if value.trim_end_matches('/') != other.trim_end_matches('/') {
                    conflicts.push((*var, alias));
                }
                Some((*var, value))
            }
            (Some(value), None) => Some((*var, value)),
            (None, Some((alias, value))) => Some((alias, value)),
            (None, None) => None,
        };
        if let Some((var, value)) = given {
            settings.insert(
                key,
                Setting {
                    value,
                    origin: Origin::Env(var.to_owned()),
                },
            );
        }
    }
    conflicts
}

/// For a key that looks like an inline secret, the way to provide it instead.
pub(super) fn inline_secret_hint(path: &str) -> Option<String> {
    let known = [
        (
            "webhook.secret",
            "TETHER_WEBHOOK_SECRET",
            "webhook.secretFile",
        ),
        ("hetzner.token", "HCLOUD_TOKEN", "hetzner.tokenFile"),
        ("tailscale.apiKey", "TS_API_KEY", "tailscale.apiKeyFile"),
        (
            "tailscale.oauthClientSecret",
            "TS_OAUTH_CLIENT_SECRET",
            "tailscale.oauthClientSecretFile",
        ),
        ("github.token", "GITHUB_TOKEN", "github.tokenFile"),
        ("signing.key", "TETHER_SIGNING_KEY", "signing.keyFile"),
        (
            "reconcile.token",
            "TETHER_RECONCILE_TOKEN",
            "reconcile.tokenFile",
        ),
        (
            "dashboard.readToken",
            DASHBOARD_TOKEN_ENV,
            "dashboard.readTokenFile",
        ),
    ];
    if path == "notify.slack.url" {
        return Some("a Slack webhook URL is a secret: put it in an environment variable and name the variable in `notify.slack.urlEnv`".to_owned());
    }
    if let Some((_, var, file)) = known.iter().find(|(key, _, _)| *key == path) {
        return Some(format!(
            "secrets never go in the config file: set {var}, or put the secret in a file and set `{file}`"
        ));
    }
    let key = path.rsplit('.').next().unwrap_or(path).to_ascii_lowercase();
    let secretish = ["secret", "token", "password", "apikey", "key"]
        .iter()
        .any(|word| key.contains(word));
    let reference = key.ends_with("file") || key.ends_with("env");
    (secretish && !reference).then(|| {
        "secrets never go in the config file: pass them in the environment or a file (see docs/operations.md)".to_owned()
    })
}

/// `notify:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawNotify {
    unhealthy_after: Text,
    timeout: Text,
    retries: Text,
    #[serde(default)]
    webhook: RawSink,
    #[serde(default)]
    slack: RawSlack,
}

/// `notify.webhook`: its URL may be written (it need not be secret) or named by variable.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSink {
    url: Text,
    url_env: Text,
}

/// `notify.slack`: a Slack webhook URL is a secret, so only the variable holding it is named.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSlack {
    url_env: Text,
}

impl RawNotify {
    /// Adds the block's settings, by dotted key, to `out`.
    pub(super) fn flatten_into(self, out: &mut Settings) {
        let entries: [(&'static str, Text); 6] = [
            ("notify.unhealthyAfter", self.unhealthy_after),
            ("notify.timeout", self.timeout),
            ("notify.retries", self.retries),
            ("notify.webhook.url", self.webhook.url),
            ("notify.webhook.urlEnv", self.webhook.url_env),
            ("notify.slack.urlEnv", self.slack.url_env),
        ];
        for (key, value) in entries.into_iter() {
            if let Some(v) = value {
                out.insert(
                    key,
                    Setting {
                        value: v.value,
                        origin: Origin::File(v.span),
                    },
                );
            }
        }
    }
}

/// `events:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawEvents {
    name: Text,
    url: Text,
    url_env: Text,
    secrets_env: Text,
    timeout: Text,
    retry_first: Text,
    retry_max: Text,
    give_up_after: Text,
}

impl RawEvents {
    /// Adds the block's settings, by dotted key, to `out`.
    pub(super) fn flatten_into(self, out: &mut Settings) {
        let entries: [(&'static str, Text); 8] = [
            ("events.name", self.name),
            ("events.url", self.url),
            ("events.urlEnv", self.url_env),
            ("events.secretsEnv", self.secrets_env),
            ("events.timeout", self.timeout),
            ("events.retryFirst", self.retry_first),
            ("events.retryMax", self.retry_max),
            ("events.giveUpAfter", self.give_up_after),
        ];
        for (key, value) in entries {
            if let Some(v) = value {
                out.insert(
                    key,
                    Setting {
                        value: v.value,
                        origin: Origin::File(v.span),
                    },
                );
            }
        }
    }
}

/// `dashboard:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawDashboard {
    read_token_file: Option<Spanned<String>>,
    commit_url: Option<Spanned<String>>,
}

impl RawDashboard {
    /// The keys given, dotted.
    pub(super) fn entries(self) -> [(&'static str, Option<Spanned<String>>); 2] {
        [
            ("dashboard.readTokenFile", self.read_token_file),
            ("dashboard.commitUrl", self.commit_url),
        ]
    }
}
