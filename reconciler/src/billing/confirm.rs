//! The I/O half of `spec.policy.confirmDeletes: stripe`: before planning, ask Stripe's API
//! (`GET /v1/subscriptions/{id}`) about the subscription of every server whose agent spec is
//! gone, so the pure planner can delete only those whose subscription really ended. Start at
//! [`confirmations`].
//!
//! # Guarantees
//! - Only `canceled` and `incomplete_expired` confirm an end. Any other status, an id Stripe
//!   does not know (404: maybe another account or mode), a missing key and a failed lookup all
//!   keep the server, with the reason in the plan's notes; the next pass asks again.
//! - The API key is read from `STRIPE_API_KEY` or the file `STRIPE_API_KEY_FILE` names, sent
//!   only to the API, and never logged.

use crate::plan::Observed;
use crate::plan::confirm::{Confirmation, subscriptions_to_confirm};
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::time::Duration;
use tether_schema::Fleet;

/// The API base URL unless `STRIPE_API_URL` says otherwise.
pub const DEFAULT_API_URL: &str = "https://api.stripe.com";
/// The variable naming another API base URL (the sandbox's emulator).
pub const API_URL_ENV: &str = "STRIPE_API_URL";
/// The variable holding the secret (or restricted, read-only) API key.
pub const API_KEY_ENV: &str = "STRIPE_API_KEY";
/// The variable naming a file holding the key.
pub const API_KEY_FILE_ENV: &str = "STRIPE_API_KEY_FILE";

/// Stripe's subscription lookup.
#[derive(Debug, Clone)]
pub struct StripeApi {
    base: String,
    key: Secret<String>,
    client: reqwest::Client,
}

impl StripeApi {
    /// From the environment read through `env`; the reason when no key is given.
    ///
    /// # Errors
    /// No key, or the key file cannot be read.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<StripeApi, String> {
        let key = match (env(API_KEY_ENV), env(API_KEY_FILE_ENV)) {
            (Some(key), _) if !key.trim().is_empty() => key.trim().to_owned(),
            (_, Some(path)) => std::fs::read_to_string(&path)
                .map(|k| k.trim().to_owned())
                .map_err(|e| {
                    format!("{API_KEY_FILE_ENV} names `{path}`, which cannot be read: {e}")
                })?,
            _ => {
                return Err(format!(
                    "{API_KEY_ENV} is not set, so Stripe cannot be asked; set it (a restricted key with read access to subscriptions is enough)"
                ));
            }
        };
        let base = env(API_URL_ENV).unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(StripeApi {
            base: base.trim_end_matches('/').to_owned(),
            key: Secret::new(key),
            client,
        })
    }

    /// What Stripe says about `subscription`.
    pub async fn confirm(&self, subscription: &str) -> Confirmation {
        let url = format!("{}/v1/subscriptions/{subscription}", self.base);
        let response = match self
            .client
            .get(&url)
            .bearer_auth(self.key.expose())
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Confirmation::NotEnded(format!(
                    "the Stripe lookup failed: {}",
                    e.without_url()
                ));
            }
        };
        let status = response.status();
        if status == http::StatusCode::NOT_FOUND {
            return classify(None);
        }
        if !status.is_success() {
            return Confirmation::NotEnded(format!(
                "the Stripe lookup answered HTTP {}",
                status.as_u16()
            ));
        }
        match response.json::<serde_json::Value>().await {
            Ok(body) => classify(body["status"].as_str()),
            Err(e) => Confirmation::NotEnded(format!(
                "the Stripe answer is unreadable: {}",
                e.without_url()
            )),
        }
    }
}

/// A subscription status (or `None` for an id Stripe does not know) as a confirmation.
pub fn classify(status: Option<&str>) -> Confirmation {
    match status {
        Some("canceled" | "incomplete_expired") => Confirmation::Ended,
        Some(other) => Confirmation::NotEnded(format!("Stripe says it is `{other}`")),
        None => Confirmation::NotEnded(
            "Stripe does not know it: check that the API key is of the account and mode that billed it; delete the server by hand if it should go".to_owned(),
        ),
    }
}

/// What Stripe says about every subscription the plan needs confirmed (none unless the fleet
/// has `spec.policy.confirmDeletes: stripe`), with the API from the process environment.
pub async fn confirmations(fleet: &Fleet, observed: &Observed) -> BTreeMap<String, Confirmation> {
    let wanted = subscriptions_to_confirm(fleet, observed);
    if wanted.is_empty() {
        return BTreeMap::new();
    }
    let api = match StripeApi::from_env(&|var| std::env::var(var).ok()) {
        Ok(api) => api,
        Err(why) => {
            tracing::warn!(reason = %why, "deletes need Stripe's confirmation; none asked");
            return wanted
                .into_iter()
                .map(|s| (s, Confirmation::NotEnded(why.clone())))
                .collect();
        }
    };
    let mut out = BTreeMap::new();
    for sub in wanted {
        let confirmation = api.confirm(&sub).await;
        tracing::info!(subscription = %sub, ended = confirmation == Confirmation::Ended, "asked Stripe whether a removed agent's subscription ended");
        out.insert(sub, confirmation);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_emulators::stripe::StripeEmulator;

    #[test]
    fn only_an_ended_status_confirms() {
        assert_eq!(classify(Some("canceled")), Confirmation::Ended);
        assert_eq!(classify(Some("incomplete_expired")), Confirmation::Ended);
        for status in [
            Some("active"),
            Some("past_due"),
            Some("unpaid"),
            Some("paused"),
            None,
        ] {
            assert!(
                matches!(classify(status), Confirmation::NotEnded(_)),
                "{status:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_lookup_reads_the_emulated_subscription_and_never_needs_a_guess() {
        let stripe = StripeEmulator::start(tether_emulators::Token::from("sk_test_k"))
            .await
            .expect("start");
        let sub = stripe.sign_up("cus_1", "pro_monthly").subscription;
        let url = stripe.url();
        let env = |var: &str| match var {
            API_KEY_ENV => Some("sk_test_k".to_owned()),
            API_URL_ENV => Some(url.clone()),
            _ => None,
        };
        let api = StripeApi::from_env(&env).expect("configured");
        assert!(
            matches!(api.confirm(&sub).await, Confirmation::NotEnded(why) if why.contains("`active`"))
        );
        stripe.cancel(&sub);
        assert_eq!(api.confirm(&sub).await, Confirmation::Ended);
        assert!(
            matches!(api.confirm("sub_unknown").await, Confirmation::NotEnded(why) if why.contains("does not know"))
        );
        let wrong = StripeApi::from_env(&|var| match var {
            API_KEY_ENV => Some("sk_test_wrong".to_owned()),
            API_URL_ENV => Some(url.clone()),
            _ => None,
        })
        .expect("configured");
        assert!(
            matches!(wrong.confirm(&sub).await, Confirmation::NotEnded(why) if why.contains("401"))
        );
        assert!(
            StripeApi::from_env(&|_| None)
                .is_err_and(|why| why.contains("STRIPE_API_KEY is not set"))
        );
    }
}
