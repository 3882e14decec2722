//! Configuration files and environments, good and bad.

use super::check::parse_jitter;
use super::*;
use crate::process::parse_duration;
use std::collections::BTreeMap;

const FULL: &str = r#"
fleet: aura-prod
source:
  remote: https://github.com/acme/fleet.git
  branch: production
  cacheDir: cache
interval: 2m
jitter: 20%
listen: 0.0.0.0:9180
webhook:
  secretFile: secrets/webhook
lock:
  ttl: 90s
  holder: host-a
tailscale:
  tailnet: acme.example
concurrency: 8
logFormat: json
"#;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |var| map.get(var).cloned()
}

const TOKENS: &[(&str, &str)] = &[
    ("HCLOUD_TOKEN", "hc-secret"),
    ("TS_API_KEY", "tskey-api-secret"),
];

fn problems(text: &str, vars: &[(&str, &str)]) -> Vec<ConfigProblem> {
    match DaemonConfig::parse(Path::new("/etc/tether/tether.yaml"), text, &env(vars)) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn a_full_file_with_secrets_from_env_and_files_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("secrets")).expect("mkdir");
    std::fs::write(dir.path().join("secrets/webhook"), "hook-secret\n").expect("write");
    let file = dir.path().join("tether.yaml");
    std::fs::write(&file, FULL).expect("write");
    let mut vars = TOKENS.to_vec();
    vars.push(("GITHUB_TOKEN", "ghp_secret"));
    let config = DaemonConfig::load(&file, &env(&vars)).expect("valid");

    assert_eq!(config.fleet, "aura-prod");
    assert_eq!(
        config.source,
        FleetSource::Remote {
            url: "https://github.com/acme/fleet.git".into(),
            branch: "production".into(),
            cache_dir: dir.path().join("cache"),
        }
    );
    assert_eq!(config.schedule.every, Duration::from_secs(120));
    assert!((config.schedule.jitter - 0.2).abs() < 1e-9);
    assert_eq!(config.listen.to_string(), "0.0.0.0:9180");
    assert_eq!(
        config.webhook_secret.as_ref().map(|s| s.expose().as_str()),
        Some("hook-secret")
    );
    assert_eq!(
        (config.lock_ttl, config.lock_holder.as_str()),
        (Duration::from_secs(90), "host-a")
    );
    assert_eq!(config.hetzner_endpoint, "https://api.hetzner.cloud/v1");
    assert_eq!(config.hetzner_token.expose(), "hc-secret");
    assert_eq!(config.tailnet, "acme.example");
    assert!(
        matches!(&config.tailscale_auth, TailscaleAuth::ApiKey(k) if k.expose() == "tskey-api-secret")
    );
    assert_eq!(
        config.github_token.as_ref().map(|t| t.expose().as_str()),
        Some("ghp_secret")
    );
    assert_eq!(
        (config.concurrency, config.log_format),
        (8, LogFormat::Json)
    );

    let debug = format!("{config:?}");
    for secret in ["hook-secret", "hc-secret", "tskey-api-secret", "ghp_secret"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[test]
fn defaults_fill_a_minimal_file_and_environment_overrides_win() {
    let text = "fleet: aura-prod\nsource:\n  path: fleet\ninterval: 10m\n";
    let mut vars = vec![
        ("TETHER_INTERVAL", "30s"),
        ("TETHER_LISTEN", "127.0.0.1:0"),
        ("TS_OAUTH_CLIENT_ID", "client-1"),
        ("TS_OAUTH_CLIENT_SECRET", "tskey-client-secret"),
        ("HCLOUD_TOKEN", "hc"),
    ];
    let config = DaemonConfig::parse(Path::new("/etc/tether/tether.yaml"), text, &env(&vars))
        .expect("valid");
    assert_eq!(
        config.source,
        FleetSource::Directory {
            path: PathBuf::from("/etc/tether/fleet")
        }
    );
    assert_eq!(config.schedule.every, Duration::from_secs(30));
    assert_eq!(config.listen.to_string(), "127.0.0.1:0");
    assert!(
        config.webhook_secret.is_none(),
        "no webhook unless configured"
    );
    assert!(
        matches!(config.tailscale_auth, TailscaleAuth::OAuth { ref client_id, .. } if client_id == "client-1")
    );
    assert_eq!(
        (config.concurrency, config.log_format),
        (4, LogFormat::Text)
    );
    assert_eq!(config.lock_ttl, Duration::from_secs(120));
    assert!(
        config
            .lock_holder
            .contains(&format!("/{}/", std::process::id()))
    );

    vars.push(("TETHER_WEBHOOK_SECRET", "from-env"));
    let config = DaemonConfig::parse(Path::new("/etc/tether/tether.yaml"), text, &env(&vars))
        .expect("valid");
    assert_eq!(
        config.webhook_secret.map(|s| s.expose().clone()),
        Some("from-env".into())
    );
}

#[test]
fn inline_secrets_are_refused_naming_the_key_and_never_echoing_the_value() {
    let text = "fleet: aura-prod\nsource:\n  path: fleet\nwebhook:\n  secret: hunter2-webhook\nhetzner:\n  token: hunter2-hcloud\n";
    let found = problems(text, TOKENS);
    let keys: Vec<_> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["webhook.secret", "hetzner.token"]);
    assert!(found.iter().all(|p| p.message == "holds a secret inline"));
    assert_eq!(
        found[0].hint,
        "secrets never go in the config file: set TETHER_WEBHOOK_SECRET, or put the secret in a file and set `webhook.secretFile`"
    );
    let err =
        DaemonConfig::parse(Path::new("tether.yaml"), text, &env(TOKENS)).expect_err("invalid");
    let shown = format!("{err}\n{err:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("tether.yaml:5:3: `webhook.secret`: holds a secret inline"),
        "{shown}"
    );
}

