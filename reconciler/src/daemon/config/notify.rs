//! The `notify` block of the daemon configuration: where the daemon sends notifications (a
//! generic JSON webhook, a Slack-compatible webhook), how long an agent may stay unhealthy
//! before it is announced, and how deliveries time out and retry. The sending itself is
//! `crate::daemon::notify`.
//!
//! ```yaml
//! notify:
//!   unhealthyAfter: 10m
//!   timeout: 10s
//!   retries: 3
//!   webhook:
//!     url: https://ops.example.com/hooks/tether   # or urlEnv: TETHER_NOTIFY_WEBHOOK_URL
//!   slack:
//!     urlEnv: TETHER_SLACK_WEBHOOK_URL             # a secret: only from the environment
//! ```

use super::Check;
use crate::process::parse_duration;
use crate::secret::Secret;
use std::time::Duration;

/// How long an agent may stay unhealthy before it is announced, unless configured.
pub const DEFAULT_UNHEALTHY_AFTER: Duration = Duration::from_secs(600);
/// How long one delivery attempt may take, unless configured.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Delivery attempts after the first, unless configured.
pub const DEFAULT_NOTIFY_RETRIES: u32 = 3;

/// The shape of a notification's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFormat {
    /// tether's own JSON object (`event`, `agent`, `reason`, `fleet`, `revision`, `time`, …).
    Json,
    /// A Slack incoming-webhook body, `{"text": …}` in Slack's mrkdwn.
    Slack,
}

/// One place notifications go.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// The body's shape.
    pub format: SinkFormat,
    /// Where to `POST`. Kept secret: a Slack webhook URL is its own credential, so logs and
    /// errors show only its host.
    pub url: Secret<String>,
}

/// The validated `notify` block. With no sink, no notification is sent.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// How long an agent stays unhealthy before it is announced.
    pub unhealthy_after: Duration,
    /// How long one delivery attempt may take.
    pub timeout: Duration,
    /// Attempts after the first when a delivery fails for a reason that may pass.
    pub retries: u32,
    /// The sinks.
    pub sinks: Vec<SinkConfig>,
}

impl Default for NotifyConfig {
    fn default() -> NotifyConfig {
        NotifyConfig {
            unhealthy_after: DEFAULT_UNHEALTHY_AFTER,
            timeout: DEFAULT_NOTIFY_TIMEOUT,
            retries: DEFAULT_NOTIFY_RETRIES,
            sinks: Vec::new(),
        }
    }
}

const URL_HINT: &str = "use an https URL (plain http only to 127.0.0.1 or localhost), e.g. `https://ops.example.com/hooks/tether`";

impl Check<'_> {
    /// Validates the `notify` block.
    pub(super) fn notify(&mut self) -> NotifyConfig {
        let duration_hint = "write a number with a unit: `90s`, `5m`, `1h`";
        let unhealthy_after = self.parsed(
            "notify.unhealthyAfter",
            DEFAULT_UNHEALTHY_AFTER,
            duration_hint,
            parse_duration,
        );
        let timeout = self.parsed(
            "notify.timeout",
            DEFAULT_NOTIFY_TIMEOUT,
            duration_hint,
            |t| {
                parse_duration(t).and_then(|d| {
                    (d >= Duration::from_millis(100))
                        .then_some(d)
                        .ok_or_else(|| {
                            format!(
                                "{} is shorter than the minimum of 100ms",
                                humantime::format_duration(d)
                            )
                        })
                })
            },
        );
        let retries = self.parsed(
            "notify.retries",
            DEFAULT_NOTIFY_RETRIES,
            "write a whole number from 0 to 10",
            |t| {
                t.parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 10)
                    .ok_or_else(|| format!("`{t}` is not a number from 0 to 10"))
            },
        );
        let mut sinks = Vec::new();
        if let Some(url) = self.sink_url("notify.webhook.url", "notify.webhook.urlEnv") {
            sinks.push(SinkConfig {
                format: SinkFormat::Json,
                url,
            });
        }
        if let Some(url) = self.sink_url("notify.slack.url", "notify.slack.urlEnv") {
            sinks.push(SinkConfig {
                format: SinkFormat::Slack,
                url,
            });
        }
        NotifyConfig {
            unhealthy_after,
            timeout,
            retries,
            sinks,
        }
    }

    /// The URL written under `url_key`, or held by the variable `env_key` names; problems name
    /// the key or the variable, never the URL.
    pub(super) fn sink_url(&mut self, url_key: &str, env_key: &str) -> Option<Secret<String>> {
        let written = self.text(url_key);
        let named = self.text(env_key);
        let (url, key) = match (written, named) {
            (None, None) => return None,
            (Some(_), Some(_)) => {
                self.bad(
                    env_key,
                    format!("both `{url_key}` and `{env_key}` are set"),
                    "keep one",
                );
                return None;
            }
            (Some(url), None) => (url, url_key.to_owned()),
            (None, Some(var)) => match (self.env)(&var).filter(|v| !v.trim().is_empty()) {
                Some(url) => (url, var),
                None => {
                    self.bad(
                        env_key,
                        format!("`{var}` is not set in the environment"),
                        "set the variable to the webhook URL, or remove the sink",
                    );
                    return None;
                }
            },
        };
        let url = url.trim();
        let loopback_http = url
            .strip_prefix("http://")
            .is_some_and(|rest| rest.starts_with("127.0.0.1") || rest.starts_with("localhost"));
        if !url.starts_with("https://") && !loopback_http {
            let message = format!("the URL in `{key}` is not an https URL");
            if key == url_key {
                self.bad(url_key, message, URL_HINT);
            } else {
                self.bad(env_key, message, URL_HINT);
            }
            return None;
        }
        Some(Secret::new(url.to_owned()))
    }
}
