//! `tether billing serve`'s configuration: a YAML file in the daemon configuration's style
//! (strict keys, every problem at once with its line), with `TETHER_BILLING_LISTEN` overriding
//! `listen`. The endpoint secrets come only from the environment (`STRIPE_WEBHOOK_SECRET`, or
//! the variable `webhook.secretEnv` names) or from `webhook.secretFile`; several secrets,
//! separated by commas or newlines, are all accepted while one is rolled. The Stripe API key
//! (which the receiver reads subscriptions with) comes only from `STRIPE_API_KEY` or the file
//! `STRIPE_API_KEY_FILE` names. Start at [`BillingConfig::load`]; the keys are documented in
//! `docs/billing.md`.

use super::file::{self, FileError, Problems};
use super::signature::DEFAULT_TOLERANCE;
use super::trigger::Trigger;
use crate::audit::commit::Identity;
use crate::audit::signing::Signer;
use crate::billing::stripe::{API_KEY_ENV, StripeApi};
use crate::process::parse_duration;
use crate::secret::Secret;
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tether_schema::spanned::Spanned;

/// Where the receiver listens unless configured.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9181));
/// The variable holding the endpoint secret(s) unless `webhook.secretEnv` names another.
pub const DEFAULT_SECRET_ENV: &str = "STRIPE_WEBHOOK_SECRET";
/// Overrides `listen`.
pub const LISTEN_ENV: &str = "TETHER_BILLING_LISTEN";
/// Most events per commit unless configured.
pub const DEFAULT_MAX_BATCH: usize = 250;
/// How long a delivery waits for its commit unless configured (Stripe waits longer).
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Subscription reads a second unless configured: below Stripe's documented live-mode limit
/// of about 100, leaving room for the account's other clients.
pub const DEFAULT_READS_PER_SECOND: u32 = 50;
/// The variable holding the daemon's `POST /reconcile` token: the name the daemon reads it
/// from (billing sits below the daemon and does not import it).
pub const RECONCILE_TOKEN_ENV: &str = "TETHER_RECONCILE_TOKEN";
/// How often the receiver runs `tether billing sync`'s reconciliation unless configured.
pub const DEFAULT_SYNC_EVERY: Duration = Duration::from_secs(3600);