#[test]
fn every_problem_is_reported_at_once_with_position_key_and_hint() {
    let text = "fleet: Aura_Prod\nsource:\n  remote: git@github.com:acme/fleet.git\ninterval: 5\njitter: 80%\nconcurency: 3\nlogFormat: xml\n";
    let found = problems(text, &[("TETHER_CONCURRENCY", "0")]);
    let summary: Vec<_> = found
        .iter()
        .map(|p| (p.key.as_str(), p.origin.clone()))
        .collect();
    let file = |line, column| Some(Origin::File(tether_schema::Span { line, column }));
    assert_eq!(
        summary,
        [
            ("concurency", file(6, 1)),
            ("fleet", file(1, 8)),
            ("source.remote", file(3, 11)),
            ("interval", file(4, 11)),
            ("jitter", file(5, 9)),
            (
                "concurrency",
                Some(Origin::Env("TETHER_CONCURRENCY".into()))
            ),
            ("logFormat", file(7, 12)),
            ("HCLOUD_TOKEN", Some(Origin::Env("HCLOUD_TOKEN".into()))),
            ("TS_API_KEY", Some(Origin::Env("TS_API_KEY".into()))),
        ]
    );
    assert_eq!(found[0].hint, "did you mean `concurrency`?");
    assert!(
        found[2].message.contains("ssh is not supported yet"),
        "{:?}",
        found[2]
    );
    assert_eq!(
        found[7].hint,
        "set HCLOUD_TOKEN in the environment, or put it in a file and set `hetzner.tokenFile`"
    );
}

#[test]
fn unreadable_secret_files_and_conflicting_sources_are_reported() {
    let text = "fleet: aura-prod\nsource:\n  path: fleet\n  remote: /srv/fleet.git\nhetzner:\n  tokenFile: /nonexistent/hcloud\n";
    let found = problems(text, &[("TS_API_KEY", "k"), ("TS_OAUTH_CLIENT_ID", "c")]);
    let keys: Vec<_> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["source.path", "hetzner.tokenFile", "TS_API_KEY"]);
    assert!(
        found[1]
            .message
            .starts_with("cannot read `/nonexistent/hcloud`"),
        "{:?}",
        found[1]
    );
    assert_eq!(
        found[2].message,
        "both an API key and an OAuth client are given; keep one"
    );
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let err = DaemonConfig::load(Path::new("/nonexistent/tether.yaml"), &env(TOKENS))
        .expect_err("missing");
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string().contains("/nonexistent/tether.yaml"),
        "{err}"
    );
}

