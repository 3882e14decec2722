//! The `tether` command line: argument types and dispatch. One file per subcommand; each
//! returns an [`Outcome`] or a [`CliError`], and [`main`] alone turns those into output and an
//! exit code (the table is in docs/operations.md). Colour goes through [`style`].

mod agent;
mod apply;
mod approve;
mod audit;
mod billing;
mod common;
mod completions;
mod error;
mod events;
mod github;
mod health;
mod lease;
mod man;
mod plan;
mod prhead;
mod reconcile;
mod run;
#[cfg(feature = "sandbox")]
mod sandbox;
mod schema;
mod status;
mod style;
mod validate;

use clap::{Parser, Subcommand};
pub use error::{CliError, Outcome};
use std::process::ExitCode;

/// tether: keeps a fleet of agent VMs on Hetzner Cloud and Tailscale in line with a git repository.
#[derive(Debug, Parser)]
#[command(name = "tether", version = VERSION, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// When to colour output: auto, always or never. auto colours a terminal, unless NO_COLOR
    /// is set; CLICOLOR_FORCE=1 colours a pipe too.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value = "auto",
        hide_possible_values = true
    )]
    color: style::ColorChoice,
    #[command(subcommand)]
    command: Command,
}

/// `0.1.0 (abc1234 2026-11-29)`: the version, the commit and its date (from build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("TETHER_BUILD_COMMIT"),
    ")"
);

#[derive(Debug, Subcommand)]
enum Command {
    Validate(validate::ValidateArgs),
    Plan(plan::PlanArgs),
    Apply(apply::ApplyArgs),
    Status(status::StatusArgs),
    Run(run::RunArgs),
    Reconcile(reconcile::ReconcileArgs),
    Health(health::HealthArgs),
    Agent(Box<agent::AgentArgs>),
    Audit(audit::AuditArgs),
    Events(events::EventsArgs),
    Billing(billing::BillingArgs),
    Schema(schema::SchemaArgs),
    #[cfg(feature = "sandbox")]
    Sandbox(sandbox::SandboxArgs),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
}

impl Command {
    /// Whether the command was asked for JSON (`--format json`), so that an error is JSON too.
    fn json(&self) -> bool {
        match self {
            Command::Validate(args) => args.json(),
            Command::Plan(args) => args.json(),
            Command::Audit(args) => args.json(),
            Command::Events(args) => args.json(),
            Command::Status(args) => args.json(),
            _ => false,
        }
    }
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
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match parse(&args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            if asks_for_json(&args) {
                let usage = CliError::from_clap(&e);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&usage.to_json()).unwrap_or_default()
                );
            }
            let _ = e.print();
            return ExitCode::from(error::EXIT_USAGE);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(error::EXIT_OK);
        }
    };
    let style = style::init(cli.color);
    let json = cli.command.json();
    let result = match cli.command {
        Command::Validate(args) => validate::cmd_validate(&args),
        Command::Plan(args) => plan::cmd_plan(&args),
        Command::Apply(args) => apply::cmd_apply(&args),
        Command::Status(args) => status::cmd_status(&args),
        Command::Run(args) => run::cmd_run(&args),
        Command::Reconcile(args) => reconcile::cmd_reconcile(&args),
        Command::Health(args) => health::cmd_health(&args),
        Command::Agent(args) => agent::cmd_agent(&args),
        Command::Audit(args) => audit::cmd_audit(&args),
        Command::Events(args) => events::cmd_events(&args),
        Command::Billing(args) => billing::cmd_billing(&args),
        Command::Schema(args) => schema::cmd_schema(&args),
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => sandbox::cmd_sandbox(&args),
        Command::Completions(args) => completions::cmd_completions(&args),
        Command::Man(args) => man::cmd_man(&args),
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&e.to_json()).unwrap_or_default()
                );
            }
            eprintln!("{}", e.render(style));
            e.exit_code()
        }
    }
}

/// Parses `args`, with clap's own help and errors coloured as `--color` says (found before
/// parsing, since clap prints them while it parses).
fn parse(args: &[std::ffi::OsString]) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches, ValueEnum};
    let flag = args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_str()?;
        match a.strip_prefix("--color") {
            Some("") => args.get(i + 1)?.to_str(),
            Some(value) => value.strip_prefix('='),
            None => None,
        }
    });
    let color = match flag.and_then(|v| style::ColorChoice::from_str(v, false).ok()) {
        Some(style::ColorChoice::Always) => clap::ColorChoice::Always,
        Some(style::ColorChoice::Never) => clap::ColorChoice::Never,
        _ => clap::ColorChoice::Auto,
    };
    let matches = Cli::command().color(color).try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// Whether a command line that clap could not parse still asked for JSON (`--format json` or
/// `--format=json`), so that its usage error is JSON too.
fn asks_for_json(args: &[std::ffi::OsString]) -> bool {
    args.iter().any(|a| a == "--format=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--format" && w[1] == "json")
}
