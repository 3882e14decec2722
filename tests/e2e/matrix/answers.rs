//! The answers a fault gives in place of the provider's: a 503 for a call that is not sent, and a
//! timeout for one that was sent and applied but whose answer is lost, for each client's error
//! type.

use std::future::Future;
use std::time::Duration;
use tether::cloud::{hetzner, tailscale};

/// How one provider's client fails: an error answer, and a lost answer.
pub struct Faults<E> {
    /// The 503 an unsent call gets.
    pub error: Box<dyn Fn() -> E + Send + Sync>,
    /// The timeout a sent call gets instead of its answer.
    pub lost: Box<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = E> + Send>> + Send + Sync>,
}

/// The Hetzner client's faults for `operation`.
pub fn hetzner_faults(operation: String) -> Faults<hetzner::Error> {
    let lost = operation.clone();
    Faults {
        error: Box::new(move || {
            hetzner::Error::Api(Box::new(hetzner::ApiError {
                operation: operation.clone(),
                status: 503,
                code: "unavailable".into(),
                message: "injected: the service is unavailable".into(),
                details: serde_json::Value::Null,
                correlation_id: None,
                retry_at: None,
            }))
        }),
        lost: Box::new(move || {
            let operation = lost.clone();
            Box::pin(async move {
                hetzner::Error::Transport {
                    operation,
                    kind: hetzner::TransportKind::Timeout,
                    message: "injected: the answer never came".into(),
                }
            })
        }),
    }
}

/// The Tailscale client's faults for `operation`.
pub fn tailscale_faults(operation: String) -> Faults<tailscale::Error> {
    let lost = operation.clone();
    Faults {
        error: Box::new(move || tailscale::Error::Api {
            operation: operation.clone(),
            status: 503,
            message: "injected: the service is unavailable".into(),
            retry_at: None,
        }),
        lost: Box::new(move || {
            let operation = lost.clone();
            Box::pin(async move {
                tailscale::Error::Transport {
                    operation,
                    source: timeout().await,
                }
            })
        }),
    }
}

/// A real `reqwest` timeout after the connection was made (the request may have applied): a
/// request to a listener that accepts connections and never answers.
async fn timeout() -> reqwest::Error {
    static SILENT: std::sync::OnceLock<std::net::TcpListener> = std::sync::OnceLock::new();
    let listener = SILENT.get_or_init(|| {
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind a silent listener")
    });
    let url = format!("http://{}/", listener.local_addr().expect("silent address"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .expect("reqwest client");
    let error = client
        .get(url)
        .send()
        .await
        .expect_err("the silent listener never answers");
    assert!(
        error.is_timeout() && !error.is_connect(),
        "a timeout after connecting: {error:?}"
    );
    error
}
