//! `tether-agent`: the on-VM agent cloud-init installs. See `tether::agent_client`.

use std::process::ExitCode;
use tether::agent_client::{self, Client, config::AgentConfig, systemd::SystemdApplier};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_target(false).init();
    let config = match AgentConfig::from_env(|k| std::env::var(k).ok()) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "tether-agent cannot start");
            return ExitCode::from(2);
        }
    };
    let credential = match config.credential() {
        Ok(credential) => credential,
        Err(e) => {
            tracing::error!(error = %e, "tether-agent cannot start");
            return ExitCode::from(2);
        }
    };
    let applier = SystemdApplier {
        install: std::env::var("TETHER_RUNTIME_INSTALL").ok(),
        ..SystemdApplier::default()
    };
    let client = Client::new(&config.url, &config.name, credential);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop_tx.send(true);
        }
    });
    agent_client::run(&client, &applier, None, stop).await;
    ExitCode::SUCCESS
}
