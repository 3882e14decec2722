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

use super::stripe::ReadError;
use crate::plan::Observed;
use crate::plan::confirm::{Confirmation, subscriptions_to_confirm};
use std::collections::BTreeMap;
use tether_schema::Fleet;

pub use super::stripe::{API_KEY_ENV, API_KEY_FILE_ENV, API_URL_ENV, DEFAULT_API_URL, StripeApi};

impl StripeApi {
    /// What Stripe says about `subscription`.
    pub async fn confirm(&self, subscription: &str) -> Confirmation {
        match self.retrieve(subscription).await {
            Ok(body) => classify(body["status"].as_str()),
            Err(ReadError::Unknown { .. }) => classify(None),
            Err(e) => Confirmation::NotEnded(format!("the Stripe lookup failed: {e}")),
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