/// A validated configuration. Its `Debug` output holds no secret.
#[derive(Debug, Clone)]
pub struct BillingConfig {
    /// Where `/stripe`, `/healthz` and `/metrics` listen.
    pub listen: SocketAddr,
    /// The fleet repository.
    pub repo: PathBuf,
    /// The fleet branch.
    pub branch: String,
    /// Push to this remote instead of only moving the local branch.
    pub push: Option<String>,
    /// The price mapping file.
    pub mapping: PathBuf,
    /// Signature timestamp tolerance.
    pub tolerance: Duration,
    /// Most events per commit.
    pub max_batch: usize,
    /// How long a delivery waits for its commit.
    pub ack_timeout: Duration,
    /// Commit identity.
    pub identity: Identity,
    /// Endpoint secrets (`whsec_…`).
    pub secrets: Vec<Secret<String>>,
    /// Stripe's API, which every event's subscription is read from.
    pub stripe: StripeApi,
    /// Most subscription reads a second.
    pub reads_per_second: u32,
    /// How often the receiver reconciles every subscription with Stripe's list.
    pub sync_every: Duration,
    /// The daemon asked for a pass after each commit (`daemon.url`).
    pub trigger: Option<Trigger>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    listen: Option<Spanned<String>>,
    repo: Option<Spanned<String>>,
    branch: Option<String>,
    push: Option<String>,
    mapping: Option<Spanned<String>>,
    tolerance: Option<Spanned<String>>,
    max_batch: Option<Spanned<usize>>,
    ack_timeout: Option<Spanned<String>>,
    #[serde(default)]
    author: RawAuthor,
    #[serde(default)]
    webhook: RawWebhook,
    #[serde(default)]
    stripe: RawStripe,
    #[serde(default)]
    daemon: RawDaemon,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDaemon {
    url: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawStripe {
    reads_per_second: Option<Spanned<u32>>,
    sync_every: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAuthor {
    name: Option<String>,
    email: Option<String>,
    /// The SSH private key billing commits are signed with.
    signing_key_file: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWebhook {
    secret_env: Option<String>,
    secret_file: Option<Spanned<String>>,
}

fn unknown_hint(key: &str) -> String {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    if last.contains("secret") && !last.ends_with("file") && !last.ends_with("env") {
        return format!(
            "secrets never go in the config file: set {DEFAULT_SECRET_ENV}, or put the secret in a file and set `webhook.secretFile`"
        );
    }
    String::new()
}

impl BillingConfig {
    /// Reads `path` and the environment through `env`, and validates. Relative paths are
    /// relative to the file's directory.
    ///
    /// # Errors
    /// The file cannot be read, or holds problems (all listed).
    pub fn load(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BillingConfig, FileError> {
        let mut problems = Problems::default();
        let raw = file::read::<RawConfig>(path, &mut problems, unknown_hint)?;
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        let config = raw.and_then(|raw| validate(raw, &base, env, &mut problems, true));
        problems.finish(path, config)
    }

    /// Like [`BillingConfig::load`] for `tether billing sync`, which receives no webhook and
    /// so needs no endpoint secret (`secrets` is empty).
    ///
    /// # Errors
    /// The file cannot be read, or holds problems (all listed).
    pub fn load_for_sync(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BillingConfig, FileError> {
        let mut problems = Problems::default();
        let raw = file::read::<RawConfig>(path, &mut problems, unknown_hint)?;
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        let config = raw.and_then(|raw| validate(raw, &base, env, &mut problems, false));
        problems.finish(path, config)
    }
}

fn validate(
    raw: RawConfig,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
    webhook: bool,
) -> Option<BillingConfig> {
    let listen_text = env(LISTEN_ENV)
        .map(|v| (v, None))
        .or(raw.listen.map(|l| (l.value, Some(l.span))));
    let listen = match listen_text {
        None => DEFAULT_LISTEN,
        Some((text, span)) => text.trim().parse().unwrap_or_else(|_| {
            problems.push(
                "listen",
                span,
                format!("`{text}` is not an address and port"),
                "write e.g. `127.0.0.1:9181`",
            );
            DEFAULT_LISTEN
        }),
    };
    let required = |v: Option<Spanned<String>>, key: &str, hint: &str, problems: &mut Problems| {
        let v = v.map(|v| base.join(v.value));
        if v.is_none() {
            problems.push(key, None, "is required".to_owned(), hint);
        }
        v
    };
    let repo = required(
        raw.repo,
        "repo",
        "name the fleet repository (a clone or a bare repository)",
        problems,
    );
    let mapping = required(
        raw.mapping,
        "mapping",
        "name the price mapping file (see docs/billing.md)",
        problems,
    );
    let duration =
        |v: Option<Spanned<String>>, key: &str, default: Duration, problems: &mut Problems| match v
        {
            None => default,
            Some(v) => parse_duration(v.value.trim()).unwrap_or_else(|message| {
                problems.push(
                    key,
                    Some(v.span),
                    message,
                    "write a duration such as `300s` or `5m`",
                );
                default
            }),
        };
    let tolerance = duration(raw.tolerance, "tolerance", DEFAULT_TOLERANCE, problems);
    let ack_timeout = duration(raw.ack_timeout, "ackTimeout", DEFAULT_ACK_TIMEOUT, problems);
    let max_batch = match raw.max_batch {
        Some(m) if m.value == 0 => {
            problems.push(
                "maxBatch",
                Some(m.span),
                "must be at least 1".to_owned(),
                "e.g. 250",
            );
            DEFAULT_MAX_BATCH
        }
        Some(m) => m.value,
        None => DEFAULT_MAX_BATCH,
    };
    let secrets = if webhook {
        secrets(raw.webhook, base, env, problems)
    } else {
        Vec::new()
    };
    let stripe = StripeApi::from_env(env)
        .map_err(|why| {
            problems.push(
                API_KEY_ENV,
                None,
                why,
                "the receiver reads each event's subscription from Stripe's API: give it a key (a restricted key with read access to subscriptions is enough)",
            );
        })
        .ok();
    let reads_per_second = match raw.stripe.reads_per_second {
        Some(r) if r.value == 0 => {
            problems.push(
                "stripe.readsPerSecond",
                Some(r.span),
                "must be at least 1".to_owned(),
                "e.g. 50 (Stripe allows about 100 a second in live mode, fewer in test mode)",
            );
            DEFAULT_READS_PER_SECOND
        }
        Some(r) => r.value,
        None => DEFAULT_READS_PER_SECOND,
    };
    let trigger = raw.daemon.url.and_then(|url| trigger(&url, env, problems));
    let sync_every = duration(
        raw.stripe.sync_every,
        "stripe.syncEvery",
        DEFAULT_SYNC_EVERY,
        problems,
    )
    .max(Duration::from_secs(60));
    let key_span = raw.author.signing_key_file.as_ref().map(|k| k.span);
    let key_file = raw.author.signing_key_file.map(|k| base.join(k.value));
    let signer = Signer::configured(key_file.as_deref(), env).unwrap_or_else(|e| {
        problems.push(
            "author.signingKeyFile",
            key_span,
            e.to_string(),
            "name an OpenSSH private key without a passphrase, or remove the key to commit unsigned",
        );
        None
    });
    Some(BillingConfig {
        listen,
        repo: repo?,
        branch: raw.branch.unwrap_or_else(|| "main".to_owned()),
        push: raw.push,
        mapping: mapping?,
        tolerance,
        max_batch,
        ack_timeout,
        identity: Identity {
            name: raw
                .author
                .name
                .unwrap_or_else(|| "tether billing".to_owned()),
            email: raw
                .author
                .email
                .unwrap_or_else(|| "billing@tether.invalid".to_owned()),
            signer,
        },
        secrets,
        stripe: stripe?,
        reads_per_second,
        sync_every,
        trigger,
    })
}

/// The daemon at `url` (`daemon.url`), with the token of its `POST /reconcile` from
/// `TETHER_RECONCILE_TOKEN`; problems never quote the token.
fn trigger(
    url: &Spanned<String>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Option<Trigger> {
    if !(url.value.starts_with("http://") || url.value.starts_with("https://")) {
        problems.push(
            "daemon.url",
            Some(url.span),
            format!("`{}` is not an http(s) URL", url.value),
            "write the daemon's HTTP address, e.g. http://127.0.0.1:9180",
        );
        return None;
    }
    let Some(token) = env(RECONCILE_TOKEN_ENV).filter(|t| !t.trim().is_empty()) else {
        problems.push(
            RECONCILE_TOKEN_ENV,
            None,
            "is not set".to_owned(),
            "`daemon.url` needs the daemon's POST /reconcile token in TETHER_RECONCILE_TOKEN",
        );
        return None;
    };
    Trigger::new(&url.value, Secret::new(token.trim().to_owned()))
        .map_err(|why| problems.push("daemon.url", Some(url.span), why, "report this as a bug"))
        .ok()
}

/// The endpoint secrets from the environment variable, else the file; each must look like a
/// webhook signing secret (`whsec_…`), so an API key pasted by mistake is caught. Problems
/// never quote a secret.
fn secrets(
    raw: RawWebhook,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Vec<Secret<String>> {
    let var = raw
        .secret_env
        .unwrap_or_else(|| DEFAULT_SECRET_ENV.to_owned());
    let (text, from) = match (env(&var), raw.secret_file) {
        (Some(text), _) => (text, var.clone()),
        (None, Some(file)) => {
            let path = base.join(&file.value);
            match std::fs::read_to_string(&path) {
                Ok(text) => (text, format!("`{}`", path.display())),
                Err(e) => {
                    problems.push(
                        "webhook.secretFile",
                        Some(file.span),
                        format!("cannot read `{}`: {e}", path.display()),
                        "check the path and that tether may read it",
                    );
                    return Vec::new();
                }
            }
        }
        (None, None) => {
            problems.push(&var, None, "is not set".to_owned(), &format!("set {var} to the endpoint's signing secret (whsec_…), or put it in a file and set `webhook.secretFile`"));
            return Vec::new();
        }
    };
    let secrets: Vec<Secret<String>> = text
        .split([',', '\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Secret::from)
        .collect();
    if secrets.is_empty() {
        problems.push(
            &var,
            None,
            format!("{from} holds no secret"),
            "write the endpoint's signing secret (whsec_…)",
        );
    } else if secrets.iter().any(|s| !s.expose().starts_with("whsec_")) {
        problems.push(
            &var,
            None,
            format!("{from} holds a value that is not a webhook signing secret (whsec_…)"),
            "copy the endpoint's signing secret from the Stripe dashboard, not an API key",
        );
    }
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, vars: &[(&str, &str)]) -> Result<BillingConfig, FileError> {
        let dir = tempfile::tempdir().map_err(|source| FileError::Read {
            path: PathBuf::new(),
            source,
        })?;
        let path = dir.path().join("billing.yaml");
        std::fs::write(&path, text).map_err(|source| FileError::Read {
            path: path.clone(),
            source,
        })?;
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        BillingConfig::load(&path, &|var| {
            vars.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn a_minimal_file_with_rotated_secrets_in_the_environment_loads() -> Result<(), FileError> {
        let c = load(
            "repo: fleet.git\nmapping: mapping.yaml\ntolerance: 2m\n",
            &[
                ("STRIPE_WEBHOOK_SECRET", "whsec_new, whsec_old"),
                ("STRIPE_API_KEY", "rk_test_reader"),
            ],
        )?;
        assert_eq!(c.secrets.len(), 2);
        assert_eq!(
            (c.tolerance, c.listen, c.branch.as_str()),
            (Duration::from_secs(120), DEFAULT_LISTEN, "main")
        );
        assert!(c.repo.ends_with("fleet.git"));
        assert_eq!(c.reads_per_second, DEFAULT_READS_PER_SECOND);
        assert!(!format!("{c:?}").contains("whsec_new"));
        assert!(!format!("{c:?}").contains("rk_test_reader"));
        Ok(())
    }

    #[test]
    fn inline_secrets_missing_keys_and_api_keys_are_all_reported() {
        let text = "webhook:\n  secret: whsec_inline\nmaxBatch: 0\n";
        let Err(e) = load(text, &[("STRIPE_WEBHOOK_SECRET", "sk_live_oops")]) else {
            panic!("the configuration should be refused");
        };
        let shown = e.to_string();
        for part in [
            "webhook.secret",
            "secrets never go in the config file",
            "`repo`: is required",
            "`mapping`: is required",
            "maxBatch",
            "not a webhook signing secret",
            "STRIPE_API_KEY is not set",
        ] {
            assert!(shown.contains(part), "{part} missing from:\n{shown}");
        }
        assert!(!shown.contains("sk_live_oops") && !shown.contains("whsec_inline"));
    }
}
