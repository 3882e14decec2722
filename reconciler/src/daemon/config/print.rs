//! The effective configuration as YAML for `tether run --print-config`: every setting after
//! defaults and environment overrides, secrets shown only as set or not.

use super::{DaemonConfig, FleetSource, LogFormat, TailscaleAuth};
use crate::secret::Secret;
use std::fmt;
use std::time::Duration;

pub(super) fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn redacted(secret: Option<&Secret<String>>) -> &'static str {
    match secret {
        Some(_) => "(set, redacted)",
        None => "(not set)",
    }
}

impl fmt::Display for DaemonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fleet: {}", self.fleet)?;
        writeln!(f, "source:")?;
        match &self.source {
            FleetSource::Remote {
                url,
                branch,
                cache_dir,
            } => {
                writeln!(f, "  remote: {url}")?;
                writeln!(f, "  branch: {branch}")?;
                writeln!(f, "  cacheDir: {}", cache_dir.display())?;
            }
            FleetSource::Directory { path } => writeln!(f, "  path: {}", path.display())?,
        }
        writeln!(f, "interval: {}", secs(self.schedule.every))?;
        writeln!(f, "jitter: {}%", (self.schedule.jitter * 100.0).round())?;
        writeln!(f, "listen: {}", self.listen)?;
        writeln!(
            f,
            "webhook:\n  secret: {}",
            redacted(self.webhook_secret.as_ref())
        )?;
        writeln!(
            f,
            "reconcile:\n  token: {}",
            redacted(self.reconcile_token.as_ref())
        )?;
        if let Some(api) = &self.agent_api {
            writeln!(
                f,
                "agentApi:\n  listen: {}\n  url: {}\n  binaryUrl: {}\n  poll: {}\n  waveTimeout: {}",
                api.listen,
                api.url,
                api.binary_url,
                secs(api.poll),
                secs(api.wave_timeout)
            )?;
        }
        writeln!(
            f,
            "dashboard:\n  readToken: {}\n  commitUrl: {}",
            redacted(self.dashboard.read_token.as_ref()),
            self.dashboard.commit_url.as_deref().unwrap_or("(not set)")
        )?;
        writeln!(
            f,
            "lock:\n  ttl: {}\n  holder: {}",
            secs(self.lock_ttl),
            self.lock_holder
        )?;
        writeln!(
            f,
            "hetzner:\n  endpoint: {}\n  token: {}\n  actionTimeout: {}",
            self.hetzner_endpoint,
            redacted(Some(&self.hetzner_token)),
            secs(self.action_timeout)
        )?;
        writeln!(
            f,
            "tailscale:\n  endpoint: {}\n  tailnet: {}",
            self.tailscale_endpoint, self.tailnet
        )?;
        match &self.tailscale_auth {
            TailscaleAuth::ApiKey(key) => writeln!(f, "  apiKey: {}", redacted(Some(key)))?,
            TailscaleAuth::OAuth {
                client_id,
                client_secret,
            } => writeln!(
                f,
                "  oauthClientId: {client_id}\n  oauthClientSecret: {}",
                redacted(Some(client_secret))
            )?,
        }
        writeln!(
            f,
            "github:\n  token: {}",
            redacted(self.github_token.as_ref())
        )?;
        writeln!(f, "concurrency: {}", self.concurrency)?;
        let format = match self.log_format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        writeln!(f, "logFormat: {format}")?;
        writeln!(f, "shutdownGrace: {}", secs(self.shutdown_grace))?;
        writeln!(f, "degradedAfter: {}", self.degraded_after)?;
        writeln!(
            f,
            "rateLimit:\n  hourly: {}\n  observeShare: {}",
            self.rate_budget.hourly, self.rate_budget.observe_share
        )?;
        write!(f, "{}{}", self.notify, self.events)
    }
}
