//! The terminal rendering: one line per action with its symbol and reason, diffs under the
//! actions that change values, notes, the summary line, and the refusal if any.

use super::{diff, headline, summary_line, symbol};
use crate::plan::{Action, Note, Plan};
use std::fmt::Write as _;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Renders `plan`; `color` adds ANSI colours (use only on a TTY).
pub fn render(plan: &Plan, color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    };
    let mut out = String::new();
    let revision = plan
        .revision
        .as_deref()
        .map(|r| format!(" at {}", &r[..r.len().min(12)]))
        .unwrap_or_default();
    let _ = writeln!(out, "tether plan for fleet {}{revision}", plan.fleet);
    if !plan.actions.is_empty() {
        let _ = writeln!(out);
    }
    for action in &plan.actions {
        let code = match action {
            Action::Create { .. } => GREEN,
            Action::Delete { .. } | Action::DeleteDevice { .. } | Action::Replace { .. } => RED,
            _ => YELLOW,
        };
        let _ = writeln!(
            out,
            "  {} {}",
            paint(code, &format!("{:>3}", symbol(action))),
            headline(action)
        );
        if let Some(d) = diff(action) {
            for line in d.lines() {
                let painted = match line.chars().next() {
                    Some('+') => paint(GREEN, line),
                    Some('-') => paint(RED, line),
                    _ => line.to_owned(),
                };
                let _ = writeln!(out, "        {painted}");
            }
        }
    }
    if !plan.notes.is_empty() {
        let _ = writeln!(out, "\nNoticed and left alone:");
        for note in &plan.notes {
            let _ = writeln!(out, "  ! {}", note_line(note));
        }
    }
    let _ = writeln!(out, "\n{}", paint(BOLD, &summary_line(plan)));
    if let Some(refusal) = &plan.refusal {
        let _ = writeln!(
            out,
            "\n{}",
            paint(
                RED,
                "REFUSED: this plan breaks the fleet's safety policy and will not be applied:"
            )
        );
        for reason in &refusal.reasons {
            let _ = writeln!(out, "  - {reason}");
        }
        let _ = writeln!(
            out,
            "  Nothing was changed. To proceed: {}.",
            refusal.how_to_proceed
        );
    }
    if plan.suspended {
        let _ = writeln!(out, "\n{}", paint(BOLD, super::SUSPENDED));
    }
    let _ = writeln!(out, "\nplan hash: {}", plan.plan_hash);
    out
}

/// One line for a note.
pub fn note_line(note: &Note) -> String {
    match note {
        Note::Unmanaged { count, names } => {
            let shown: Vec<&str> = names.iter().take(10).map(String::as_str).collect();
            let more = if names.len() > 10 {
                format!(" and {} more", names.len() - 10)
            } else {
                String::new()
            };
            format!(
                "{count} server(s) not managed by tether (no matching `tether/fleet` and `tether/agent` labels): {}{more}",
                shown.join(", ")
            )
        }
        Note::OrphanKept {
            agent,
            server_id,
            reason,
        } => format!("server {agent} (id {server_id}) has no spec but is kept: {reason}"),
        Note::Unhealthy { agent, server_id } => format!(
            "agent {agent} is UNHEALTHY: server {server_id} runs but no device of it is online in the tailnet"
        ),
        Note::Waiting {
            agent,
            server_id,
            status,
        } => format!("server {agent} (id {server_id}) is {status}; tether waits for it to settle"),
        Note::Deferred {
            agent,
            action,
            reason,
        } => format!("{action} of {agent} waits for a later run: {reason}"),
        Note::ReplaceBlocked {
            agent,
            server_id,
            fields,
        } => format!(
            "agent {agent} needs a new server ({} changed) but server {server_id} is protected: tether will not replace it; remove `protect` (and any Hetzner delete protection) to let it, or revert the change",
            fields.join(", ")
        ),
        Note::NameTaken { agent, server_id } => format!(
            "agent {agent} is not created: server {server_id} already has that name and is not this fleet's (no matching `tether/fleet` and `tether/agent` labels); rename the agent or remove that server"
        ),
        Note::DeviceNotOwned { agent, device_id } => format!(
            "device {device_id} is named {agent} but tether cannot prove this fleet owns it (not in the fleet's device record, not attached to its server); left alone"
        ),
        Note::PriceUnknown {
            server_type,
            location,
        } => format!("no price known for {server_type} in {location}; counted as €0"),
        Note::Quarantined {
            agent,
            server_id,
            since,
            commit,
            delete_after,
        } => format!(
            "agent {agent} is QUARANTINED: server {server_id} powered off since {since} (spec removed in commit {}); deleted after {delete_after} unless the spec comes back with the same subscription, or earlier with `tether agent purge {agent}`",
            commit.as_deref().unwrap_or("unknown")
        ),
    }
}
