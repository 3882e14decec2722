//! The executor's half of self-healing ([`crate::plan::heal`]). Each remedy is a small state
//! machine whose state lives on the server, so the next pass can read where a killed one
//! stopped:
//!
//! 1. **Started.** The attempt is written on the server ([`Journal`]: attempt, remedy, time;
//!    one Hetzner call) before anything else changes. From here on it counts, kill or not.
//! 2. **Acted.** A re-key labels the server with the new agent credential and rebuilds it with
//!    cloud-init carrying a fresh one-off key; a power cycle hard-resets it; a replacement
//!    retires it (the journal stays on the retired server) and creates its successor.
//! 3. **Waited.** For a device of the agent to come online, like a create.
//!
//! # Guarantees
//! - Ownership is re-checked on the live server first, like every destructive step; a
//!   protected server is never rebuilt or replaced; nothing is done when a device attached to
//!   the server is online again by then (another fleet's device with the same hostname, or the
//!   device of a server being retired, does not count).
//! - A kill after step 1 cannot buy a retry: the planner counts the journal. A replacement
//!   killed between retiring and creating leaves a retired server and no current one, which
//!   the next pass completes with an ordinary create (found by name, so never twice).
//! - The minted key is revoked whatever happens; when the process dies first, the next pass's
//!   sweep revokes it at once ([`crate::plan::heal::remedies_in_progress`]).
//! - The agent is healthy only once its device is online: a remedy half done is never
//!   reported so.

use super::error::Doing;
use super::report::ActionReport;
use super::steps::{Ctx, StepResult, Stop};
use crate::cloud::retry::Clock;
use crate::cloud::tailscale::{DeviceId, Tailnet};
use crate::cloud::{Compute, ServerId};
use crate::plan::heal::Remedy;
use crate::plan::heal::journal::Journal;
use crate::plan::safety;
use std::collections::{BTreeMap, BTreeSet};
use tether_schema::Agent;
use time::OffsetDateTime;

impl<C: Compute, T: Tailnet> Ctx<'_, C, T> {
    /// Carries out `remedy`, attempt `attempt`, on `agent`'s server `id`.
    pub(super) async fn heal(
        &self,
        agent: &Agent,
        id: ServerId,
        (remedy, attempt): (Remedy, u32),
        old_devices: &[DeviceId],
        report: &mut ActionReport,
    ) -> StepResult {
        report.server_id = Some(id);
        let server = self.owned(agent.name.as_str(), id).await?;
        if remedy != Remedy::PowerCycle && (agent.protect || safety::is_protected(&server)) {
            return Err(Stop::Skipped(format!(
                "server {id} is protected; a {} would wipe or delete it",
                remedy.as_str()
            )));
        }
        if self
            .devices_of(agent, &server)
            .await?
            .iter()
            .any(|(_, online)| *online)
        {
            return Err(Stop::Skipped(format!(
                "a device of {} is online again; no {} needed",
                agent.name,
                remedy.as_str()
            )));
        }
        let started = Journal {
            attempt,
            remedy,
            at: OffsetDateTime::from(self.options.clock.now()),
        };
        let labels = started.stamp(&server.labels);
        self.compute
            .update_server(id, None, &labels)
            .await
            .doing(|| {
                format!(
                    "recording attempt {attempt} on server {id} before its {}",
                    remedy.as_str()
                )
            })?;
        match remedy {
            Remedy::Rekey => self.rekey(agent, id, &labels, report).await,
            Remedy::PowerCycle => self.power_cycle(agent, id, report).await,
            Remedy::Replace => self.replace(agent, id, old_devices, None, report).await,
        }
    }

    /// Rebuilds the server with cloud-init carrying a fresh key ([`Ctx::with_key`]), waits for
    /// the rebuild and the new device. `labels` are the server's, its journal included.
    async fn rekey(
        &self,
        agent: &Agent,
        id: ServerId,
        labels: &BTreeMap<String, String>,
        report: &mut ActionReport,
    ) -> StepResult {
        let before = self.known_devices(agent).await?;
        self.with_key(agent, report, async |key, report| {
            let (user_data, fresh, agent_key) =
                super::runtime::new_server(agent, self.fleet, key.secret.expose(), self.runtime);
            let mut labels = labels.clone();
            labels.extend(fresh);
            // The rebuilt disk gets a fresh agent credential: its hash goes on the server before
            // the rebuild, so a VM that boots from the new cloud-init is never locked out.
            self.compute
                .update_server(id, None, &labels)
                .await
                .doing(|| format!("labelling server {id} before its rebuild"))?;
            if let (Some(service), Some(key)) = (self.runtime, agent_key) {
                service.enrol(agent, key);
            }
            let action = self
                .compute
                .rebuild(id, agent.server.image.as_str(), &user_data)
                .await
                .doing(|| format!("rebuilding server {id}"))?;
            self.wait(&[action.id], report).await?;
            self.await_device(agent, &before, report).await
        })
        .await
    }

    /// Hard-resets the server and waits for a device of the agent to be online again.
    async fn power_cycle(
        &self,
        agent: &Agent,
        id: ServerId,
        report: &mut ActionReport,
    ) -> StepResult {
        let action = self
            .compute
            .reset(id)
            .await
            .doing(|| format!("resetting server {id}"))?;
        self.wait(&[action.id], report).await?;
        self.await_device(agent, &BTreeSet::new(), report).await
    }

    /// Waits for a device not in `before` to be online; a timeout is a warning (the next
    /// passes observe the agent again), not a failure.
    async fn await_device(
        &self,
        agent: &Agent,
        before: &BTreeSet<DeviceId>,
        report: &mut ActionReport,
    ) -> StepResult {
        match self.wait_for_device(agent, before).await? {
            Some(device) => report.device_ids.push(device),
            None => {
                report.warning = Some(format!(
                    "no device came online within {}s; self-healing observes the agent again",
                    self.options.device_timeout.as_secs()
                ));
            }
        }
        Ok(())
    }
}
