//! `tether run`: the daemon. Configuration in `docs/operations.md`.

use super::common::{self, LogFormat};
use super::{CliError, Outcome};
use crate::daemon::config::{self, DaemonConfig};
use crate::daemon::run;
use crate::process::shutdown;
use std::path::PathBuf;

/// Reconcile continuously: on a schedule, on every push (webhook) and on every local edit,
/// holding the fleet's single-writer lease; serves /healthz, /readyz, /metrics and /webhook.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The daemon's configuration file (YAML; see docs/operations.md). Secrets come only from
    /// the environment or from files it names.
    #[arg(long, value_name = "FILE", env = "TETHER_CONFIG", default_value = config::DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Print the effective configuration (file, defaults and environment; secrets redacted)
    /// and exit.
    #[arg(long)]
    print_config: bool,
}

/// Runs `tether run` until SIGTERM or SIGINT.
///
/// # Errors
/// The configuration is invalid, or the daemon cannot start.
pub fn cmd_run(args: &RunArgs) -> Result<Outcome, CliError> {
    let config = DaemonConfig::from_file_and_process_env(&args.config).map_err(|e| {
        let hint = match &e {
            config::ConfigError::Read { .. } => "pass --config with a readable file",
            config::ConfigError::Invalid { .. } => {
                "fix every problem listed; docs/operations.md describes each key"
            }
        };
        CliError::failed(e.to_string(), hint)
    })?;
    if args.print_config {
        println!(
            "# {} with defaults and environment applied",
            args.config.display()
        );
        print!("{}", config.to_yaml());
        return Ok(Outcome::Success);
    }
    let format = match config.log_format {
        config::LogFormat::Json => LogFormat::Json,
        config::LogFormat::Text => LogFormat::Text,
    };
    common::init_logging(format, "info");
    common::runtime()?.block_on(async move {
        let (trigger, _signal) = shutdown::channel();
        shutdown::on_os_signals(trigger.clone()).map_err(|e| {
            CliError::failed(
                format!("cannot listen for SIGTERM/SIGINT: {e}"),
                "check the process's signal handling",
            )
        })?;
        run::run(config, trigger, None).await.map_err(|e| {
            CliError::failed(
                e.to_string(),
                "check the configuration and that the listen address is free",
            )
        })?;
        Ok(Outcome::Success)
    })
}
