//! `tether completions SHELL`: the shell completion script, generated from the clap
//! definitions.

use super::{CliError, Outcome};
use clap::CommandFactory;
use clap_complete::Shell;

/// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
///
/// bash: `tether completions bash > ~/.local/share/bash-completion/completions/tether`;
/// zsh: `tether completions zsh > "${fpath[1]}/_tether"`;
/// fish: `tether completions fish > ~/.config/fish/completions/tether.fish`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

/// Runs `tether completions`.
///
/// # Errors
/// Stdout cannot be written (a reader that stops early is not an error).
pub fn cmd_completions(args: &CompletionsArgs) -> Result<Outcome, CliError> {
    let mut command = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "tether", &mut script);
    super::common::write_stdout(&script, "the completion script")?;
    Ok(Outcome::Success)
}
