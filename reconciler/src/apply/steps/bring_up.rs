//! The steps that bring a server up: a create, and a replacement (a new server up before the
//! old one is retired), each with the one-off key it hands its VM.

use super::{Ctx, StepResult, Stop};
use crate::apply::error::{Doing, StepError};
use crate::apply::report::ActionReport;
use crate::apply::runtime;
use crate::cloud::tailscale::{CreatedAuthKey, DeviceId, Tailnet};
use crate::cloud::{ActionId, Compute, NewServer, ServerId};
use crate::plan::safety;
use std::collections::BTreeSet;
use tether_schema::{Agent, Power, labels};

impl<C: Compute, T: Tailnet> Ctx<'_, C, T> {
    /// Creates the server in `project` (the fleet's projects; `None` with one token) with a
    /// fresh key ([`Ctx::with_key`]), waits for its actions and its device.
    pub(super) async fn create(
        &self,
        agent: &Agent,
        project: Option<&str>,
        report: &mut ActionReport,
    ) -> StepResult {
        let before = self.known_devices(agent).await?;
        self.with_key(agent, report, async |key, report| {
            self.create_with_key(agent, project, key, &before, report)
                .await
        })
        .await
    }

    async fn create_with_key(
        &self,
        agent: &Agent,
        project: Option<&str>,
        key: &CreatedAuthKey,
        before: &BTreeSet<DeviceId>,
        report: &mut ActionReport,
    ) -> StepResult {
        let (user_data, mut labels, agent_key) =
            runtime::new_server(agent, self.fleet, key.secret.expose(), self.runtime);
        if let Some(project) = project {
            labels.insert(labels::PROJECT.to_owned(), project.to_owned());
        }
        let new = NewServer {
            name: agent.name.as_str().to_owned(),
            server_type: agent.server.server_type.as_str().to_owned(),
            image: agent.server.image.as_str().to_owned(),
            location: agent.server.location.as_str().to_owned(),
            ssh_keys: agent
                .server
                .ssh_keys
                .iter()
                .map(|k| k.as_str().to_owned())
                .collect(),
            user_data: Some(user_data),
            labels,
            start_after_create: agent.power == Power::On,
            project: project.map(str::to_owned),
            public_net: agent.server.public_net,
        };
        let created = self.compute.create_server(&new).await?;
        report.server_id = Some(created.server.id);
        report.ipv4.clone_from(&created.server.ipv4);
        self.verify_labels(agent, &created.server)?;
        if let (Some(service), Some(key)) = (self.runtime, agent_key) {
            service.enrol(agent, key);
        }
        if created.adopted {
            report.warning =
                Some("an earlier attempt had created the server; adopted it".to_owned());
        }
        let ids: Vec<ActionId> = std::iter::once(created.action.id)
            .chain(created.next_actions.iter().map(|a| a.id))
            .collect();
        self.wait(&ids, report).await?;
        if agent.power == Power::On {
            match self.wait_for_device(agent, before).await? {
                Some(device) => report.device_ids.push(device),
                None => {
                    report.warning = Some(format!(
                        "no device came online within {}s; the agent is unhealthy until it does",
                        self.options.device_timeout.as_secs()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Renames the old server aside, creates the replacement (in `project` when the action
    /// names one, a pin's move; else where the old server lives), and deletes the old server
    /// and its devices only once the replacement is healthy.
    pub(in crate::apply) async fn replace(
        &self,
        agent: &Agent,
        old: ServerId,
        old_devices: &[DeviceId],
        project: Option<&str>,
        report: &mut ActionReport,
    ) -> StepResult {
        let server = self.owned(agent.name.as_str(), old).await?;
        let project = project.or(server.project.as_deref());
        let mut retired_labels = server.labels.clone();
        retired_labels.insert(labels::RETIRED.to_owned(), "true".to_owned());
        let retired_name = labels::retired_name(agent.name.as_str(), old.0);
        self.compute
            .update_server(old, Some(&retired_name), &retired_labels)
            .await
            .doing(|| format!("retiring server {old}"))?;
        self.create(agent, project, report).await?;
        let healthy = agent.power == Power::Off || !report.device_ids.is_empty();
        if !healthy {
            return Err(Stop::Failed(StepError::ReplacementNotOnline {
                old,
                retired_name,
            }));
        }
        let live = self.owned(agent.name.as_str(), old).await?;
        if safety::is_protected(&live) {
            report.warning = Some(format!(
                "old server {old} ({retired_name}) is protected and was kept; delete it by hand once its disk is no longer needed"
            ));
            return Ok(());
        }
        if !self.take_deletion() {
            report.warning = Some(format!(
                "the deletion budget of this run ({}) is used up; old server {old} is kept as {retired_name} and deleted on a later run",
                self.budget
            ));
            return Ok(());
        }
        let action = self
            .compute
            .delete_server(old)
            .await
            .doing(|| format!("deleting the replaced server {old}"))?;
        report.deleted_server = Some(old);
        if let Some(action) = action {
            self.wait(&[action.id], report).await?;
        }
        for device in old_devices {
            self.tailnet
                .delete_device(device)
                .await
                .doing(|| format!("deleting old device {}", device.0))?;
            report.device_ids.push(device.clone());
        }
        Ok(())
    }
}
