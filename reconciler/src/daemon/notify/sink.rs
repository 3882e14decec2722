//! Delivering one notification to one sink: `POST` its body, retrying with doubling backoff
//! when the failure may pass (no answer, a 5xx, 408, 429), never when the receiver rejects it.
//! A sink's URL is a secret (a Slack webhook URL is its own credential): errors and logs name
//! only the sink's kind and host.

use super::event::Event;
use crate::daemon::config::{SinkConfig, SinkFormat};
use crate::secret::Secret;
use std::time::Duration;

/// The first wait before a retry; each further one doubles, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a notification did not arrive.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The receiver answered with a status that retrying will not change.
    #[error(
        "{sink} rejected the `{event}` notification with HTTP {status}; check the sink's URL and what it accepts"
    )]
    Rejected {
        /// The sink (kind and host).
        sink: String,
        /// The event name.
        event: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// Every attempt failed for a reason that might have passed.
    #[error(
        "{sink} did not take the `{event}` notification after {attempts} attempt(s); the last: {last}"
    )]
    GaveUp {
        /// The sink (kind and host).
        sink: String,
        /// The event name.
        event: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last failure, without the URL.
        last: String,
    },
}

/// One configured sink, ready to deliver.
#[derive(Debug, Clone)]
pub struct Sink {
    format: SinkFormat,
    url: Secret<String>,
    client: reqwest::Client,
    retries: u32,
    first_backoff: Duration,
}

