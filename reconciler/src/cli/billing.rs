//! `tether billing serve` (the Stripe webhook receiver) and `tether billing sync` (the
//! periodic reconciliation with Stripe's list of subscriptions); see `docs/billing.md`.

use super::common::{self, LogFormat};
use super::{CliError, Outcome};
use crate::billing::Target;
use crate::billing::serve::mapping::Mapping;
use crate::billing::serve::queue::Outcome as EventOutcome;
use crate::billing::serve::{self, config::BillingConfig, sync};
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
    Sync(SyncArgs),
}

/// Compare every subscription Stripe lists (every status) with the fleet's specs and correct
/// those that differ in one commit, as the receiver would write them: catches webhooks that
/// were never delivered. Prints each correction; `--dry-run` changes nothing.
#[derive(Debug, clap::Args)]
struct SyncArgs {
    /// The receiver's configuration file (repo, branch, push, mapping, author); the Stripe key
    /// comes from STRIPE_API_KEY or STRIPE_API_KEY_FILE.
    #[arg(long, value_name = "FILE", env = "TETHER_BILLING_CONFIG")]
    config: PathBuf,
    /// Show what would change and change nothing.
    #[arg(long)]
    dry_run: bool,
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
    let args = match &args.command {
        BillingCommand::Serve(args) => args,
        BillingCommand::Sync(args) => return cmd_sync(args),
    };
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

/// Runs `tether billing sync`.
fn cmd_sync(args: &SyncArgs) -> Result<Outcome, CliError> {
    let config = BillingConfig::load_for_sync(&args.config, &|var| std::env::var(var).ok())
        .map_err(|e| {
            CliError::failed(
                e.to_string(),
                "fix every problem listed; docs/billing.md describes each key",
            )
        })?;
    let mapping = Mapping::load(&config.mapping)
        .map_err(|e| CliError::failed(e.to_string(), "fix the price mapping"))?;
    let now = crate::billing::serve::signature::unix(std::time::SystemTime::now());
    let listed = common::runtime()?
        .block_on(sync::list_all(&config.stripe))
        .map_err(|e| {
            CliError::failed(
                format!("{e}; nothing was changed"),
                "check STRIPE_API_KEY and STRIPE_API_URL, then run again",
            )
        })?;
    let target = Target {
        repo: &config.repo,
        branch: &config.branch,
        base: None,
        push: config.push.as_deref(),
        identity: &config.identity,
    };
    let fail = |e: &dyn std::fmt::Display| {
        CliError::failed(e.to_string(), "check the fleet repository and branch")
    };
    let plan = sync::plan(&target, &mapping, listed, now).map_err(|e| fail(&e))?;
    println!(
        "{} subscription(s) listed by Stripe, {} spec(s) to correct",
        plan.listed,
        plan.corrections.len()
    );
    for c in &plan.corrections {
        println!("  {c}");
    }
    for u in &plan.unmapped {
        println!("  left as it is: {u}");
    }
    for sub in &plan.unknown {
        println!("  left as it is: subscription {sub} has a spec but Stripe does not list it");
    }
    if args.dry_run {
        println!("dry run: nothing was changed");
        return Ok(Outcome::Success);
    }
    let mut refused = false;
    for (c, outcome) in sync::apply(&target, &plan).map_err(|e| fail(&e))? {
        match outcome {
            EventOutcome::Applied { commit } => println!("corrected {} in {commit}", c.path),
            other => {
                refused = true;
                println!("not corrected {}: {other:?}", c.path);
            }
        }
    }
    if refused {
        return Err(CliError::failed(
            "some specs were not corrected (listed above)".to_owned(),
            "fix what each names and run again",
        ));
    }
    Ok(Outcome::Success)
}
