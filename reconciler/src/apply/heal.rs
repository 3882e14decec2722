//! The executor's half of self-healing ([`crate::plan::heal`]): a re-key rebuilds the same
//! server with a fresh one-off auth key in its cloud-init and waits for it to enrol like a
//! create; a power cycle hard-resets it and waits for its device to come back; a replacement
//! is the ordinary replacement.
//!
//! # Guarantees
//! - Ownership is re-checked on the live server first, like every destructive step; a
//!   protected server is never rebuilt or replaced; nothing is done when a device attached to
//!   the server is online again by then (another fleet's device with the same hostname, or the
//!   device of a server being retired, does not count).
//! - The minted key is revoked whatever happens; a failed revocation is left to the next
//!   pass's sweep.

use super::error::Doing;
use super::report::ActionReport;
use super::steps::{Ctx, StepResult, Stop};
use crate::cloud::tailscale::{DeviceId, Tailnet};
use crate::cloud::{Compute, ServerId};
use crate::plan::heal::Remedy;
use crate::plan::safety;
use std::collections::BTreeSet;
use tether_schema::Agent;

impl<C: Compute, T: Tailnet> Ctx<'_, C, T> {
    /// Carries out `remedy` on `agent`'s server `id`.
    pub(super) async fn heal(
        &self,
        agent: &Agent,
        id: ServerId,
        remedy: Remedy,
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
        match remedy {
            Remedy::Rekey => self.rekey(agent, id, report).await,
            Remedy::PowerCycle => self.power_cycle(agent, id, report).await,
            Remedy::Replace => self.replace(agent, id, old_devices, None, report).await,
        }
    }

    /// Rebuilds the server with cloud-init carrying a fresh key ([`Ctx::with_key`]), waits for
    /// the rebuild and the new device.
    async fn rekey(&self, agent: &Agent, id: ServerId, report: &mut ActionReport) -> StepResult {
        let before = self.known_devices(agent).await?;
        self.with_key(agent, report, async |key, report| {
            let (user_data, labels, agent_key) =
                super::runtime::new_server(agent, self.fleet, key.secret.expose(), self.runtime);
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
