//! The `tether` command line: argument types and dispatch. One file per subcommand; each
//! returns an [`Outcome`] or a [`CliError`], and [`main`] alone turns those into output and an
//! exit code.

mod agent;
mod apply;
mod approve;
mod audit;
mod billing;
mod common;
mod error;
mod github;
mod lease;
mod plan;
mod prhead;
mod reconcile;
mod run;
mod sandbox;
mod schema;
mod validate;

use clap::{Parser, Subcommand};
pub use error::{CliError, Outcome};
use std::process::ExitCode;

/// tether: keeps a fleet of agent VMs on Hetzner Cloud and Tailscale in line with a git repository.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Validate(validate::ValidateArgs),
    Plan(plan::PlanArgs),
    Apply(apply::ApplyArgs),
    Run(run::RunArgs),
    Reconcile(reconcile::ReconcileArgs),
    Agent(Box<agent::AgentArgs>),
    Audit(audit::AuditArgs),
    Billing(billing::BillingArgs),
    Schema(schema::SchemaArgs),
    Sandbox(sandbox::SandboxArgs),
}

/// Output format for commands that can speak to machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For machines: one JSON document on stdout.
    Json,
}

/// Parses the process arguments, runs the subcommand and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { error::EXIT_USAGE } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Validate(args) => validate::cmd_validate(&args),
        Command::Plan(args) => plan::cmd_plan(&args),
        Command::Apply(args) => apply::cmd_apply(&args),
        Command::Run(args) => run::cmd_run(&args),
        Command::Reconcile(args) => reconcile::cmd_reconcile(&args),
        Command::Agent(args) => agent::cmd_agent(&args),
        Command::Audit(args) => audit::cmd_audit(&args),
        Command::Billing(args) => billing::cmd_billing(&args),
        Command::Schema(args) => schema::cmd_schema(&args),
        Command::Sandbox(args) => sandbox::cmd_sandbox(&args),
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}
