//! `tether agent purge NAME --confirm NAME`: asks for a quarantined server to be deleted before
//! its grace period ends. It labels the server `tether/purge=true`; the next pass deletes it,
//! inside the deletion budgets, like any other deletion. With `--git`, who asked is recorded on
//! the status branch first ([`record`]).

use super::super::common::{self, SigningArgs, SourceArgs};
use super::super::{CliError, Outcome};
use crate::audit::{self, TRAILER_REQUESTED_BY, TRAILER_RUN, TRAILER_SOURCE, commit};
use crate::cloud::Compute;
use crate::plan::{Observed, quarantined_servers};
use tether_schema::{labels, load_fleet};

/// Delete an agent's quarantined server at the next pass instead of after its grace period.
#[derive(Debug, clap::Args)]
pub(super) struct PurgeArgs {
    /// The agent whose quarantined server goes.
    name: String,
    /// The agent's name again: the explicit confirmation that its disk may be destroyed.
    #[arg(long, value_name = "NAME")]
    confirm: String,
    #[command(flatten)]
    source: SourceArgs,
    /// Who asks, `Name <email>`, recorded on the status branch with --git (default: the
    /// repository's git `user.name` and `user.email`).
    #[arg(long, value_name = "WHO")]
    requested_by: Option<String>,
    #[command(flatten)]
    signing: SigningArgs,
}

/// Runs `tether agent purge`.
///
/// # Errors
/// The confirmation does not match, the fleet or Hetzner cannot be read, or the agent has no
/// quarantined server.
pub(super) fn cmd_purge(args: &PurgeArgs) -> Result<Outcome, CliError> {
    if args.confirm != args.name {
        return Err(CliError::usage(
            format!(
                "--confirm `{}` does not match the agent `{}`",
                args.confirm, args.name
            ),
            format!(
                "repeat the agent's name to confirm that its server and disk may be deleted: `tether agent purge {0} --confirm {0}`",
                args.name
            ),
        ));
    }
    common::init_logging(common::LogFormat::Text, "warn");
    let snapshot = args.source.snapshot()?;
    let fleet = load_fleet(&snapshot.files).map_err(|e| {
        CliError::failed(
            format!("the fleet does not load: {e}"),
            "run `tether validate` and fix the fleet first",
        )
    })?;
    let rt = common::runtime()?;
    let compute = common::hetzner()?;
    let selector = labels::fleet_selector(&fleet.settings);
    let observed = Observed {
        servers: rt
            .block_on(compute.list_servers(Some(&selector)))
            .map_err(|e| {
                CliError::failed(
                    format!("listing the servers of fleet {}: {e}", fleet.settings.name),
                    "check HCLOUD_TOKEN and that Hetzner answers, then retry",
                )
            })?,
        ..Observed::default()
    };
    let Some(server) = quarantined_servers(&fleet, &observed)
        .get(args.name.as_str())
        .copied()
    else {
        return Err(CliError::failed(
            format!(
                "agent {} of fleet {} has no quarantined server",
                args.name, fleet.settings.name
            ),
            "`tether plan` lists the quarantined agents in its notes; only those can be purged",
        ));
    };
    record(args, snapshot.commit.as_deref(), &args.name, server.id.0)?;
    let mut purged = server.labels.clone();
    purged.insert(labels::PURGE.to_owned(), "true".to_owned());
    rt.block_on(compute.update_server(server.id, None, &purged))
        .map_err(|e| {
            CliError::failed(
                format!("labelling server {} for purge: {e}", server.id),
                "nothing was deleted; retry",
            )
        })?;
    println!(
        "server {} ({}) of agent {} is marked `{}=true`; the next pass deletes it, inside the deletion budgets",
        server.id,
        server.name,
        args.name,
        labels::PURGE
    );
    Ok(Outcome::Success)
}

/// With --git, records who asked for the purge as a commit on the status branch, before the
/// server is labelled: a purge nobody recorded never happens.
fn record(
    args: &PurgeArgs,
    source: Option<&str>,
    agent: &str,
    server: u64,
) -> Result<(), CliError> {
    let (Some(repo), Some(rev)) = (args.source.git.as_deref(), args.source.rev.as_deref()) else {
        eprintln!("warning: without --git, who asked for this purge is recorded nowhere");
        return Ok(());
    };
    let config = git2::Repository::open(repo).and_then(|r| r.config());
    let from_git = |key: &str| config.as_ref().ok().and_then(|c| c.get_string(key).ok());
    let who = match (
        &args.requested_by,
        from_git("user.name"),
        from_git("user.email"),
    ) {
        (Some(who), _, _) => who.clone(),
        (None, Some(name), Some(email)) => format!("{name} <{email}>"),
        _ => {
            return Err(CliError::usage(
                "who asks for the purge is unknown",
                "pass --requested-by \"Name <email>\", or set git's user.name and user.email",
            ));
        }
    };
    if who.contains(['\n', '\r']) || who.len() > 200 {
        return Err(CliError::usage(
            "--requested-by must be one line of at most 200 bytes",
            "write `Name <email>`",
        ));
    }
    let default = commit::Identity::default();
    let identity = args.signing.identity(&default.name, &default.email)?;
    let run = format!(
        "purge-{}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    let message = format!(
        "purge {agent}: requested by {who}\n\n{:<14} {agent:<24} requested [server {server}]\n\n{TRAILER_SOURCE}: {}\n{TRAILER_RUN}: {run}\n{TRAILER_REQUESTED_BY}: {who}\n",
        "purge",
        source.unwrap_or("none")
    );
    let target = commit::Target {
        repo,
        remote: None,
        branch: audit::STATUS_BRANCH,
        source_branch: rev,
        identity: &identity,
    };
    commit::note(&target, &message).map_err(|e| {
        CliError::failed(
            e.to_string(),
            "nothing was labelled; fix the repository and retry",
        )
    })?;
    Ok(())
}
