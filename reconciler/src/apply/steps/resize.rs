//! The resize as a resumable operation: recorded on the server (`tether/operation=resize.<step>`)
//! before it is powered off, the type changed, the server powered on as its spec says, the
//! record removed. A refusal never leaves the server off.
//!
//! # Guarantees
//! - The server is powered on again (when the spec says `power: on`) whatever step failed,
//!   before the failure is reported; if even that fails, the record stays on the server and
//!   the next pass plans the resize (or, when it cannot be made, the power-on) again.
//! - Every step is idempotent: a server already off is not powered off, one already of the
//!   wanted type is not changed.

use super::{Ctx, StepResult, Stop};
use crate::apply::error::{Doing, StepError};
use crate::apply::report::ActionReport;
use crate::cloud::tailscale::Tailnet;
use crate::cloud::{Compute, Server, ServerId, ServerStatus};
use crate::operation::{self, Operation};
use tether_schema::{Agent, Power};

impl<C: Compute, T: Tailnet> Ctx<'_, C, T> {
    /// Resizes server `id` of `agent` to type `to`.
    pub(in crate::apply) async fn resize(
        &self,
        agent: &Agent,
        id: ServerId,
        to: &str,
        report: &mut ActionReport,
    ) -> StepResult {
        report.server_id = Some(id);
        let server = self.owned(agent.name.as_str(), id).await?;
        let server = self
            .record(&server, Operation::Resize, "changing-type")
            .await?;
        let changed = self.change_type(&server, to, report).await;
        if agent.power == Power::On
            && let Err(e) = self.start(id, report).await
        {
            return Err(match (changed, e) {
                (Err(Stop::Failed(first)), Stop::Failed(then)) => {
                    Stop::Failed(StepError::LeftOff {
                        server: id,
                        first: Box::new(first),
                        then: Box::new(then),
                    })
                }
                (Err(Stop::Failed(first)), Stop::Skipped(_)) => Stop::Failed(first),
                (_, e) => e,
            });
        }
        changed?;
        let live = self.owned(agent.name.as_str(), id).await?;
        self.compute
            .update_server(id, None, &operation::done(&live.labels))
            .await
            .map(|_| ())
            .doing(|| format!("clearing the resize record on server {id}"))
            .map_err(Stop::Failed)
    }

    /// Powers `server` off (unless it is off) and changes its type to `to` (unless it has it).
    async fn change_type(
        &self,
        server: &Server,
        to: &str,
        report: &mut ActionReport,
    ) -> StepResult {
        if server.server_type == to {
            return Ok(());
        }
        if server.status != ServerStatus::Off {
            let a = self
                .compute
                .power_off(server.id)
                .await
                .doing(|| format!("powering off server {} to resize it", server.id))?;
            self.wait(&[a.id], report).await?;
        }
        let a = self
            .compute
            .change_type(server.id, to, false)
            .await
            .doing(|| {
                format!(
                    "changing server {} from {} to {to}",
                    server.id, server.server_type
                )
            })?;
        self.wait(&[a.id], report).await
    }

    /// Powers server `id` on unless it already runs.
    async fn start(&self, id: ServerId, report: &mut ActionReport) -> StepResult {
        let live = self
            .compute
            .get_server(id)
            .await?
            .ok_or(StepError::Vanished {
                server: id,
                during: "its resize",
            })?;
        if matches!(live.status, ServerStatus::Running | ServerStatus::Starting) {
            return Ok(());
        }
        let a = self
            .compute
            .power_on(id)
            .await
            .doing(|| format!("powering server {id} on after its resize"))?;
        self.wait(&[a.id], report).await
    }
}
