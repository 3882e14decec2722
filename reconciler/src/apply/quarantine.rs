//! The executor's half of quarantine before delete ([`crate::plan::quarantine`]): putting a
//! server whose spec was removed into quarantine, and giving it back when its spec returns.

use super::error::Doing;
use super::report::ActionReport;
use super::steps::{Ctx, StepResult, Stop};
use crate::cloud::tailscale::{DeviceId, Tailnet};
use crate::cloud::{Compute, Server, ServerId, ServerStatus};
use crate::plan::safety;
use std::collections::BTreeSet;
use std::time::Duration;
use tether_schema::{Agent, Power, labels};
use time::OffsetDateTime;

/// How long a graceful (ACPI) shutdown may take before the server is powered off hard.
pub(super) const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

impl<C: Compute, T: Tailnet> Ctx<'_, C, T> {
    /// Stops the server, deauthorizes its devices (those planned and those attached now), then
    /// renames it `<agent>-quarantined-<id>` and labels it with the time and `commit` in one
    /// call: the label is written last, so a pass killed before it quarantines again.
    ///
    /// # Guarantees
    /// Only a server that still carries this fleet's and `agent`'s labels and is not protected
    /// is touched; its ownership labels are kept.
    pub(super) async fn quarantine(
        &self,
        agent: &str,
        id: ServerId,
        devices: &[DeviceId],
        commit: Option<&str>,
        report: &mut ActionReport,
    ) -> StepResult {
        report.server_id = Some(id);
        let server = self.owned(agent, id).await?;
        if safety::is_protected(&server) {
            return Err(Stop::Skipped(format!(
                "server {id} is protected (`tether/protect=true` or Hetzner delete protection); not quarantining it"
            )));
        }
        self.stop(&server, report).await?;
        let mut all = devices.to_vec();
        for late in self.attached_devices(&server).await? {
            if !all.contains(&late) {
                all.push(late);
            }
        }
        self.authorize(&all, false, report).await?;
        let mut quarantined = server.labels.clone();
        quarantined.insert(
            labels::QUARANTINED_AT.to_owned(),
            OffsetDateTime::now_utc().unix_timestamp().to_string(),
        );
        if let Some(commit) = commit {
            quarantined.insert(labels::QUARANTINE_COMMIT.to_owned(), commit.to_owned());
        }
        quarantined.remove(labels::PURGE);
        let name = labels::quarantined_name(agent, id.0);
        self.compute
            .update_server(id, Some(&name), &quarantined)
            .await
            .doing(|| format!("labelling server {id} as quarantined ({name})"))?;
        Ok(())
    }

    /// Re-authorizes the devices, gives the server back the agent's name without the
    /// quarantine labels, powers it on (when the spec says `power: on`) and waits, bounded,
    /// for a device of it to be online.
    pub(super) async fn restore(
        &self,
        agent: &Agent,
        id: ServerId,
        devices: &[DeviceId],
        report: &mut ActionReport,
    ) -> StepResult {
        report.server_id = Some(id);
        let server = self.owned(agent.name.as_str(), id).await?;
        self.authorize(devices, true, report).await?;
        let mut restored = server.labels.clone();
        for key in [
            labels::QUARANTINED_AT,
            labels::QUARANTINE_COMMIT,
            labels::PURGE,
        ] {
            restored.remove(key);
        }
        self.compute
            .update_server(id, Some(agent.name.as_str()), &restored)
            .await
            .doing(|| format!("restoring server {id} from quarantine"))?;
        if agent.power == Power::Off || server.status == ServerStatus::Running {
            return Ok(());
        }
        let a = self.compute.power_on(id).await?;
        self.wait(&[a.id], report).await?;
        if self
            .wait_for_device(agent, &BTreeSet::new())
            .await?
            .is_none()
        {
            report.warning = Some(format!(
                "no device came online within {}s of the restore; the agent is unhealthy until it does",
                self.options.device_timeout.as_secs()
            ));
        }
        Ok(())
    }

    /// An ACPI shutdown, then a hard power-off if the server is not off within
    /// [`SHUTDOWN_WAIT`].
    async fn stop(&self, server: &Server, report: &mut ActionReport) -> StepResult {
        if server.status == ServerStatus::Off {
            return Ok(());
        }
        let a = self
            .compute
            .shutdown(server.id)
            .await
            .doing(|| format!("shutting down server {}", server.id))?;
        self.wait(&[a.id], report).await?;
        let deadline = tokio::time::Instant::now() + SHUTDOWN_WAIT;
        loop {
            let status = self.compute.get_server(server.id).await?.map(|s| s.status);
            if status == Some(ServerStatus::Off) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(self.options.device_poll).await;
        }
        let a = self
            .compute
            .power_off(server.id)
            .await
            .doing(|| format!("powering off server {}", server.id))?;
        self.wait(&[a.id], report).await
    }

    async fn authorize(
        &self,
        devices: &[DeviceId],
        authorized: bool,
        report: &mut ActionReport,
    ) -> StepResult {
        for device in devices {
            self.tailnet
                .set_authorized(device, authorized)
                .await
                .doing(|| format!("setting authorized={authorized} on device {device}"))?;
            report.device_ids.push(device.clone());
        }
        Ok(())
    }
}
