//! `tether billing serve`: the Stripe webhook receiver (see `docs/billing.md`).

use super::common::{self, LogFormat};
use super::{CliError, Outcome};
use crate::billing::serve::{self, config::BillingConfig};
use crate::process::shutdown;
use std::path::PathBuf;

/// Billing integrations that write the fleet repository.
#[derive(Debug, clap::Args)]
pub struct BillingArgs {
    #[command(subcommand)]
    command: BillingCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BillingCommand {
    Serve(ServeArgs),
}

/// Receive Stripe subscription webhooks and commit each change to the fleet branch: verified,
/// mapped, ordered per subscription, idempotent, batched. Serves POST /stripe, /healthz and
/// /metrics until SIGTERM or SIGINT.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The receiver's configuration file (YAML; see docs/billing.md). The endpoint secret
    /// comes only from STRIPE_WEBHOOK_SECRET or a file the configuration names.
    #[arg(long, value_name = "FILE", env = "TETHER_BILLING_CONFIG")]
    config: PathBuf,
    /// Log lines as JSON.
    #[arg(long)]
    log_json: bool,
}

/// Runs `tether billing ...`.
///
/// # Errors
/// The configuration or mapping is invalid, the fleet repository unusable, or the address
/// cannot be bound.
pub fn cmd_billing(args: &BillingArgs) -> Result<Outcome, CliError> {
    let BillingCommand::Serve(args) = &args.command;
    let config =
        BillingConfig::load(&args.config, &|var| std::env::var(var).ok()).map_err(|e| {
            CliError::failed(
                e.to_string(),
                "fix every problem listed; docs/billing.md describes each key",
            )
        })?;
    common::init_logging(
        if args.log_json {
            LogFormat::Json
        } else {
            LogFormat::Text
        },
        "info",
    );
    common::runtime()?.block_on(async move {
        let (trigger, signal) = shutdown::channel();
        shutdown::on_os_signals(trigger).map_err(|e| {
            CliError::failed(
                format!("cannot listen for SIGTERM/SIGINT: {e}"),
                "check the process's signal handling",
            )
        })?;
        let running = serve::start(config, signal).await.map_err(|e| {
            CliError::failed(
                e.to_string(),
                "check the configuration's repo, branch, mapping and listen",
            )
        })?;
        println!("listening on {}", running.url());
        running.stopped().await.map_err(|e| {
            CliError::failed(
                format!("the billing receiver failed: {e}"),
                "see the log above",
            )
        })?;
        Ok(Outcome::Success)
    })
}
