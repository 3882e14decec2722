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
    let mut roff = Vec::new();
    clap_mangen::Man::new(page).render(&mut roff).map_err(|e| {
        CliError::failed(
            format!("cannot render the manual page: {e}"),
            "report this as a bug",
        )
    })?;
    roff.extend_from_slice(SECTIONS.as_bytes());
    super::common::write_stdout(&roff, "the manual page")?;
    Ok(Outcome::Success)
}

/// The sections clap does not generate: exit codes, the environment, the files, examples.
/// The exit codes are `super::error`'s; docs/operations.md explains each variable.
const SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
The command did its job and there is nothing to report.
.TP
\fB1\fR
The command could not do its job, found the fleet invalid, or actions failed.
.TP
\fB2\fR
The plan has changes (only with \fB\-\-detailed\-exitcode\fR).
.TP
\fB3\fR
Refused by policy (safety rules, a changed plan hash, a suspended fleet); nothing was changed.
.TP
\fB4\fR
An outside failure that retrying later may cure (an API unreachable, rate limited, timed out), or the lease held by another tether.
.TP
\fB64\fR
The command line cannot be understood.
.TP
\fB130\fR
Ctrl\-C or SIGTERM stopped the command after an orderly wind\-down.
.SH ENVIRONMENT
.TP
\fBHCLOUD_TOKEN\fR, \fBHCLOUD_TOKEN_\fR\fIPROJECT\fR
Hetzner Cloud API tokens (read/write): the fleet's project, or each project \fBspec.projects\fR declares.
.TP
\fBHCLOUD_ENDPOINT\fR
The Hetzner Cloud API base URL (the sandbox's emulator).
.TP
\fBTS_API_KEY\fR, or \fBTS_OAUTH_CLIENT_ID\fR and \fBTS_OAUTH_CLIENT_SECRET\fR
Tailscale credentials.
.TP
\fBTS_API_URL\fR
The Tailscale API base URL.
.TP
\fBGITHUB_TOKEN\fR, \fBGITHUB_REPOSITORY\fR, \fBGITHUB_API_URL\fR
Pull request comments and commit statuses; the daemon's https fetches and lease pushes.
.TP
\fBTETHER_CONFIG\fR
The daemon's configuration file (\fBtether run\fR).
.TP
\fBTETHER_RECONCILE_TOKEN\fR, \fBTETHER_URL\fR
The bearer token and address \fBtether reconcile\fR uses.
.TP
\fBNO_COLOR\fR, \fBCLICOLOR_FORCE\fR
Turn colour off, or on where output is not a terminal.
.TP
\fBRUST_LOG\fR
The log level and filter, e.g. \fBtether=debug\fR.
.SH FILES
.TP
\fI/etc/tether/tether.yaml\fR
The daemon's configuration (secrets only in the environment or in files it names).
.TP
\fIfleet.yaml\fR, \fIagents/**/*.yaml\fR
The fleet repository: the fleet's settings and one agent spec per subscription.
.TP
\fBtether/status\fR (a branch of the fleet repository)
What tether did: one status commit per pass, the baseline later plans compare with.
.TP
\fBrefs/tether/locks/\fR\fIFLEET\fR
The single\-writer lease of the fleet's daemon.
.SH EXAMPLES
.TP
\fBtether validate\fR
Check the fleet in the current directory and report every problem at once.
.TP
\fBtether plan \-\-git . \-\-rev main\fR
Show what a pass would change, compared with the status branch.
.TP
\fBtether apply \-\-git . \-\-rev main\fR
Converge the fleet and record the pass on \fBtether/status\fR.
.TP
\fBtether status \-\-git .\fR
Every agent's phase, server and device as last recorded.
.TP
\fBtether audit log \-\-since 2026\-11\-01\fR
What changed, by whom, and why, since a date.
.TP
\fBtether run \-\-config /etc/tether/tether.yaml\fR
Run the daemon.
.TP
\fBtether reconcile \-\-url 127.0.0.1:9180\fR
Ask the running daemon for a pass now.
"#;