impl Sink {
    /// A sink from its configuration; each attempt may take `timeout`, failures that may pass
    /// are retried `retries` times.
    ///
    /// # Errors
    /// The HTTP client cannot be built (no TLS backend).
    pub fn new(
        config: &SinkConfig,
        timeout: Duration,
        retries: u32,
    ) -> Result<Sink, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Sink {
            format: config.format,
            url: config.url.clone(),
            client,
            retries,
            first_backoff: FIRST_BACKOFF,
        })
    }

    /// The same sink waiting `first` before its first retry (tests use milliseconds).
    pub fn with_first_backoff(mut self, first: Duration) -> Sink {
        self.first_backoff = first;
        self
    }

    /// The sink in words for logs and errors: its kind and host, never its URL.
    pub fn describe(&self) -> String {
        let kind = match self.format {
            SinkFormat::Json => "the notification webhook",
            SinkFormat::Slack => "the Slack webhook",
        };
        let host = reqwest::Url::parse(self.url.expose())
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "(unparsable URL)".to_owned());
        format!("{kind} at {host}")
    }

    /// Sends `event`; returns the attempts it took.
    ///
    /// # Errors
    /// [`SinkError::Rejected`] on a 4xx other than 408/429; [`SinkError::GaveUp`] when every
    /// attempt failed otherwise.
    pub async fn deliver(&self, event: &Event) -> Result<u32, SinkError> {
        let body = match self.format {
            SinkFormat::Json => event.to_json(),
            SinkFormat::Slack => event.to_slack(),
        };
        let mut backoff = self.first_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = match self.client.post(self.url.expose()).json(&body).send().await {
                Ok(r) if r.status().is_success() => return Ok(attempt),
                Ok(r) if !retryable(r.status()) => {
                    return Err(SinkError::Rejected {
                        sink: self.describe(),
                        event: event.name(),
                        status: r.status().as_u16(),
                    });
                }
                Ok(r) => format!("HTTP {}", r.status().as_u16()),
                Err(e) => crate::cloud::transport::describe(&e.without_url()),
            };
            if attempt > self.retries {
                return Err(SinkError::GaveUp {
                    sink: self.describe(),
                    event: event.name(),
                    attempts: attempt,
                    last,
                });
            }
            tracing::warn!(sink = %self.describe(), event = event.name(), attempt, reason = %last, "notification not taken; retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Whether a failed delivery with this status may succeed later.
fn retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::notify::event::{Change, Condition, Key};
    use axum::extract::State;
    use axum::http::StatusCode;
    use std::sync::{Arc, Mutex};

    /// A receiver on 127.0.0.1 that answers each request with the next status of `answers`
    /// (then 200) and keeps the bodies.
    struct Receiver {
        url: String,
        bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    }

    type Shared = (Arc<Mutex<Vec<u16>>>, Arc<Mutex<Vec<serde_json::Value>>>);

    async fn take(
        State((answers, bodies)): State<Shared>,
        axum::Json(body): axum::Json<serde_json::Value>,
    ) -> StatusCode {
        bodies.lock().expect("lock").push(body);
        let mut answers = answers.lock().expect("lock");
        let code = if answers.is_empty() {
            200
        } else {
            answers.remove(0)
        };
        StatusCode::from_u16(code).expect("status")
    }

    async fn receiver(answers: &[u16]) -> Receiver {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let state: Shared = (Arc::new(Mutex::new(answers.to_vec())), bodies.clone());
        let app = axum::Router::new()
            .route("/hook/T000/B000/XXXX", axum::routing::post(take))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/hook/T000/B000/XXXX",
            listener.local_addr().expect("addr")
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, bodies }
    }

    fn sink(url: &str, format: SinkFormat, retries: u32) -> Sink {
        let config = SinkConfig {
            format,
            url: Secret::new(url.to_owned()),
        };
        Sink::new(&config, Duration::from_secs(5), retries)
            .expect("client")
            .with_first_backoff(Duration::from_millis(1))
    }

    fn event() -> Event {
        Event {
            change: Change::Opened,
            key: Key::agent(Condition::Failed, "acme-prod"),
            reason: "create acme-prod: server type cpx21 unavailable".into(),
            since: "2026-11-29T14:00:00Z".into(),
            fleet: "aura-prod".into(),
            revision: None,
            time: "2026-11-29T14:00:00Z".into(),
        }
    }

    #[tokio::test]
    async fn a_json_notification_arrives_after_a_transient_failure() {
        let r = receiver(&[503]).await;
        let attempts = sink(&r.url, SinkFormat::Json, 3)
            .deliver(&event())
            .await
            .expect("delivered");
        assert_eq!(attempts, 2);
        let bodies = r.bodies.lock().expect("lock").clone();
        assert_eq!(bodies.len(), 2);
        assert_eq!(bodies[1]["event"], "failed");
        assert_eq!(bodies[1]["agent"], "acme-prod");
    }

    #[tokio::test]
    async fn a_slack_notification_carries_only_text() {
        let r = receiver(&[]).await;
        sink(&r.url, SinkFormat::Slack, 0)
            .deliver(&event())
            .await
            .expect("delivered");
        let bodies = r.bodies.lock().expect("lock").clone();
        let object = bodies[0].as_object().expect("object");
        assert_eq!(object.keys().collect::<Vec<_>>(), ["text"]);
    }

    #[tokio::test]
    async fn a_rejection_is_not_retried_and_the_error_hides_the_url() {
        let r = receiver(&[404]).await;
        let e = sink(&r.url, SinkFormat::Slack, 3)
            .deliver(&event())
            .await
            .expect_err("rejected");
        assert_eq!(r.bodies.lock().expect("lock").len(), 1, "one attempt");
        let text = e.to_string();
        assert!(
            text.contains("HTTP 404") && text.contains("127.0.0.1"),
            "{text}"
        );
        assert!(
            !text.contains("XXXX"),
            "the URL's secret path leaked: {text}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_sink_gives_up_after_its_retries_without_naming_the_url() {
        // Bound but never listening, and held for the whole test: connections are refused and
        // nothing else can take the port.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("bind 127.0.0.1:0");
        let port = socket.local_addr().expect("addr").port();
        let url = format!("http://127.0.0.1:{port}/hook/T000/B000/XXXX");
        let e = sink(&url, SinkFormat::Json, 2)
            .deliver(&event())
            .await
            .expect_err("unreachable");
        let text = e.to_string();
        assert!(text.contains("after 3 attempt(s)"), "{text}");
        assert!(!text.contains("XXXX"), "{text}");
    }
}
