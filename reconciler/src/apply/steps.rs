//! The steps of each action kind. Every step records the provider ids it touched in its
//! [`ActionReport`], succeeds or fails on its own, and never panics.

use super::Options;
use super::enrolment::DeviceWatch;
use super::error::{Doing, StepError};
use super::keys::{self, KeyError};
use super::report::{ActionReport, Outcome};
use crate::cloud::tailscale::{CreatedAuthKey, DeviceId, Tailnet};
use crate::cloud::{ActionId, ActionStatus, Compute, Server, ServerId, hetzner, tailscale};
use crate::operation::{self, Operation};
use crate::plan::{Action, safety};
use std::sync::atomic::{AtomicUsize, Ordering};
use tether_schema::{Agent, Fleet, labels};
use tracing::Instrument;

mod bring_up;
mod resize;

/// Everything a step needs.
pub(super) struct Ctx<'a, C, T> {
    pub fleet: &'a Fleet,
    pub compute: &'a C,
    pub tailnet: &'a T,
    pub options: &'a Options,
    pub watch: &'a DeviceWatch,
    pub deletions: AtomicUsize,
    pub budget: usize,
    pub runtime: Option<&'a crate::runtime::Service>,
}

/// Why a step did not complete.
pub(super) enum Stop {
    /// It was attempted and failed.
    Failed(StepError),
    /// It was not carried out, on purpose (ownership changed, budget used up, already gone).
    Skipped(String),
    /// It is another process's to do ([`Outcome::Deferred`]).
    Deferred(String),
}

impl From<StepError> for Stop {
    fn from(error: StepError) -> Self {
        Stop::Failed(error)
    }
}

impl From<hetzner::Error> for Stop {
    fn from(error: hetzner::Error) -> Self {
        Stop::Failed(error.into())
    }
}

impl From<tailscale::Error> for Stop {
    fn from(error: tailscale::Error) -> Self {
        Stop::Failed(error.into())
    }
}

impl From<KeyError> for Stop {
    fn from(error: KeyError) -> Self {
        Stop::Failed(error.into())
    }
}

pub(super) type StepResult = Result<(), Stop>;

