//! The `events` block of the daemon configuration: the app endpoint that receives the agents'
//! lifecycle events, the secrets they are signed with, and how long delivery keeps trying.
//! The delivery itself is `crate::daemon::events`.
//!
//! ```yaml
//! events:
//!   name: app                          # names the endpoint's delivery cursor
//!   url: https://app.example.com/hooks/tether   # or urlEnv: TETHER_EVENTS_URL
//!   secretsEnv: TETHER_EVENTS_SECRETS  # one or more secrets, comma-separated; the first is newest
//!   timeout: 10s
//!   retryFirst: 1s                     # the first retry's wait; doubled up to retryMax
//!   retryMax: 1h
//!   giveUpAfter: 72h                   # then the event is a dead letter
//! ```

use super::Check;
use crate::process::parse_duration;
use crate::secret::Secret;
use std::time::Duration;

/// How long one delivery attempt may take, unless configured.
pub const DEFAULT_EVENTS_TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry's wait, unless configured.
pub const DEFAULT_RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between attempts, unless configured.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(3600);
/// How long an event is retried before it becomes a dead letter, unless configured: 3 days.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);

/// The one endpoint events go to.
#[derive(Debug, Clone)]
pub struct EventsEndpoint {
    /// The endpoint's name: it names its delivery cursor (`refs/tether/events/<fleet>/<name>`).
    pub name: String,
    /// Where to `POST`. Shown only by host.
    pub url: Secret<String>,
    /// The signing secrets, newest first; every delivery carries one signature per secret.
    pub secrets: Vec<Secret<String>>,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// The first retry's wait; each further retry waits twice as long, up to `retry_max`.
    pub retry_first: Duration,
    /// The longest wait between attempts.
    pub retry_max: Duration,
    /// How long an event is retried before it becomes a dead letter.
    pub give_up_after: Duration,
}

/// The validated `events` block: no endpoint, no delivery.
#[derive(Debug, Clone, Default)]
pub struct EventsConfig {
    /// The endpoint, when `events.url` or `events.urlEnv` is set.
    pub endpoint: Option<EventsEndpoint>,
}

const DURATION_HINT: &str = "write a number with a unit: `500ms`, `90s`, `5m`, `72h`";

impl Check<'_> {
    /// Validates the `events` block.
    pub(super) fn events(&mut self) -> EventsConfig {
        let Some(url) = self.sink_url("events.url", "events.urlEnv") else {
            return EventsConfig::default();
        };
        let name = self.text("events.name").unwrap_or_else(|| "app".to_owned());
        let valid_name = !name.is_empty()
            && name.len() <= 40
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid_name {
            self.bad(
                "events.name",
                format!("`{name}` is not a valid endpoint name"),
                "use up to 40 lowercase letters, digits and dashes, e.g. `app`",
            );
        }
        let secrets = self.event_secrets();
        let duration = |key: &str, default: Duration, check: &mut Check<'_>| {
            check.parsed(key, default, DURATION_HINT, |t| {
                parse_duration(t).and_then(|d| {
                    (d >= Duration::from_millis(10))
                        .then_some(d)
                        .ok_or_else(|| format!("`{t}` is shorter than 10ms"))
                })
            })
        };
        let timeout = duration("events.timeout", DEFAULT_EVENTS_TIMEOUT, self);
        let retry_first = duration("events.retryFirst", DEFAULT_RETRY_FIRST, self);
        let retry_max = duration("events.retryMax", DEFAULT_RETRY_MAX, self);
        let give_up_after = duration("events.giveUpAfter", DEFAULT_GIVE_UP_AFTER, self);
        if retry_max < retry_first {
            self.bad(
                "events.retryMax",
                "`events.retryMax` is shorter than `events.retryFirst`".to_owned(),
                "make retryMax at least retryFirst",
            );
        }
        EventsConfig {
            endpoint: Some(EventsEndpoint {
                name,
                url,
                secrets,
                timeout,
                retry_first,
                retry_max,
                give_up_after,
            }),
        }
    }

    /// The secrets in the variable `events.secretsEnv` names; required with an endpoint.
    fn event_secrets(&mut self) -> Vec<Secret<String>> {
        let hint = "set `events.secretsEnv` to the name of a variable holding the signing secret(s), comma-separated, newest first";
        let Some(var) = self.text("events.secretsEnv") else {
            self.bad(
                "events.secretsEnv",
                "events are signed, and no secret is named".to_owned(),
                hint,
            );
            return Vec::new();
        };
        let value = (self.env)(&var).unwrap_or_default();
        let secrets: Vec<Secret<String>> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Secret::new(s.to_owned()))
            .collect();
        if secrets.is_empty() {
            self.bad(
                "events.secretsEnv",
                format!("`{var}` is not set in the environment, or empty"),
                hint,
            );
        } else if secrets.iter().any(|s| s.expose().len() < 16) {
            self.bad(
                "events.secretsEnv",
                format!("a secret in `{var}` is shorter than 16 characters"),
                "use long random secrets, e.g. `openssl rand -hex 32`",
            );
        }
        secrets
    }
}
