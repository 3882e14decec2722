//! The effective configuration as YAML for `tether run --print-config`: every setting after
//! defaults and environment overrides, written by yaml-rust2's emitter so the output loads back
//! as a configuration file. Secrets are not settings of the file (they come from the
//! environment or a `*File` key), so they follow as comments saying only whether each is set.

use super::{DaemonConfig, FleetSource, LogFormat, NotifyConfig, SinkFormat, TailscaleAuth};
use crate::secret::Secret;
use std::time::Duration;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter};

/// `d` as the configuration writes durations: `90s`, or `250ms` below whole seconds.
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn text(value: impl ToString) -> Yaml {
    Yaml::String(value.to_string())
}

fn map<const N: usize>(entries: [(&str, Yaml); N]) -> Yaml {
    Yaml::Hash(
        entries
            .into_iter()
            .map(|(key, value)| (text(key), value))
            .collect::<Hash>(),
    )
}

fn set(secret: Option<&Secret<String>>) -> &'static str {
    match secret {
        Some(_) => "set",
        None => "not set",
    }
}

impl DaemonConfig {
    /// The configuration as a YAML document that [`DaemonConfig::parse`] reads back to the same
    /// settings (secrets again from the environment), followed by one comment line per secret
    /// saying whether it is set. No secret value is written.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        let mut emitter = YamlEmitter::new(&mut out);
        emitter
            .dump(&self.settings_yaml())
            .expect("writing YAML to a String cannot fail");
        out.push_str(
            "\n# secrets (from the environment or the files the configuration names; never printed):\n",
        );
        for (key, state) in self.secret_states() {
            out.push_str(&format!("#   {key}: {state}\n"));
        }
        let signing = self
            .signer
            .as_ref()
            .map_or("not set (status commits are unsigned)".to_owned(), |s| {
                s.fingerprint().to_owned()
            });
        out.push_str(&format!("#   signing.key: {signing}\n"));
        out
    }

    fn settings_yaml(&self) -> Yaml {
        let source = match &self.source {
            FleetSource::Remote {
                url,
                branch,
                cache_dir,
            } => map([
                ("remote", text(url)),
                ("branch", text(branch)),
                ("cacheDir", text(cache_dir.display())),
            ]),
            FleetSource::Directory { path } => map([("path", text(path.display()))]),
        };
        let log_format = match self.log_format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        let mut root = Hash::new();
        let mut put = |key: &str, value: Yaml| {
            root.insert(text(key), value);
        };
        put("fleet", text(&self.fleet));
        put("source", source);
        put("interval", text(secs(self.schedule.every)));
        put(
            "jitter",
            text(format!("{}%", (self.schedule.jitter * 100.0).round())),
        );
        put("listen", text(self.listen));
        if let Some(api) = &self.agent_api {
            put(
                "agentApi",
                map([
                    ("listen", text(api.listen)),
                    ("url", text(&api.url)),
                    ("binaryUrl", text(&api.binary_url)),
                    ("poll", text(secs(api.poll))),
                    ("waveTimeout", text(secs(api.wave_timeout))),
                ]),
            );
        }
        if let Some(url) = &self.dashboard.commit_url {
            put("dashboard", map([("commitUrl", text(url))]));
        }
        put(
            "lock",
            map([
                ("ttl", text(secs(self.lock_ttl))),
                ("holder", text(&self.lock_holder)),
            ]),
        );
        put(
            "hetzner",
            map([
                ("endpoint", text(&self.hetzner_endpoint)),
                ("actionTimeout", text(secs(self.action_timeout))),
            ]),
        );
        put(
            "tailscale",
            map([
                ("endpoint", text(&self.tailscale_endpoint)),
                ("tailnet", text(&self.tailnet)),
            ]),
        );
        put("concurrency", Yaml::Integer(self.concurrency as i64));
        put("logFormat", text(log_format));
        put("shutdownGrace", text(secs(self.shutdown_grace)));
        put(
            "degradedAfter",
            Yaml::Integer(i64::from(self.degraded_after)),
        );
        put(
            "rateLimit",
            map([
                ("hourly", Yaml::Integer(i64::from(self.rate_budget.hourly))),
                (
                    "observeShare",
                    Yaml::Real(self.rate_budget.observe_share.to_string()),
                ),
            ]),
        );
        put("notify", notify_yaml(&self.notify));
        if let Some(e) = &self.events.endpoint {
            put(
                "events",
                map([
                    ("name", text(&e.name)),
                    ("timeout", text(secs(e.timeout))),
                    ("retryFirst", text(secs(e.retry_first))),
                    ("retryMax", text(secs(e.retry_max))),
                    ("giveUpAfter", text(secs(e.give_up_after))),
                ]),
            );
        }
        Yaml::Hash(root)
    }

    /// Every secret the daemon may use, by the key or variable that names it, and whether it
    /// is set.
    fn secret_states(&self) -> Vec<(&'static str, &'static str)> {
        let mut states = vec![
            ("hetzner.token", set(Some(&self.hetzner_token))),
            ("webhook.secret", set(self.webhook_secret.as_ref())),
            ("reconcile.token", set(self.reconcile_token.as_ref())),
            ("github.token", set(self.github_token.as_ref())),
            (
                "dashboard.readToken",
                set(self.dashboard.read_token.as_ref()),
            ),
        ];
        match &self.tailscale_auth {
            TailscaleAuth::ApiKey(key) => states.push(("tailscale.apiKey", set(Some(key)))),
            TailscaleAuth::OAuth { client_secret, .. } => {
                states.push(("tailscale.oauthClientId", "set"));
                states.push(("tailscale.oauthClientSecret", set(Some(client_secret))));
            }
        }
        if self.events.endpoint.is_some() {
            states.push(("events.url", "set"));
            states.push(("events.secrets", "set"));
        }
        for sink in &self.notify.sinks {
            let key = match sink.format {
                SinkFormat::Json => "notify.webhook.url",
                SinkFormat::Slack => "notify.slack.url",
            };
            states.push((key, set(Some(&sink.url))));
        }
        states
    }
}

/// `notify:` without its sinks: their URLs are secret, so they appear only among the secrets.
fn notify_yaml(notify: &NotifyConfig) -> Yaml {
    map([
        ("unhealthyAfter", text(secs(notify.unhealthy_after))),
        ("timeout", text(secs(notify.timeout))),
        ("retries", Yaml::Integer(i64::from(notify.retries))),
    ])
}
