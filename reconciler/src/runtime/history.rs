//! Where a restarted daemon finds the runtime its lagging agents ran: the newest fleet commit
//! whose spec gives the runtime their server's `tether/runtime` label shows (decision 033).
//! Start at [`serve_what_they_ran`].

use super::Service;
use crate::cloud::Server;
use crate::source::fleets::FleetCache;
use std::path::Path;
use tether_schema::{Fleet, load_fleet};

/// How many fleet commits are looked through.
pub const LOOK_BACK: usize = 50;

/// The fleet's history: its repository, the commit applied (`None`: a working tree) and the
/// daemon's cache of loaded fleets.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    /// The repository holding the fleet.
    pub repo: &'a Path,
    /// The commit applied; `None` for a working tree (then `HEAD` and every local branch).
    pub commit: Option<&'a str>,
    /// Fleets loaded before, by commit.
    pub fleets: Option<&'a FleetCache>,
}

/// Serves the agents `service` has nothing for (a restarted daemon) the runtime their server's
/// label shows: from `previous` (the last applied fleet), else from the newest of the last
/// [`LOOK_BACK`] fleet commits whose spec gave it. Each label is looked for once.
pub fn serve_what_they_ran(
    service: &Service,
    (fleet, previous): (&Fleet, Option<&Fleet>),
    servers: &[Server],
    history: Option<&History<'_>>,
) {
    let mut lagging = service.lagging(fleet, servers);
    if let Some(previous) = previous {
        service.serve_as_labelled(previous, servers, &mut lagging);
    }
    let Some(history) = history else {
        return;
    };
    if lagging.is_empty() {
        return;
    }
    let commits =
        crate::source::git::history(history.repo, history.commit, LOOK_BACK).unwrap_or_default();
    for commit in commits {
        if lagging.is_empty() {
            break;
        }
        let old = match history.fleets {
            Some(fleets) => fleets
                .read(history.repo, &commit)
                .ok()
                .and_then(|l| l.fleet.ok()),
            None => crate::source::git::read(history.repo, &commit)
                .ok()
                .and_then(|s| load_fleet(&s.files).ok()),
        };
        if let Some(old) = old {
            service.serve_as_labelled(&old, servers, &mut lagging);
        }
    }
    if !lagging.is_empty() {
        tracing::warn!(
            agents = lagging.len(),
            "runtime: no fleet commit among the last {LOOK_BACK} gives the runtime these agents' servers are labelled with; they are served nothing until the rollout reaches them"
        );
    }
}