#[test]
fn durations_and_jitter_parse_with_units() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    let err = parse_duration("5").expect_err("no unit");
    assert!(
        err.contains("`5` is not a duration") && err.contains("5sec"),
        "{err}"
    );
    assert!(parse_duration("m").is_err() && parse_duration("5 parsecs").is_err());
    assert_eq!(parse_jitter("10%"), Ok(0.1));
    assert_eq!(parse_jitter("0.25"), Ok(0.25));
    assert!(parse_jitter("60%").is_err());
}

#[test]
fn the_cli_endpoint_names_configure_the_daemon_and_the_old_names_are_aliases() {
    let text = "fleet: aura-prod\nsource:\n  path: fleet\n";
    let mut vars = TOKENS.to_vec();
    vars.push(("HCLOUD_ENDPOINT", "http://127.0.0.1:4000/v1"));
    vars.push(("TETHER_TAILSCALE_ENDPOINT", "http://127.0.0.1:4001"));
    let config = DaemonConfig::parse(Path::new("/etc/tether/tether.yaml"), text, &env(&vars))
        .expect("valid");
    assert_eq!(config.hetzner_endpoint, "http://127.0.0.1:4000/v1");
    assert_eq!(config.tailscale_endpoint, "http://127.0.0.1:4001");

    vars.push(("TETHER_HETZNER_ENDPOINT", "https://api.hetzner.cloud/v1"));
    let found = problems(text, &vars);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "HCLOUD_ENDPOINT");
    assert!(
        found[0].message.contains("TETHER_HETZNER_ENDPOINT"),
        "{}",
        found[0].message
    );
}

#[test]
fn the_printed_configuration_shows_every_setting_and_no_secret() {
    let mut vars = TOKENS.to_vec();
    vars.push(("TETHER_RECONCILE_TOKEN", "reconcile-secret"));
    vars.push(("GITHUB_TOKEN", "ghp_secret"));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("secrets")).expect("mkdir");
    std::fs::write(dir.path().join("secrets/webhook"), "hook-secret\n").expect("write");
    let file = dir.path().join("tether.yaml");
    std::fs::write(&file, FULL).expect("write");
    let config = DaemonConfig::load(&file, &env(&vars)).expect("valid");
    let printed = config.to_yaml();
    for secret in [
        "hc-secret",
        "tskey-api-secret",
        "reconcile-secret",
        "ghp_secret",
        "hook-secret",
    ] {
        assert!(!printed.contains(secret), "{secret} in\n{printed}");
    }
    for line in [
        "fleet: aura-prod",
        "  remote: \"https://github.com/acme/fleet.git\"",
        "  ttl: 90s",
        "shutdownGrace: 60s",
        "degradedAfter: 3",
        "  actionTimeout: 600s",
        "#   hetzner.token: set",
        "#   tailscale.apiKey: set",
        "#   dashboard.readToken: not set",
    ] {
        assert!(printed.contains(line), "`{line}` missing from\n{printed}");
    }
}

