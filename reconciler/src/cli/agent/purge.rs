//! `tether agent purge NAME --confirm NAME`: asks for a quarantined server to be deleted before
//! its grace period ends. It labels the server `tether/purge=true`; the next pass deletes it,
//! inside the deletion budgets, like any other deletion.

use super::super::common::{self, SourceArgs};
use super::super::{CliError, Outcome};
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
