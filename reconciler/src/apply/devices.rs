//! The Tailscale side of the executor's steps: finding an agent's devices, waiting for a new
//! one to join (both through the pass's shared [`super::enrolment`] watch), and deleting them.

use super::error::{Doing, StepError};
use super::report::ActionReport;
use super::steps::{Ctx, StepResult, Stop};
use crate::cloud::retry::Clock;
use crate::cloud::tailscale::{Device, DeviceId, DeviceQuery, Tailnet};
use crate::cloud::{Compute, Server};
use crate::plan::safety;
use std::collections::BTreeSet;
use tether_schema::Agent;

impl<C: Compute, T: Tailnet> Ctx<'_, C, T> {
    /// The devices attached to `server` as listed now ([`safety::device_owner`]'s attachment
    /// rule: its name as hostname, fleet tags only, joined after it was created), so that a
    /// device that enrolled after the plan was made goes with its server.
    pub(super) async fn attached_devices(&self, server: &Server) -> Result<Vec<DeviceId>, Stop> {
        Ok(self
            .attached_listing(server, &server.name)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect())
    }

    /// The devices named `hostname` attached to `server` (fleet tags only, joined after the
    /// server was created), listed now.
    async fn attached_listing(
        &self,
        server: &Server,
        hostname: &str,
    ) -> Result<Vec<Device>, StepError> {
        let query = DeviceQuery {
            tags: Vec::new(),
            hostname: Some(hostname.to_owned()),
            all_fields: false,
        };
        let listed = self
            .tailnet
            .list_devices(&query)
            .await
            .doing(|| format!("listing the devices of server {}", server.id))?;
        let fleet_tags: BTreeSet<&str> = self
            .fleet
            .settings
            .tags
            .iter()
            .map(|t| t.as_str())
            .collect();
        Ok(listed
            .into_iter()
            .filter(|d| {
                d.hostname == hostname
                    && !d.tags.is_empty()
                    && d.tags.iter().all(|t| fleet_tags.contains(t.as_str()))
                    && safety::joined_after(d, server)
            })
            .collect())
    }

    pub(super) async fn delete_devices(
        &self,
        devices: &[DeviceId],
        report: &mut ActionReport,
    ) -> StepResult {
        for device in devices {
            self.tailnet
                .delete_device(device)
                .await
                .doing(|| format!("deleting device {}", device.0))?;
            report.device_ids.push(device.clone());
        }
        Ok(())
    }

    /// The agent's devices on `server`, with their online flag, listed now (not from the
    /// pass's watch): a remedy about to wipe or reset a server checks a fresh listing. Only the
    /// devices attached to `server` count ([`safety::device_owner`]'s attachment rule: the
    /// agent's name as hostname, fleet tags only, joined after the server was created): neither
    /// another fleet's device with the same hostname and tags, nor the device of the agent's
    /// server a replacement is retiring, says anything about this server.
    pub(super) async fn devices_of(
        &self,
        agent: &Agent,
        server: &Server,
    ) -> Result<Vec<(DeviceId, bool)>, StepError> {
        Ok(self
            .attached_listing(server, agent.name.as_str())
            .await?
            .into_iter()
            .map(|d| (d.id, d.online))
            .collect())
    }

    /// The devices of the agent that exist before its new server: from the pass's shared
    /// [`DeviceWatch`](super::enrolment::DeviceWatch), so a create lists nothing itself.
    pub(super) async fn known_devices(
        &self,
        agent: &Agent,
    ) -> Result<BTreeSet<DeviceId>, StepError> {
        self.watch
            .known(self.tailnet, agent)
            .await
            .map_err(StepError::DeviceWatch)
    }

    /// Waits (bounded by [`Options::device_timeout`](super::Options)) for an online device of
    /// the agent that was not there before, through the pass's shared device watch.
    pub(super) async fn wait_for_device(
        &self,
        agent: &Agent,
        before: &BTreeSet<DeviceId>,
    ) -> Result<Option<DeviceId>, StepError> {
        let deadline = self.options.clock.now() + self.options.device_timeout;
        super::gate::waiting(self.watch.wait(agent, before.clone(), deadline))
            .await
            .map_err(StepError::DeviceWatch)
    }
}
