//! The terminal rendering: one line per action with its symbol and reason, its fields under
//! it, what needs attention, what was left alone, the summary and budgets, and the refusal.

use super::{budget_use, details, headline, needs_attention, summary_line, symbol};
use crate::escape::terminal;
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
            terminal(&headline(action))
        );
        for (sign, line) in details(action) {
            let line = terminal(&line);
            let painted = match sign {
                '+' => paint(GREEN, &format!("+ {line}")),
                '-' => paint(RED, &format!("- {line}")),
                '~' => paint(YELLOW, &format!("~ {line}")),
                _ => format!("# {line}"),
            };
            let _ = writeln!(out, "        {painted}");
        }
    }
    let (attention, other): (Vec<&Note>, Vec<&Note>) =
        plan.notes.iter().partition(|n| needs_attention(n));
    if !attention.is_empty() {
        let _ = writeln!(out, "\n{}", paint(YELLOW, "Needs attention:"));
        for note in attention {
            let _ = writeln!(out, "  ! {}", terminal(&note_line(note)));
        }
    }
    if !other.is_empty() {
        let _ = writeln!(out, "\nNoticed and left alone:");
        for note in other {
            let _ = writeln!(out, "  - {}", terminal(&note_line(note)));
        }
    }
    let _ = writeln!(out, "\n{}", paint(BOLD, &summary_line(plan)));
    if !plan.is_empty() {
        let (disruptions, deletions) = budget_use(plan);
        let _ = writeln!(
            out,
            "Disruption budget: {disruptions}. Deletion budget: {deletions}."
        );
    }
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
            let _ = writeln!(out, "  - {}", terminal(reason));
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

/// One line for a note, unescaped: each renderer escapes it for its output.
pub fn note_line(note: &Note) -> String {
    match note {
        Note::Unmanaged { count, names } => {
            let shown: Vec<String> = names.iter().take(10).cloned().collect();
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
        } => format!(
            "server {} (id {server_id}) has no spec but is kept: {}",
            agent, reason
        ),
        Note::Unhealthy { agent, server_id } => format!(
            "agent {} is UNHEALTHY: server {server_id} runs but no device of it is online in the tailnet",
            agent
        ),
        Note::Waiting {
            agent,
            server_id,
            status,
        } => format!(
            "server {} (id {server_id}) is {status}; tether waits for it to settle",
            agent
        ),
        Note::Deferred {
            agent,
            action,
            reason,
        } => format!("{action} of {} waits for a later run: {reason}", agent),
        Note::ReplaceBlocked {
            agent,
            server_id,
            fields,
        } => format!(
            "agent {} needs a new server ({} changed) but server {server_id} is protected: tether will not replace it; remove `protect` (and any Hetzner delete protection) to let it, or revert the change",
            agent,
            fields.join(", ")
        ),
        Note::ResizeBlocked {
            agent,
            server_id,
            from,
            to,
            reason,
        } => format!(
            "agent {} is not resized from {} to {}: {}; only a new server can have that type, and server {server_id} is protected, so tether will not replace it (the server keeps its type). Choose a type with at least the server's disk, or remove `protect` to let tether replace the server",
            agent, from, to, reason
        ),
        Note::NameHeld {
            agent,
            server_id,
            name,
            other_id,
        } => format!(
            "agent {} runs on server {server_id} under the name {}: server {other_id} holds the name {} and is not this fleet's; tether deletes neither. Rename or remove server {other_id} (or rename the agent) to clear this",
            agent, name, agent
        ),
        Note::NameTaken { agent, server_id } => format!(
            "agent {} is not created: server {server_id} already has that name and is not this fleet's (no matching `tether/fleet` and `tether/agent` labels); rename the agent or remove that server",
            agent
        ),
        Note::DeviceNotOwned { agent, device_id } => format!(
            "device {} is named {} but tether cannot prove this fleet owns it (not in the fleet's device record, not attached to its server); left alone",
            &device_id.to_string(),
            agent
        ),
        Note::PriceUnknown {
            server_type,
            location,
        } => format!(
            "no price known for {} in {}; counted as €0",
            server_type, location
        ),
        Note::Quarantined {
            agent,
            server_id,
            since,
            commit,
            delete_after,
        } => format!(
            "agent {} is QUARANTINED: server {server_id} powered off since {} (spec removed in commit {}); deleted after {} unless the spec comes back with the same subscription, or earlier with `tether agent purge {}`",
            agent,
            since,
            commit.as_deref().unwrap_or("unknown"),
            delete_after,
            agent
        ),
        Note::HealHeld { reason } => format!(
            "self-healing is HELD for this pass: {}; no problem is counted and no remedy taken",
            reason
        ),
        Note::Healing {
            agent,
            server_id,
            message,
            failed,
        } => format!(
            "agent {} {} server {server_id}: {}",
            agent,
            if *failed { "is FAILED:" } else { "is healing:" },
            message
        ),
        Note::RolloutHalted {
            agent,
            version,
            reason,
        } => format!(
            "runtime {} of agent {} is held: {}; change the runtime in the spec to roll out again",
            version, agent, reason
        ),
    }
}