#[test]
fn the_notify_block_takes_a_written_webhook_url_and_a_slack_url_from_the_environment() {
    let text = "fleet: aura-prod\nsource:\n  path: /srv/fleet\nnotify:\n  unhealthyAfter: 15m\n  timeout: 5s\n  retries: 2\n  webhook:\n    url: https://ops.example.com/hooks/tether\n  slack:\n    urlEnv: TETHER_SLACK_WEBHOOK_URL\n";
    let mut vars = TOKENS.to_vec();
    vars.push((
        "TETHER_SLACK_WEBHOOK_URL",
        "https://hooks.slack.com/services/T000/B000/XXXX",
    ));
    let config = DaemonConfig::parse(Path::new("/etc/tether/tether.yaml"), text, &env(&vars))
        .expect("valid");
    let notify = &config.notify;
    assert_eq!(notify.unhealthy_after, Duration::from_secs(900));
    assert_eq!(
        (notify.timeout, notify.retries),
        (Duration::from_secs(5), 2)
    );
    let sinks: Vec<(SinkFormat, &str)> = notify
        .sinks
        .iter()
        .map(|s| (s.format, s.url.expose().as_str()))
        .collect();
    assert_eq!(
        sinks,
        [
            (SinkFormat::Json, "https://ops.example.com/hooks/tether"),
            (
                SinkFormat::Slack,
                "https://hooks.slack.com/services/T000/B000/XXXX"
            ),
        ]
    );
    let printed = config.to_yaml();
    assert!(
        !printed.contains("XXXX") && !printed.contains("ops.example.com"),
        "{printed}"
    );
    assert!(
        printed.contains("#   notify.webhook.url: set\n#   notify.slack.url: set"),
        "{printed}"
    );
}

#[test]
fn notify_defaults_to_no_sink_and_a_ten_minute_threshold() {
    let text = "fleet: aura-prod\nsource:\n  path: /srv/fleet\n";
    let config = DaemonConfig::parse(Path::new("/etc/tether/tether.yaml"), text, &env(TOKENS))
        .expect("valid");
    assert!(config.notify.sinks.is_empty());
    assert_eq!(config.notify.unhealthy_after, DEFAULT_UNHEALTHY_AFTER);
}

#[test]
fn a_slack_url_written_inline_a_missing_variable_and_plain_http_are_refused_without_the_url() {
    let text = "fleet: aura-prod\nsource:\n  path: /srv/fleet\nnotify:\n  retries: 50\n  webhook:\n    urlEnv: TETHER_NOTIFY_URL\n  slack:\n    url: https://hooks.slack.com/services/T000/B000/XXXX\n";
    let found = problems(text, TOKENS);
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "notify.slack.url",
            "notify.retries",
            "notify.webhook.urlEnv"
        ],
        "{found:?}"
    );
    assert!(
        found[0].hint.contains("notify.slack.urlEnv"),
        "{:?}",
        found[0]
    );
    assert!(
        found[2].message.contains("TETHER_NOTIFY_URL"),
        "{:?}",
        found[2]
    );

    let plain =
        "fleet: aura-prod\nsource:\n  path: /srv/fleet\nnotify:\n  slack:\n    urlEnv: SLACK_URL\n";
    let mut vars = TOKENS.to_vec();
    vars.push((
        "SLACK_URL",
        "http://hooks.slack.com/services/T000/B000/XXXX",
    ));
    let found = problems(plain, &vars);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "notify.slack.urlEnv");
    assert!(!format!("{found:?}").contains("XXXX"), "{found:?}");
}

/// Loads `printed` as a configuration file at `/etc/tether/tether.yaml` with `vars`.
fn reload(printed: &str, vars: &[(&str, &str)]) -> DaemonConfig {
    DaemonConfig::parse(Path::new("/etc/tether/tether.yaml"), printed, &env(vars))
        .unwrap_or_else(|e| panic!("the printed configuration does not load back: {e}\n{printed}"))
}

