//! One delivery attempt: the event's CloudEvent `POST`ed to the endpoint with its
//! `Tether-Signature` ([`post`]), and the wait before the next attempt ([`backoff`]).

use crate::daemon::config::EventsEndpoint;
use crate::events::{LifecycleEvent, signature};
use std::time::Duration;

/// Why an attempt failed. Never carries the endpoint's URL or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// No answer: refused, reset, timed out.
    #[error("no answer from the endpoint: {0}")]
    Unreachable(String),
    /// The endpoint answered, but not with a 2xx.
    #[error("the endpoint answered HTTP {0}")]
    Status(u16),
}

/// `POST`s `event` to `endpoint`, signed at `timestamp` (UNIX seconds). Any 2xx is success;
/// anything else is retried by the caller (a receiver that refuses an event it cannot verify
/// gets it again after its secret is fixed, until `events.giveUpAfter`).
///
/// # Errors
/// See [`PostError`].
pub async fn post(
    client: &reqwest::Client,
    endpoint: &EventsEndpoint,
    event: &LifecycleEvent,
    timestamp: i64,
) -> Result<(), PostError> {
    let body = event.body();
    let header = signature::sign(&endpoint.secrets, timestamp, &body);
    let response = client
        .post(endpoint.url.expose())
        .timeout(endpoint.timeout)
        .header(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )
        .header(signature::HEADER, header)
        .body(body)
        .send()
        .await
        .map_err(|e| PostError::Unreachable(e.without_url().to_string()))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(PostError::Status(status.as_u16()))
    }
}

/// The wait after the `attempts`-th failed attempt in a row: `first`, doubled each time, at
/// most `max`.
pub fn backoff(attempts: u32, first: Duration, max: Duration) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    first.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_the_first_up_to_the_cap() {
        let s = Duration::from_secs;
        let waits: Vec<Duration> = (1..=8).map(|n| backoff(n, s(1), s(60))).collect();
        assert_eq!(waits, [s(1), s(2), s(4), s(8), s(16), s(32), s(60), s(60)]);
        assert_eq!(backoff(200, s(1), s(3600)), s(3600));
    }
}
