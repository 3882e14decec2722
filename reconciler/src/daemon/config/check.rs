//! Validation of the configuration: settings (file values, then environment overrides) are
//! checked one by one into a [`DaemonConfig`], collecting every problem on the way.

use super::raw::{RawConfig, Settings, inline_secret_hint};
use super::{
    ConfigProblem, DEFAULT_DEGRADED_AFTER, DEFAULT_LISTEN, DEFAULT_SHUTDOWN_GRACE, DaemonConfig,
    FleetSource, LogFormat, Origin, RECONCILE_TOKEN_ENV,
};
use crate::cloud::hetzner::DEFAULT_ACTION_TIMEOUT;
use crate::daemon::budget::{self, RateBudget};
use crate::daemon::trigger::Schedule;
use crate::process::parse_duration;
use crate::source::remote::RemoteUrl;
use std::path::PathBuf;
use std::time::Duration;
use tether_schema::yaml::{de, node};

/// The state of one validation: settings read so far and problems found.
pub(super) struct Check<'e> {
    pub(super) base: PathBuf,
    pub(super) settings: Settings,
    pub(super) env: &'e dyn Fn(&str) -> Option<String>,
    pub(super) problems: Vec<ConfigProblem>,
}

impl Check<'_> {
    pub(super) fn read_file(&mut self, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        let tree = match node::parse(text) {
            Ok(tree) => tree,
            Err(e) => {
                let hint = e.hint.unwrap_or_else(|| "fix the YAML".to_owned());
                return self.report("(file)", Some(Origin::File(e.span)), e.message, hint);
            }
        };
        let (result, unknown) = de::from_node::<RawConfig>(&tree);
        for u in unknown {
            let (message, hint) = match inline_secret_hint(&u.path) {
                Some(hint) => ("holds a secret inline".to_owned(), hint),
                None => ("unknown key".to_owned(), unknown_hint(&u)),
            };
            self.report(&u.path, Some(Origin::File(u.span)), message, hint);
        }
        match result {
            Ok(raw) => self.settings = raw.flatten(),
            Err(e) => self.report(
                e.path.as_deref().unwrap_or("(file)"),
                e.span.map(Origin::File),
                e.message,
                "see the configuration reference in docs/operations.md".to_owned(),
            ),
        }
    }

    pub(super) fn report(
        &mut self,
        key: &str,
        origin: Option<Origin>,
        message: String,
        hint: String,
    ) {
        self.problems.push(ConfigProblem {
            key: key.to_owned(),
            origin,
            message,
            hint,
        });
    }

    /// Reports a problem with the value of `key`.
    pub(super) fn bad(&mut self, key: &str, message: String, hint: &str) {
        let origin = self.settings.get(key).map(|s| s.origin.clone());
        self.report(key, origin, message, hint.to_owned());
    }

    pub(super) fn text(&self, key: &str) -> Option<String> {
        self.settings.get(key).map(|s| s.value.clone())
    }

    /// The value of `key` parsed by `parse`, or `default`; a parse failure is reported.
    pub(super) fn parsed<T>(
        &mut self,
        key: &str,
        default: T,
        hint: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> T {
        let Some(text) = self.text(key) else {
            return default;
        };
        parse(text.trim()).unwrap_or_else(|message| {
            self.bad(key, message, hint);
            default
        })
    }

    pub(super) fn path(&self, key: &str) -> Option<PathBuf> {
        self.text(key).map(|p| self.base.join(p))
    }

    pub(super) fn validate(&mut self) -> Option<DaemonConfig> {
        let fleet = self.fleet();
        let source = self.source();
        let every = self.parsed("interval", Duration::from_secs(300), DURATION_HINT, |t| {
            parse_duration(t).and_then(|d| at_least(d, 10))
        });
        let jitter = self.parsed(
            "jitter",
            0.1,
            "write a percentage from 0% to 50%, e.g. `10%`",
            parse_jitter,
        );
        let listen = self.parsed(
            "listen",
            DEFAULT_LISTEN,
            "write an address and port, e.g. `127.0.0.1:9180` or `0.0.0.0:9180`",
            |t| {
                t.parse()
                    .map_err(|_| format!("`{t}` is not an address and port"))
            },
        );
        let lock_ttl = self.parsed("lock.ttl", Duration::from_secs(120), DURATION_HINT, |t| {
            parse_duration(t).and_then(|d| at_least(d, 2))
        });
        let lock_holder = self.text("lock.holder").unwrap_or_else(default_holder);
        let concurrency = self.parsed("concurrency", 4, "write a whole number from 1 to 64", |t| {
            t.parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| format!("`{t}` is not a number from 1 to 64"))
        });
        let log_format = self.parsed(
            "logFormat",
            LogFormat::Text,
            "write `text` or `json`",
            |t| match t {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                other => Err(format!("`{other}` is not a log format")),
            },
        );
        let shutdown_grace = self.parsed(
            "shutdownGrace",
            DEFAULT_SHUTDOWN_GRACE,
            DURATION_HINT,
            parse_duration,
        );
        let degraded_after = self.parsed(
            "degradedAfter",
            DEFAULT_DEGRADED_AFTER,
            "write a whole number from 1 to 1000: failed passes in a row",
            |t| {
                t.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| format!("`{t}` is not a number from 1 to 1000"))
            },
        );
        let action_timeout = self.parsed(
            "hetzner.actionTimeout",
            DEFAULT_ACTION_TIMEOUT,
            DURATION_HINT,
            |t| parse_duration(t).and_then(|d| at_least(d, 1)),
        );
        let reconcile_token = self.secret(RECONCILE_TOKEN_ENV, "reconcile.tokenFile");
        let rate_budget = RateBudget {
            hourly: self.parsed(
                "rateLimit.hourly",
                budget::DEFAULT_HOURLY,
                "write the project's requests per hour, e.g. `3600` (Hetzner's default)",
                |t| {
                    t.parse::<u32>()
                        .ok()
                        .filter(|n| (1..=1_000_000).contains(n))
                        .ok_or_else(|| format!("`{t}` is not a number from 1 to 1000000"))
                },
            ),
            observe_share: self.parsed(
                "rateLimit.observeShare",
                budget::DEFAULT_OBSERVE_SHARE,
                "write a share above 0 and at most 1 (or a percentage), e.g. `0.5` or `50%`",
                parse_share,
            ),
        };
        let hetzner_endpoint = self.endpoint("hetzner.endpoint", "https://api.hetzner.cloud/v1");
        let tailscale_endpoint =
            self.endpoint("tailscale.endpoint", "https://api.tailscale.com/api/v2");
        let tailnet = self
            .text("tailscale.tailnet")
            .unwrap_or_else(|| "-".to_owned());
        let webhook_secret = self.webhook_secret();
        let hetzner_token = self.required_secret("HCLOUD_TOKEN", "hetzner.tokenFile");
        let tailscale_auth = self.tailscale_auth();
        let github_token = self.secret("GITHUB_TOKEN", "github.tokenFile");
        let notify = self.notify();
        let events = self.events();
        let agent_api = self.agent_api();
        let dashboard = self.dashboard();
        let signer = self.signer();
        Some(DaemonConfig {
            fleet: fleet?,
            source: source?,
            schedule: Schedule { every, jitter },
            listen,
            webhook_secret,
            lock_ttl,
            lock_holder,
            hetzner_endpoint,
            hetzner_token: hetzner_token?,
            tailscale_endpoint,
            tailnet,
            tailscale_auth: tailscale_auth?,
            github_token,
            concurrency,
            log_format,
            shutdown_grace,
            degraded_after,
            action_timeout,
            reconcile_token,
            notify,
            events,
            agent_api,
            dashboard,
            rate_budget,
            signer,
        })
    }

    fn fleet(&mut self) -> Option<String> {
        let Some(fleet) = self.text("fleet") else {
            self.bad(
                "fleet",
                "missing".into(),
                "name the fleet (its metadata.name), e.g. `fleet: aura-prod`",
            );
            return None;
        };
        let valid = !fleet.is_empty()
            && fleet.len() <= 63
            && fleet
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            self.bad(
                "fleet",
                format!("`{fleet}` is not a fleet name"),
                "use lowercase letters, digits and `-`, at most 63 characters",
            );
            return None;
        }
        Some(fleet)
    }

    fn source(&mut self) -> Option<FleetSource> {
        match (self.text("source.remote"), self.path("source.path")) {
            (Some(url), None) => {
                if let Err(e) = RemoteUrl::parse(&url) {
                    self.bad("source.remote", e.to_string(), e.hint());
                    return None;
                }
                Some(FleetSource::Remote {
                    url,
                    branch: self.text("source.branch").unwrap_or_else(|| "main".into()),
                    cache_dir: self
                        .path("source.cacheDir")
                        .unwrap_or_else(|| PathBuf::from("/var/lib/tether/cache")),
                })
            }
            (None, Some(path)) => Some(FleetSource::Directory { path }),
            (Some(_), Some(_)) => {
                self.bad(
                    "source.path",
                    "both `source.remote` and `source.path` are set".into(),
                    "keep one: a git remote, or a directory on this machine",
                );
                None
            }
            (None, None) => {
                self.bad(
                    "source",
                    "no fleet source".into(),
                    "set `source.remote` (a git URL) or `source.path` (a directory)",
                );
                None
            }
        }
    }

    fn endpoint(&mut self, key: &str, default: &str) -> String {
        let url = self.text(key).unwrap_or_else(|| default.to_owned());
        let loopback_http = url
            .strip_prefix("http://")
            .is_some_and(|rest| rest.starts_with("127.0.0.1") || rest.starts_with("localhost"));
        if !url.starts_with("https://") && !loopback_http {
            self.bad(
                key,
                format!("`{url}` is not an https URL"),
                "use https (plain http only to 127.0.0.1 or localhost, for the sandbox)",
            );
        }
        url.trim_end_matches('/').to_owned()
    }
}

