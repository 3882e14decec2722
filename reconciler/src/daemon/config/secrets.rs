//! The configuration's secrets: each read from an environment variable or, failing that, from
//! a file named in the configuration (`*File` keys); never from the configuration itself.
//! Problems name the variable or key and the file, never the value.

use super::{Check, DEFAULT_WEBHOOK_SECRET_ENV, Origin, TailscaleAuth};
use crate::audit::signing::Signer;
use crate::secret::Secret;
use std::sync::Arc;

impl Check<'_> {
    /// The secret in environment variable `var`, else in the file named by `file_key`.
    /// `None` when neither is given, or when one is given and unusable (reported).
    pub(super) fn secret(&mut self, var: &str, file_key: &str) -> Option<Secret<String>> {
        if let Some(value) = (self.env)(var) {
            let value = value.trim_end_matches(['\n', '\r']);
            if value.trim().is_empty() {
                self.report(
                    var,
                    Some(Origin::Env(var.to_owned())),
                    "is set but empty".to_owned(),
                    format!("set {var} to the secret, or unset it"),
                );
                return None;
            }
            return Some(Secret::new(value.to_owned()));
        }
        let path = self.path(file_key)?;
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => {
                Some(Secret::new(text.trim_end_matches(['\n', '\r']).to_owned()))
            }
            Ok(_) => {
                let message = format!("`{}` is empty", path.display());
                self.bad(file_key, message, "write the secret into the file");
                None
            }
            Err(e) => {
                let message = format!("cannot read `{}`: {e}", path.display());
                self.bad(
                    file_key,
                    message,
                    "check the path and that tether may read it",
                );
                None
            }
        }
    }

    /// The key status commits are signed with: `signing.keyFile`, else the key in
    /// `TETHER_SIGNING_KEY`, else the file `TETHER_SIGNING_KEY_FILE` names.
    pub(super) fn signer(&mut self) -> Option<Arc<Signer>> {
        let path = self.path("signing.keyFile");
        Signer::configured(path.as_deref(), self.env).unwrap_or_else(|e| {
            self.bad(
                "signing.keyFile",
                e.to_string(),
                "name an OpenSSH private key without a passphrase, or remove the key to commit unsigned",
            );
            None
        })
    }

    /// Like [`Check::secret`], reporting its absence.
    pub(super) fn required_secret(&mut self, var: &str, file_key: &str) -> Option<Secret<String>> {
        let before = self.problems.len();
        let secret = self.secret(var, file_key);
        if secret.is_none() && self.problems.len() == before {
            self.report(
                var,
                Some(Origin::Env(var.to_owned())),
                "is not set".to_owned(),
                format!("set {var} in the environment, or put it in a file and set `{file_key}`"),
            );
        }
        secret
    }

    /// The webhook secret: required once the `webhook` section names where it is, else taken
    /// from `TETHER_WEBHOOK_SECRET` when that is set.
    pub(super) fn webhook_secret(&mut self) -> Option<Secret<String>> {
        let configured = self.text("webhook.secretEnv");
        let var = configured
            .clone()
            .unwrap_or_else(|| DEFAULT_WEBHOOK_SECRET_ENV.to_owned());
        let valid_name = !var.is_empty()
            && var
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !valid_name {
            self.bad(
                "webhook.secretEnv",
                format!("`{var}` is not an environment variable name"),
                "name the variable holding the secret, e.g. `TETHER_WEBHOOK_SECRET`",
            );
            return None;
        }
        if configured.is_some() || self.settings.contains_key("webhook.secretFile") {
            self.required_secret(&var, "webhook.secretFile")
        } else {
            self.secret(&var, "webhook.secretFile")
        }
    }

    /// `TS_API_KEY`, or the OAuth client `TS_OAUTH_CLIENT_ID` + `TS_OAUTH_CLIENT_SECRET`.
    pub(super) fn tailscale_auth(&mut self) -> Option<TailscaleAuth> {
        let before = self.problems.len();
        let api_key = self.secret("TS_API_KEY", "tailscale.apiKeyFile");
        let client_id = (self.env)("TS_OAUTH_CLIENT_ID").filter(|id| !id.trim().is_empty());
        let client_secret =
            self.secret("TS_OAUTH_CLIENT_SECRET", "tailscale.oauthClientSecretFile");
        let missing = |what: &str| (what.to_owned(), None);
        let (key, problem) = match (api_key, client_id, client_secret) {
            (Some(key), None, None) => return Some(TailscaleAuth::ApiKey(key)),
            (None, Some(client_id), Some(client_secret)) => {
                return Some(TailscaleAuth::OAuth {
                    client_id,
                    client_secret,
                });
            }
            (Some(_), _, _) => (
                "TS_API_KEY".to_owned(),
                Some("both an API key and an OAuth client are given; keep one"),
            ),
            (None, Some(_), None) => missing("TS_OAUTH_CLIENT_SECRET"),
            (None, None, Some(_)) => missing("TS_OAUTH_CLIENT_ID"),
            (None, None, None) => missing("TS_API_KEY"),
        };
        if self.problems.len() == before {
            let message = problem.map_or_else(|| "is not set".to_owned(), str::to_owned);
            self.report(
                &key,
                Some(Origin::Env(key.clone())),
                message,
                "set TS_API_KEY, or TS_OAUTH_CLIENT_ID and TS_OAUTH_CLIENT_SECRET (an OAuth client is preferred)".to_owned(),
            );
        }
        None
    }
}
