//! The apply side of runtime updates in place: a created server gets the on-VM agent (a fresh
//! credential in its cloud-init, the credential's hash as its `tether/agent-key` label), the
//! plan's [`Action::UpdateRuntime`](crate::plan::Action::UpdateRuntime)s go to
//! [`crate::runtime::rollout::run`] (called from [`super::apply_with`]), and rotated credentials
//! reach their server's label. Without an agent API (`tether apply`, or a daemon without
//! `agentApi`) runtime updates are deferred with [`NO_AGENT_API`], which fails no run
//! (decision 049).

use super::{ActionReport, Outcome, StepError};
use crate::cloud::Compute;
use crate::plan::safety;
use crate::runtime::rollout::{Ended, Update};
use crate::runtime::{Service, credential};
use crate::secret::Secret;
use std::collections::BTreeMap;
use tether_schema::cloud_init::{self, agent::Bootstrap};
use tether_schema::{Agent, Fleet, labels};

/// Why a runtime update is deferred without an agent API.
pub const NO_AGENT_API: &str = "runtime updates are delivered by the daemon's agent API (`tether run` with an `agentApi` block); this run has none, so the server keeps its runtime until such a daemon delivers the update or the server is created anew (new servers get the spec's runtime in their cloud-init)";

/// The user_data and labels of a new server: with the agent's bootstrap and credential hash
/// when there is an agent API. The credential is only ever in the returned user_data.
pub fn new_server(
    agent: &Agent,
    fleet: &Fleet,
    auth_key: &str,
    service: Option<&Service>,
) -> (Secret<String>, BTreeMap<String, String>, Option<String>) {
    let mut labels = labels::server_labels(agent, &fleet.settings);
    let Some(service) = service else {
        let user_data = cloud_init::render(agent, &fleet.settings, auth_key);
        return (Secret::new(user_data), labels, None);
    };
    let fresh = credential::mint();
    let key = credential::hash(&fresh);
    let config = service.config();
    let boot = Bootstrap {
        url: &config.url,
        binary_url: &config.binary_url,
        credential: fresh.expose(),
    };
    let user_data = cloud_init::render_with_agent(agent, &fleet.settings, auth_key, Some(&boot));
    labels.insert(labels::AGENT_KEY.to_owned(), key.clone());
    (Secret::new(user_data), labels, Some(key))
}

/// Writes rotated credential hashes to their servers' `tether/agent-key` labels; a server that
/// is gone or not this fleet's is left alone, a failure is retried by the next pass.
pub async fn write_rotated_keys<C: Compute>(
    compute: &C,
    fleet: &Fleet,
    service: &Service,
    servers: &[crate::cloud::Server],
) {
    for (agent, key) in service.pending_keys() {
        let Some(server) = servers
            .iter()
            .find(|s| safety::owns_server(s, fleet.settings.name.as_str(), &agent))
        else {
            continue;
        };
        let mut labels = server.labels.clone();
        labels.insert(labels::AGENT_KEY.to_owned(), key);
        match compute.update_server(server.id, None, &labels).await {
            Ok(_) => {
                tracing::info!(%agent, server = server.id.0, "rotated agent credential labelled")
            }
            Err(e) => {
                tracing::warn!(%agent, server = server.id.0, error = %e, "labelling the rotated agent credential failed; retried next pass")
            }
        }
    }
}

/// The report of one runtime update the rollout ran.
pub fn report(update: Update<'_>) -> ActionReport {
    let outcome = match update.ended {
        Ended::Done => Outcome::Done,
        Ended::Failed(e) => Outcome::failed(&StepError::from(e)),
        Ended::Skipped { reason } => Outcome::Skipped { reason },
    };
    let mut report = ActionReport::new(update.action, outcome);
    report.server_id = update.server_id;
    report
}