const DURATION_HINT: &str = "write a number with a unit: `90s`, `5m`, `1h`, `1h 30m`";

fn at_least(d: Duration, seconds: u64) -> Result<Duration, String> {
    if d < Duration::from_secs(seconds) {
        Err(format!(
            "{} is shorter than the minimum of {seconds}s",
            humantime::format_duration(d)
        ))
    } else {
        Ok(d)
    }
}

/// Parses `50%` or `0.5` into a share above 0 and at most 1.
fn parse_share(text: &str) -> Result<f64, String> {
    let share = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    }
    .map_err(|_| format!("`{text}` is not a share"))?;
    if share > 0.0 && share <= 1.0 {
        Ok(share)
    } else {
        Err(format!("`{text}` is outside 0 (excluded) to 1"))
    }
}

/// Parses `10%` or `0.1` into a fraction from 0 to 0.5.
pub(super) fn parse_jitter(text: &str) -> Result<f64, String> {
    let fraction = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    }
    .map_err(|_| format!("`{text}` is not a percentage"))?;
    if (0.0..=0.5).contains(&fraction) {
        Ok(fraction)
    } else {
        Err(format!("`{text}` is outside 0% to 50%"))
    }
}

fn unknown_hint(u: &de::UnknownField) -> String {
    match u.suggestion {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "known keys here: {}",
            u.expected
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `<hostname>/<pid>/<random>`: unique per process, readable in the lock ref.
fn default_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "tether".to_owned());
    let nonce: u16 = rand::random();
    format!("{host}/{}/{nonce:04x}", std::process::id())
}
