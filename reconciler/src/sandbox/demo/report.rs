//! What the demo shows of the emulated world: the server inventory after a step, and the closing
//! [`Summary`] with the status branch's log.

use super::{Demo, DemoError, step};
use crate::audit::STATUS_BRANCH;
use git2::Repository;
use std::io::Write;
use std::path::Path;

/// What the demo ended with, as tether counted it and as the emulators hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Agents in the last applied spec.
    pub agents: usize,
    /// Servers in the emulated Hetzner project.
    pub servers: usize,
    /// Online devices in the emulated tailnet.
    pub devices_online: usize,
    /// Actions tether carried out.
    pub actions_done: usize,
    /// Requests the Hetzner emulator served.
    pub hetzner_requests: u64,
    /// Requests the Tailscale emulator served.
    pub tailscale_requests: u64,
    /// Commits on the status branch.
    pub status_commits: usize,
}

impl<W: Write> Demo<'_, W> {
    /// Prints the servers of the emulated project and whether their device is online.
    pub(super) fn inventory(&mut self) {
        let mut servers = self.stack.hetzner.servers();
        servers.sort_by(|a, b| a.name.cmp(&b.name));
        let devices = self.stack.tailscale.devices();
        let width = servers
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .max(17);
        self.say(&format!(
            "  {:<width$} {:<8} {:<8} {:<6} {:<10} device online",
            "server", "id", "status", "type", "location"
        ));
        for s in servers {
            let online = devices
                .iter()
                .any(|d| d.hostname == s.name && d.connected_to_control);
            let line = format!(
                "  {:<width$} {:<8} {:<8} {:<6} {:<10} {}",
                s.name,
                s.id,
                s.status.name(),
                s.server_type,
                s.location,
                if online { "yes" } else { "no" }
            );
            self.say(&line);
        }
    }

    /// Counts what the demo ended with, prints it and the status branch's log.
    pub(super) fn summary(&mut self) -> Result<Summary, DemoError> {
        let status_log = status_log(&self.repo).map_err(step("summary"))?;
        let summary = Summary {
            agents: self.agents_applied,
            servers: self.stack.hetzner.servers().len(),
            devices_online: self
                .stack
                .tailscale
                .devices()
                .iter()
                .filter(|d| d.connected_to_control)
                .count(),
            actions_done: self.actions_done,
            hetzner_requests: self.stack.hetzner.requests().total(),
            tailscale_requests: self.stack.tailscale.requests().total(),
            status_commits: status_log.len(),
        };
        self.heading(10, "Summary");
        for (what, n) in [
            (
                "agents in the last applied spec",
                summary.agents.to_string(),
            ),
            (
                "servers in the Hetzner project",
                summary.servers.to_string(),
            ),
            (
                "devices online in the tailnet",
                summary.devices_online.to_string(),
            ),
            ("actions carried out", summary.actions_done.to_string()),
            (
                "API calls (Hetzner + Tailscale)",
                format!(
                    "{} + {}",
                    summary.hetzner_requests, summary.tailscale_requests
                ),
            ),
            ("status commits", summary.status_commits.to_string()),
        ] {
            self.say(&format!("  {what:<34} {n}"));
        }
        self.say(&format!("\n$ git log --oneline {STATUS_BRANCH}"));
        for line in &status_log {
            self.say(line);
        }
        self.say(&format!(
            "\ndemo finished in {:.1}s",
            self.started.elapsed().as_secs_f32()
        ));
        Ok(summary)
    }
}

/// `git log --oneline` of the status branch.
fn status_log(repo: &Path) -> Result<Vec<String>, git2::Error> {
    let r = Repository::open(repo)?;
    let mut walk = r.revwalk()?;
    walk.push(r.revparse_single(STATUS_BRANCH)?.id())?;
    walk.map(|id| {
        let c = r.find_commit(id?)?;
        Ok(format!(
            "{} {}",
            &c.id().to_string()[..7],
            c.summary().unwrap_or("")
        ))
    })
    .collect()
}