#[test]
fn the_printed_configuration_loads_back_to_the_same_settings() {
    let text = r#"
fleet: aura-prod
source:
  path: "/srv/fleet: #1"
interval: 90s
jitter: 0%
listen: 127.0.0.1:9181
lock:
  ttl: 45s
  holder: "- yes"
tailscale:
  tailnet: "-"
  endpoint: http://127.0.0.1:8081/api/v2
hetzner:
  endpoint: http://127.0.0.1:8080/v1
  actionTimeout: 1500ms
dashboard:
  commitUrl: "https://github.com/acme/fleet/commit/"
agentApi:
  listen: 127.0.0.1:9300
  url: http://100.64.0.1:9300
  binaryUrl: "https://example.com/tether-agent?v=1#x"
concurrency: 16
degradedAfter: 5
rateLimit:
  hourly: 7200
  observeShare: 25%
notify:
  retries: 0
  webhook:
    url: https://ops.example.com/hooks/tether
"#;
    let first = reload(text, TOKENS);
    let printed = first.to_yaml();
    let second = reload(&printed, TOKENS);
    assert_eq!(second.tailnet, "-");
    assert_eq!(second.lock_holder, "- yes");
    assert_eq!(
        second.agent_api.as_ref().map(|a| a.binary_url.as_str()),
        Some("https://example.com/tether-agent?v=1#x")
    );
    let settings_lines = |yaml: &str| -> Vec<String> {
        yaml.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        settings_lines(&second.to_yaml()),
        settings_lines(&printed),
        "a second round changes no setting (the secrets' comments say only whether each is set)"
    );
    let settings = |c: &DaemonConfig| {
        format!(
            "{:?} {:?} {} {:?} {} {:?} {} {} {} {} {:?} {} {} {} {:?}",
            c.source,
            c.schedule.every,
            c.listen,
            c.lock_ttl,
            c.hetzner_endpoint,
            c.action_timeout,
            c.tailscale_endpoint,
            c.concurrency,
            c.degraded_after,
            c.rate_budget.hourly,
            c.rate_budget.observe_share,
            c.notify.retries,
            c.dashboard.commit_url.as_deref().unwrap_or_default(),
            c.agent_api
                .as_ref()
                .map(|a| a.listen.to_string())
                .unwrap_or_default(),
            c.schedule.jitter,
        )
    };
    assert_eq!(settings(&second), settings(&first));
    assert!(
        second.notify.sinks.is_empty() && printed.contains("#   notify.webhook.url: set"),
        "a sink URL is a secret: named as set, not written\n{printed}"
    );
}

#[test]
fn the_printed_defaults_load_back_with_oauth_credentials() {
    let vars = [
        ("HCLOUD_TOKEN", "hc-secret"),
        ("TS_OAUTH_CLIENT_ID", "k123"),
        ("TS_OAUTH_CLIENT_SECRET", "tskey-client-secret"),
    ];
    let first = reload("fleet: aura-prod\nsource:\n  path: /srv/fleet\n", &vars);
    let printed = first.to_yaml();
    assert!(!printed.contains("tskey-client-secret"), "{printed}");
    assert!(
        printed.contains("#   tailscale.oauthClientSecret: set"),
        "{printed}"
    );
    assert_eq!(reload(&printed, &vars).to_yaml(), printed);
}

#[test]
fn a_signing_key_file_is_loaded_and_a_bad_one_is_reported_without_its_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = crate::audit::signing::tests::signer(5);
    std::fs::write(dir.path().join("signing"), signer.private_openssh()).expect("write key");
    std::fs::write(dir.path().join("garbage"), "not-a-key-hunter2\n").expect("write");
    let text = "fleet: aura-prod\nsource:\n  path: fleet\nsigning:\n  keyFile: signing\n";
    let config =
        DaemonConfig::parse(&dir.path().join("tether.yaml"), text, &env(TOKENS)).expect("valid");
    assert_eq!(
        config.signer.as_deref().map(|s| s.fingerprint()),
        Some(signer.fingerprint())
    );
    assert!(
        config
            .to_yaml()
            .contains(&format!("#   signing.key: {}", signer.fingerprint()))
    );

    let unsigned = text.replace("signing:\n  keyFile: signing\n", "");
    let config = DaemonConfig::parse(&dir.path().join("tether.yaml"), &unsigned, &env(TOKENS))
        .expect("valid");
    assert!(config.to_yaml().contains("status commits are unsigned"));

    let bad = text.replace("keyFile: signing", "keyFile: garbage");
    let found = match DaemonConfig::parse(&dir.path().join("tether.yaml"), &bad, &env(TOKENS)) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    };
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "signing.keyFile");
    assert!(!found[0].message.contains("hunter2"), "{found:?}");
}