impl<C: Compute, T: Tailnet> Ctx<'_, C, T> {
    /// Runs one action and reports how it ended.
    pub async fn run(&self, action: &Action) -> ActionReport {
        let span = tracing::info_span!("action", action = action.kind(), agent = action.agent());
        async {
            let mut report = ActionReport::new(action, Outcome::Done);
            let result = match action {
                Action::Create { agent, labels, .. } => match self.agent(agent) {
                    Ok(a) => {
                        let project = labels.get(labels::PROJECT).map(String::as_str);
                        self.create(a, project, &mut report).await
                    }
                    Err(e) => Err(e),
                },
                Action::Replace {
                    agent,
                    server_id,
                    old_devices,
                    labels,
                    ..
                } => match self.agent(agent) {
                    Ok(a) => {
                        let project = labels.get(labels::PROJECT).map(String::as_str);
                        self.replace(a, *server_id, old_devices, project, &mut report)
                            .await
                    }
                    Err(e) => Err(e),
                },
                Action::Resize {
                    agent,
                    server_id,
                    to,
                    ..
                } => match self.agent(agent) {
                    Ok(a) => self.resize(a, *server_id, to, &mut report).await,
                    Err(e) => Err(e),
                },
                Action::Relabel {
                    agent,
                    server_id,
                    to,
                    ..
                } => self.relabel(agent, *server_id, to, &mut report).await,
                Action::PowerOn {
                    agent, server_id, ..
                } => self.power(agent, *server_id, true, &mut report).await,
                Action::PowerOff {
                    agent, server_id, ..
                } => self.power(agent, *server_id, false, &mut report).await,
                Action::Delete {
                    agent,
                    server_id,
                    devices,
                    ..
                } => self.delete(agent, *server_id, devices, &mut report).await,
                Action::Quarantine {
                    agent,
                    server_id,
                    devices,
                    commit,
                    ..
                } => {
                    self.quarantine(agent, *server_id, devices, commit.as_deref(), &mut report)
                        .await
                }
                Action::Restore {
                    agent,
                    server_id,
                    name,
                    devices,
                    ..
                } => match self.agent(agent) {
                    Ok(a) => {
                        self.restore(a, *server_id, name, devices, &mut report)
                            .await
                    }
                    Err(e) => Err(e),
                },
                Action::Heal {
                    agent,
                    server_id,
                    remedy,
                    attempt,
                    old_devices,
                    ..
                } => match self.agent(agent) {
                    Ok(a) => {
                        let remedy = (*remedy, *attempt);
                        self.heal(a, *server_id, remedy, old_devices, &mut report)
                            .await
                    }
                    Err(e) => Err(e),
                },
                Action::DeleteDevice { device_id, .. } => {
                    report.device_ids.push(device_id.clone());
                    self.tailnet
                        .delete_device(device_id)
                        .await
                        .map(|_| ())
                        .map_err(Stop::from)
                }
                Action::UpdateRuntime { server_id, .. } => {
                    report.server_id = Some(*server_id);
                    Err(Stop::Deferred(
                        crate::apply::runtime::NO_AGENT_API.to_owned(),
                    ))
                }
            };
            match result {
                Ok(()) => tracing::info!(server = report.server_id.map(|s| s.0), "done"),
                Err(Stop::Skipped(reason)) => {
                    tracing::warn!(%reason, "skipped");
                    report.outcome = Outcome::Skipped { reason };
                }
                Err(Stop::Deferred(reason)) => {
                    tracing::info!(%reason, "deferred");
                    report.outcome = Outcome::Deferred { reason };
                }
                Err(Stop::Failed(error)) => {
                    let kind = error.kind();
                    tracing::error!(reason = %error, %kind, "failed");
                    report.outcome = Outcome::failed(&error);
                }
            }
            report
        }
        .instrument(span)
        .await
    }

    fn agent(&self, name: &str) -> Result<&Agent, Stop> {
        self.fleet.agents.get(name).ok_or_else(|| {
            Stop::Failed(StepError::NotInFleet {
                agent: name.to_owned(),
            })
        })
    }

    /// Mints a one-off auth key for `agent`, runs `run` with it, and revokes the key unless
    /// `run` saw the VM's new device enrol (it pushed that device to `report.device_ids`): a
    /// one-off key that registered its device is spent and can register nothing more
    /// (`docs/decisions/028-spent-keys.md`). The one place every step that hands a VM a key
    /// goes through. A failed revocation is a warning; the next pass's [`keys::sweep`] revokes
    /// every key still valid.
    pub(super) async fn with_key(
        &self,
        agent: &Agent,
        report: &mut ActionReport,
        run: impl AsyncFnOnce(&CreatedAuthKey, &mut ActionReport) -> StepResult,
    ) -> StepResult {
        let fleet = &self.fleet.settings.name;
        let key = keys::mint(
            self.tailnet,
            fleet,
            agent,
            self.options.key_expiry,
            &self.options.clock,
        )
        .await?;
        report.key_id = Some(key.key.id.clone());
        let devices_before = report.device_ids.len();
        let result = run(&key, report).await;
        if report.device_ids.len() > devices_before {
            tracing::debug!(key = %key.key.id, "the key's device enrolled: the one-off key is spent, not revoked");
        } else if let Err(e) = keys::revoke(self.tailnet, &key.key.id).await {
            report.warning = Some(e.to_string());
        }
        result
    }

    async fn relabel(
        &self,
        agent: &str,
        id: ServerId,
        to: &std::collections::BTreeMap<String, String>,
        report: &mut ActionReport,
    ) -> StepResult {
        report.server_id = Some(id);
        self.owned(agent, id).await?;
        self.compute
            .update_server(id, None, to)
            .await
            .map(|_| ())
            .map_err(Stop::from)
    }

    async fn power(
        &self,
        agent: &str,
        id: ServerId,
        on: bool,
        report: &mut ActionReport,
    ) -> StepResult {
        report.server_id = Some(id);
        self.owned(agent, id).await?;
        let a = if on {
            self.compute.power_on(id).await
        } else {
            self.compute.power_off(id).await
        }?;
        self.wait(&[a.id], report).await
    }

    /// Takes one unit of the run's deletion budget; `false` when it is used up.
    fn take_deletion(&self) -> bool {
        self.deletions
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.budget).then_some(n + 1)
            })
            .is_ok()
    }

    /// Re-checks ownership on the live server, takes one unit of the deletion budget, deletes
    /// the server, then its devices.
    async fn delete(
        &self,
        agent: &str,
        id: ServerId,
        devices: &[DeviceId],
        report: &mut ActionReport,
    ) -> StepResult {
        report.server_id = Some(id);
        let live = match self.compute.get_server(id).await? {
            Some(server) => server,
            None => {
                report.warning = Some("the server was already gone".to_owned());
                return self.delete_devices(devices, report).await;
            }
        };
        self.check_ownership(agent, &live)?;
        if safety::is_protected(&live) {
            return Err(Stop::Skipped(format!(
                "server {id} is protected (`tether/protect=true` or Hetzner delete protection); not deleting it"
            )));
        }
        if !self.take_deletion() {
            return Err(Stop::Skipped(format!(
                "the deletion budget of this run ({}) is used up",
                self.budget
            )));
        }
        let action = self.compute.delete_server(id).await?;
        report.deleted_server = Some(id);
        if let Some(action) = action {
            self.wait(&[action.id], report).await?;
        }
        let mut all = devices.to_vec();
        for late in self.attached_devices(&live).await? {
            if !all.contains(&late) {
                all.push(late);
            }
        }
        self.delete_devices(&all, report).await
    }

    /// Records on `server` that `op` has reached `step` ([`operation::at_step`]), before the
    /// step's first mutation, and returns the server as updated.
    pub(super) async fn record(
        &self,
        server: &Server,
        op: Operation,
        step: &str,
    ) -> Result<Server, Stop> {
        let labels = operation::at_step(&server.labels, op, step);
        if labels == server.labels {
            return Ok(server.clone());
        }
        self.compute
            .update_server(server.id, None, &labels)
            .await
            .doing(|| format!("recording {op} at `{step}` on server {}", server.id))
            .map_err(Stop::Failed)
    }

    /// The live server, if it still carries this fleet's and `agent`'s labels.
    pub(super) async fn owned(&self, agent: &str, id: ServerId) -> Result<Server, Stop> {
        let server = self
            .compute
            .get_server(id)
            .await?
            .ok_or_else(|| Stop::Skipped(format!("server {id} no longer exists")))?;
        self.check_ownership(agent, &server)?;
        Ok(server)
    }

    fn check_ownership(&self, agent: &str, server: &Server) -> StepResult {
        if safety::owns_server(server, self.fleet.settings.name.as_str(), agent) {
            Ok(())
        } else {
            Err(Stop::Skipped(format!(
                "server {} no longer carries the labels tether/fleet={} and tether/agent={agent}; not touching it",
                server.id, self.fleet.settings.name
            )))
        }
    }

    /// Fails the create when the server came back without this fleet's and agent's labels:
    /// tether could never prove it owns it, so it must not report it as its own.
    fn verify_labels(&self, agent: &Agent, server: &Server) -> StepResult {
        if safety::owns_server(
            server,
            self.fleet.settings.name.as_str(),
            agent.name.as_str(),
        ) {
            return Ok(());
        }
        Err(Stop::Failed(StepError::Unlabelled {
            server_id: server.id,
            name: server.name.clone(),
            fleet: self.fleet.settings.name.to_string(),
            agent: agent.name.to_string(),
        }))
    }

    pub(super) async fn wait(&self, ids: &[ActionId], report: &mut ActionReport) -> StepResult {
        report.action_ids.extend_from_slice(ids);
        let done = super::gate::waiting(self.compute.wait_for_actions(ids)).await?;
        for action in done {
            if let ActionStatus::Error { code, message } = action.status {
                return Err(Stop::Failed(StepError::ActionFailed {
                    id: action.id,
                    command: action.command,
                    code,
                    message,
                }));
            }
        }
        Ok(())
    }
}
