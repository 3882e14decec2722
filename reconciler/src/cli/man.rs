//! `tether man [COMMAND]`: the manual page in roff, generated from the clap definitions, so it
//! never drifts from `--help`.

use super::{CliError, Outcome};
use clap::CommandFactory;

/// Print the manual page (roff) of tether or of one subcommand.
///
/// `tether man | man -l -` reads it now; `tether man > /usr/local/share/man/man1/tether.1`
/// installs it, and `tether man plan > tether-plan.1` the page of `tether plan`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// A subcommand whose page to print (default: tether's own).
    #[arg(value_name = "COMMAND")]
    command: Option<String>,
}

/// Runs `tether man`.
///
/// # Errors
/// The subcommand does not exist (usage), or stdout cannot be written.
pub fn cmd_man(args: &ManArgs) -> Result<Outcome, CliError> {
    let mut root = super::Cli::command();
    root.build();
    let page = match &args.command {
        None => root,
        Some(name) => root.find_subcommand(name).cloned().ok_or_else(|| {
            let names = super::Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_owned())
                .collect::<Vec<_>>()
                .join(", ");
            CliError::usage(
                format!("`{name}` is not a tether subcommand"),
                format!("name one of: {names}"),
            )
        })?,
    };
    clap_mangen::Man::new(page)
        .render(&mut std::io::stdout())
        .map_err(|e| {
            CliError::failed(format!("cannot write the manual page: {e}"), "check stdout")
        })?;
    Ok(Outcome::Success)
}
