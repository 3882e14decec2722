//! The demo's Stripe chapter: the emulated Stripe sends signed webhooks to an in-process
//! `tether billing serve` receiver; a sign-up makes a VM, and a cancellation that overtakes a
//! delayed update and a retried sign-up leaves nothing re-created.

use super::{Demo, DemoError, setup, step};
use crate::billing::serve::http::Receiver;
use crate::billing::serve::mapping::Mapping;
use crate::billing::serve::metrics::BillingMetrics;
use crate::billing::serve::queue::{Destination, Queue, Source};
use crate::billing::serve::read::Reader;
use crate::billing::serve::signature::DEFAULT_TOLERANCE;
use crate::billing::stripe::{API_KEY_ENV, API_URL_ENV, StripeApi};
use crate::secret::Secret;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tether_emulators::Token;
use tether_emulators::stripe::{Event, StripeEmulator, WebhookSender};

const MAPPING: &str = "statuses: {active: present, trialing: present, past_due: present, unpaid: off, paused: off, canceled: absent, incomplete: absent, incomplete_expired: absent}\nprices:\n  - {lookupKey: starter_monthly, plan: starter, type: cpx11, location: hel1, runtime: 1.4.2}\n";

impl<W: Write> Demo<'_, W> {
    /// Chapter `n`: Stripe webhooks through the receiver.
    pub(super) async fn stripe(&mut self, n: u32) -> Result<(), DemoError> {
        self.heading(
            n,
            "Stripe: a sign-up makes a VM; a cancellation overtakes a delayed update and a retried sign-up (tether billing serve)",
        );
        let stripe = StripeEmulator::start(Token::from("sk_test_demo"))
            .await
            .map_err(setup)?;
        let secret = Secret::from("whsec_demo");
        let metrics = Arc::new(BillingMetrics::default());
        let destination = Destination {
            repo: self.repo.clone(),
            branch: "main".to_owned(),
            push: None,
            identity: self.identity.clone(),
            trigger: None,
        };
        let url = stripe.url();
        let api = StripeApi::from_env(&|var| match var {
            API_KEY_ENV => Some("sk_test_demo".to_owned()),
            API_URL_ENV => Some(url.clone()),
            _ => None,
        })
        .map_err(setup)?;
        let source = Source {
            reader: Reader::new(api, 50),
            mapping: Mapping::parse(Path::new("mapping.yaml"), MAPPING).map_err(setup)?,
        };
        let receiver = Arc::new(Receiver::new(
            vec![secret.clone()],
            DEFAULT_TOLERANCE,
            Queue::spawn(destination, 250, source, metrics.clone()),
            metrics,
            Duration::from_secs(10),
            Arc::new(SystemTime::now),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(setup)?;
        let endpoint = format!("http://{}/stripe", listener.local_addr().map_err(setup)?);
        let app = receiver.router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        self.say(&format!(
            "tether billing serve  {endpoint}   Stripe API  {}",
            stripe.url()
        ));
        let sender = WebhookSender::new(&endpoint, Token::new(secret.expose().clone()));

        let signup = stripe.sign_up("cus_initech", "starter_monthly");
        let sub = signup.subscription.clone();
        let agent = crate::billing::default_name(&sub);
        self.deliver(&sender, &signup, "applied").await?;
        self.apply("apply after a Stripe sign-up").await?;
        self.say(&format!("{agent} exists: {}", self.has_server(&agent)));

        let delayed = stripe
            .set_status(&sub, "past_due")
            .ok_or_else(|| setup("the emulated subscription vanished"))?;
        self.say(&format!(
            "(Stripe's delivery of {} — {} — is delayed)",
            delayed.id, delayed.kind
        ));
        let cancel = stripe
            .cancel(&sub)
            .ok_or_else(|| setup("the emulated subscription vanished"))?;
        self.deliver(&sender, &cancel, "applied").await?;
        self.deliver(&sender, &delayed, "stale").await?;
        self.deliver(&sender, &signup, "duplicate").await?;
        self.apply("apply after the cancellation").await?;
        self.say(&format!(
            "{agent} exists: {} (nothing re-created)",
            self.has_server(&agent)
        ));
        server.abort();
        Ok(())
    }

    async fn deliver(
        &mut self,
        sender: &WebhookSender,
        event: &Event,
        expected: &str,
    ) -> Result<(), DemoError> {
        let (status, body) = sender
            .deliver(event)
            .await
            .map_err(step("stripe webhook"))?;
        let outcome = body["status"].as_str().unwrap_or("error");
        let detail = match (body["commit"].as_str(), body["last"].as_str()) {
            (Some(commit), _) => format!(", commit {}", commit.get(..7).unwrap_or(commit)),
            (_, Some(last)) => format!(", {last} was newer"),
            _ => String::new(),
        };
        self.say(&format!(
            "$ stripe → POST /stripe {} {} ({})\n  {status} {outcome}{detail}",
            event.kind, event.id, event.subscription
        ));
        if outcome != expected {
            return Err(DemoError::Step {
                step: "stripe webhook",
                message: format!(
                    "{} answered {status} {body}, expected `{expected}`",
                    event.id
                ),
            });
        }
        Ok(())
    }

    fn has_server(&self, name: &str) -> &'static str {
        if self.stack.hetzner.servers().iter().any(|s| s.name == name) {
            "yes"
        } else {
            "no"
        }
    }
}
