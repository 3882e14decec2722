//! The executor's half of quarantine before delete ([`crate::plan::quarantine`]): putting a
//! server whose spec was removed into quarantine, and giving it back when its spec returns.

use super::error::Doing;
use super::report::ActionReport;
use super::steps::{Ctx, StepResult, Stop};
use crate::cloud::retry::Clock;
use crate::cloud::tailscale::{DeviceId, Tailnet};
use crate::cloud::{Compute, Server, ServerId, ServerStatus};
use crate::operation::{self, Operation};
use crate::plan::safety;
use std::collections::BTreeSet;
use std::time::Duration;
use tether_schema::{Agent, Power, labels};
use time::OffsetDateTime;

/// How long a graceful (ACPI) shutdown may take before the server is powered off hard.
pub(super) const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

impl<C: Compute, T: Tailnet> Ctx<'_, C, T> {
    /// Records the quarantine on the server (`tether/operation=quarantine.stopping`), stops it,
    /// records `quarantine.deauthorizing`, deauthorizes its devices (those planned and those
    /// attached now), then renames it `<agent>-quarantined-<id>` and labels it with the time
    /// and `commit` in one call that also removes the record. A pass stopped at any step
    /// leaves the record: the next one quarantines again, or restores when the spec is back
    /// (the devices are authorized again whatever step was reached).
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
        let server = self
            .record(&server, Operation::Quarantine, "stopping")
            .await?;
        self.stop(&server, report).await?;
        let server = self
            .record(&server, Operation::Quarantine, "deauthorizing")
            .await?;
        let mut all = devices.to_vec();
        for late in self.attached_devices(&server).await? {
            if !all.contains(&late) {
                all.push(late);
            }
        }
        self.authorize(&all, false, report).await?;
        let mut quarantined = operation::done(&server.labels);
        quarantined.insert(
            labels::QUARANTINED_AT.to_owned(),
            OffsetDateTime::from(self.options.clock.now())
                .unix_timestamp()
                .to_string(),
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

    /// Records the restore (`tether/operation=restore.authorizing`), re-authorizes the devices
    /// (those planned and those with the agent's name attached now), names the server `name`
    /// without the quarantine labels (recording `restore.starting`), powers it on (when the spec
    /// says `power: on`), waits, bounded, for a device of it to be online, and removes the
    /// record. Also what finishes a quarantine or restore a stopped pass left half done.
    ///
    /// # Guarantees
    /// Every step is idempotent; until the last one the record stays on the server, so the next
    /// pass restores again and the agent is not reported Ready.
    pub(super) async fn restore(
        &self,
        agent: &Agent,
        id: ServerId,
        name: &str,
        devices: &[DeviceId],
        report: &mut ActionReport,
    ) -> StepResult {
        report.server_id = Some(id);
        let server = self.owned(agent.name.as_str(), id).await?;
        let server = self
            .record(&server, Operation::Restore, "authorizing")
            .await?;
        let mut all = devices.to_vec();
        let as_agent = Server {
            name: agent.name.as_str().to_owned(),
            ..server.clone()
        };
        for late in self.attached_devices(&as_agent).await? {
            if !all.contains(&late) {
                all.push(late);
            }
        }
        self.authorize(&all, true, report).await?;
        let mut restored = operation::at_step(&server.labels, Operation::Restore, "starting");
        for key in [
            labels::QUARANTINED_AT,
            labels::QUARANTINE_COMMIT,
            labels::PURGE,
        ] {
            restored.remove(key);
        }
        self.compute
            .update_server(id, Some(name), &restored)
            .await
            .doing(|| format!("restoring server {id} from quarantine as {name}"))?;
        if agent.power == Power::On && server.status != ServerStatus::Running {
            let a = self
                .compute
                .power_on(id)
                .await
                .doing(|| format!("powering server {id} on to restore it"))?;
            self.wait(&[a.id], report).await?;
        }
        if agent.power == Power::On
            && self
                .wait_for_device(agent, &BTreeSet::new())
                .await?
                .is_none()
        {
            report.warning = Some(format!(
                "no device came online within {}s of the restore; the agent is unhealthy until it does",
                self.options.device_timeout.as_secs()
            ));
        }
        self.compute
            .update_server(id, Some(name), &operation::done(&restored))
            .await
            .map(|_| ())
            .doing(|| format!("clearing the restore record on server {id}"))
            .map_err(Stop::Failed)
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
        let deadline = self.options.clock.now() + SHUTDOWN_WAIT;
        loop {
            let status = self.compute.get_server(server.id).await?.map(|s| s.status);
            if status == Some(ServerStatus::Off) {
                return Ok(());
            }
            if self.options.clock.now() >= deadline {
                break;
            }
            self.options.clock.sleep(self.options.device_poll).await;
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
