//! Renderings of a [`super::Plan`] for people: [`text`] for terminals (Terraform-like, colour on
//! a TTY only) and [`markdown`] for pull-request comments. Machines read the plan's JSON form.
//!
//! Both draw the same parts from here: each action's [`headline`] and its field-level
//! [`details`], the notes split into [`needs_attention`] and the rest, and the [`summary_line`].

pub mod budget;
pub mod markdown;
pub mod text;

use super::fields::{self, NOT_SET, UNKNOWN};
use super::{Action, Change, Note, Plan};

/// What happens to an agent whose server is replaced.
pub const REPLACE_CONSEQUENCE: &str = "a new server is created (new public IPv4/IPv6, the disk is not kept, the device re-enrols in the tailnet); the old one is deleted once the new one is online";
/// What a resize does to the agent.
pub const RESIZE_CONSEQUENCE: &str =
    "the server is powered off while its type changes (downtime); disk and IPs are kept";

/// What a runtime update does to the agent.
pub const RUNTIME_CONSEQUENCE: &str = "the on-VM agent applies it and restarts the runtime; server, disk and IPs are kept; a wave that is not healthy halts the rollout and rolls back";

/// The Terraform-style symbol of an action.
pub fn symbol(action: &Action) -> &'static str {
    match action {
        Action::Create { .. } => "+",
        Action::Delete { .. } | Action::DeleteDevice { .. } => "-",
        Action::Replace { .. } => "-/+",
        Action::Resize { .. }
        | Action::Relabel { .. }
        | Action::PowerOn { .. }
        | Action::PowerOff { .. }
        | Action::Quarantine { .. }
        | Action::Restore { .. }
        | Action::UpdateRuntime { .. } => "~",
        Action::Heal { remedy, .. } => match remedy {
            super::heal::Remedy::Replace => "-/+",
            _ => "~",
        },
    }
}

/// One line saying what the action does and why, unescaped: each renderer escapes it for
/// its output.
pub fn headline(action: &Action) -> String {
    match action {
        Action::Create { agent, reason, .. } => {
            format!("create server {}: {reason}", agent)
        }
        Action::Replace {
            agent,
            server_id,
            changes,
            ..
        } => {
            let fields: Vec<String> = changes
                .iter()
                .filter(|c| c.forces_replacement)
                .map(|c| c.field.clone())
                .collect();
            format!(
                "REPLACE server {} (id {server_id}): {} cannot change in place",
                agent,
                fields.join(", ")
            )
        }
        Action::Resize {
            agent, server_id, ..
        } => format!(
            "resize server {} (id {server_id}): power off, change type, power on (DOWNTIME)",
            agent
        ),
        Action::Relabel {
            agent, server_id, ..
        } => format!("update labels of server {} (id {server_id})", agent),
        Action::PowerOn { agent, server_id } => format!(
            "power on server {} (id {server_id}): spec says `power: on`",
            agent
        ),
        Action::PowerOff { agent, server_id } => format!(
            "power off server {} (id {server_id}): spec says `power: off`",
            agent
        ),
        Action::Delete {
            agent,
            server_id,
            server_name,
            devices,
            reason,
            ..
        } => {
            let of = if server_name == agent {
                String::new()
            } else {
                format!(" of agent {}", agent)
            };
            format!(
                "delete server {} (id {server_id}){of} and {} device(s): {}",
                server_name,
                devices.len(),
                reason
            )
        }
        Action::DeleteDevice {
            agent,
            device_id,
            name,
            reason,
        } => format!(
            "delete device {} (id {}) of {}: {reason}",
            name, &device_id.0, agent
        ),
        Action::Quarantine {
            agent,
            server_id,
            devices,
            grace,
            reason,
            ..
        } => format!(
            "QUARANTINE server {} (id {server_id}): {}; power off, deauthorize {} device(s), delete after {} unless the spec comes back",
            agent,
            reason,
            devices.len(),
            grace
        ),
        Action::Restore {
            agent,
            server_id,
            name,
            devices,
            reason,
        } => format!(
            "{}: server {} (id {server_id}) {}, {} device(s) re-authorized, powered on",
            reason,
            agent,
            if name == agent {
                "renamed back".to_owned()
            } else {
                format!("keeps the name {} (its own is taken)", name)
            },
            devices.len()
        ),
        Action::Heal {
            agent,
            server_id,
            remedy,
            reason,
            ..
        } => format!(
            "HEAL server {} (id {server_id}): {}; {}",
            agent,
            reason,
            match remedy {
                super::heal::Remedy::Rekey =>
                    "rebuild the same server with a fresh one-off auth key (its disk is wiped)",
                super::heal::Remedy::PowerCycle => "hard reset (power cycle)",
                super::heal::Remedy::Replace => REPLACE_CONSEQUENCE,
            }
        ),
        Action::UpdateRuntime {
            agent,
            server_id,
            from,
            to,
            wave,
            ..
        } => {
            let what = match from.as_deref() {
                Some(from) if from == to => format!("env of {to}"),
                from => format!("{} → {to}", from.unwrap_or("(unrecorded)")),
            };
            let canary = if *wave == 1 { " canary" } else { "" };
            format!(
                "update runtime of server {} (id {server_id}): {what} (in place, wave {wave}{canary})",
                agent
            )
        }
    }
}

/// The fields under an action, one `(sign, text)` per line: `+` set, `-` removed, `~` changed,
/// `#` what it means. Values are quoted where users write them freely (env); env values not
/// declared public are hidden ([`crate::plan::env`]).
pub fn details(action: &Action) -> Vec<(char, String)> {
    match action {
        Action::Create {
            server_type,
            location,
            image,
            labels,
            tags,
            ssh_keys,
            runtime_version,
            env,
            ..
        } => {
            let list = |items: &[String]| {
                if items.is_empty() {
                    NOT_SET.to_owned()
                } else {
                    items.join(", ")
                }
            };
            let mut lines = vec![
                ('+', format!("server type: {server_type}")),
                ('+', format!("location: {location}")),
                ('+', format!("image: {image}")),
                ('+', format!("ssh keys: {}", list(ssh_keys))),
                ('+', format!("tags: {}", list(tags))),
                ('+', format!("runtime version: {runtime_version}")),
            ];
            lines.extend(env.iter().map(|(k, v)| ('+', format!("env.{k}: {v}"))));
            lines.extend(labels.iter().map(|(k, v)| ('+', format!("label.{k}: {v}"))));
            lines
        }
        Action::Replace { changes, .. } => {
            let mut lines: Vec<(char, String)> = changes.iter().map(change_line).collect();
            lines.push(('#', REPLACE_CONSEQUENCE.to_owned()));
            lines
        }
        Action::Resize { from, to, .. } => vec![
            ('~', format!("server type: {from} → {to}")),
            ('#', RESIZE_CONSEQUENCE.to_owned()),
        ],
        Action::Relabel { from, to, .. } => fields::label_changes(from, to, true)
            .iter()
            .map(change_line)
            .collect(),
        Action::UpdateRuntime { changes, .. } => {
            let mut lines: Vec<(char, String)> = changes.iter().map(change_line).collect();
            lines.push(('#', RUNTIME_CONSEQUENCE.to_owned()));
            lines
        }
        _ => Vec::new(),
    }
}

fn change_line(c: &Change) -> (char, String) {
    let forces = if c.forces_replacement {
        "   # forces replacement"
    } else {
        ""
    };
    match c.from.as_deref() {
        None => ('~', format!("{}: {} {UNKNOWN}{forces}", c.field, c.to)),
        Some(NOT_SET) => ('+', format!("{}: {}{forces}", c.field, c.to)),
        Some(from) if c.to == NOT_SET => ('-', format!("{}: {from}{forces}", c.field)),
        Some(from) => ('~', format!("{}: {from} → {}{forces}", c.field, c.to)),
    }
}

/// Whether a note asks for a later run or a person: the fleet does not match its spec yet.
pub fn needs_attention(note: &Note) -> bool {
    matches!(
        note,
        Note::Deferred { .. }
            | Note::ReplaceBlocked { .. }
            | Note::ResizeBlocked { .. }
            | Note::NameTaken { .. }
            | Note::NameHeld { .. }
            | Note::Unhealthy { .. }
            | Note::Waiting { .. }
            | Note::HealHeld { .. }
            | Note::Healing { .. }
            | Note::RolloutHalted { .. }
    )
}

/// What a suspended plan says in every rendering.
pub const SUSPENDED: &str = "SUSPENDED: `spec.suspend: true` in fleet.yaml pauses every change. This plan is reported; nothing of it is applied until the setting is removed.";

/// `Plan: 3 to create, 1 to replace, 2 to delete. Cost: +€12.40/month. API calls: ~41.`, or
/// "No changes…" only when there is nothing to do and nothing needs attention.
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    if plan.is_empty() {
        let open = plan.notes.iter().filter(|n| needs_attention(n)).count();
        let line = if open == 0 {
            "No changes. The fleet matches its spec.".to_owned()
        } else {
            format!(
                "No changes in this run, but the fleet does not match its spec yet: {open} item(s) need attention."
            )
        };
        return match quarantined_part(plan) {
            Some(part) => format!("{line} {part}."),
            None => line,
        };
    }
    let mut parts = vec![
        format!("{} to create", s.create),
        format!("{} to replace", s.replace),
    ];
    if s.update > 0 {
        parts.push(format!("{} to update", s.update));
    }
    parts.push(format!("{} to delete", s.delete));
    if s.delete_devices > 0 {
        parts.push(format!("{} device(s) to delete", s.delete_devices));
    }
    if s.quarantine > 0 {
        parts.push(format!("{} to quarantine", s.quarantine));
    }
    if s.runtime_updates > 0 {
        parts.push(format!("{} runtime update(s) in place", s.runtime_updates));
    }
    if s.restore > 0 {
        parts.push(format!("{} to restore from quarantine", s.restore));
    }
    let quarantined = quarantined_part(plan)
        .map(|p| format!(" {p}."))
        .unwrap_or_default();
    format!(
        "Plan: {}. Cost: {}/month.{quarantined} API calls: ~{}.",
        parts.join(", "),
        cost_delta(plan),
        s.api_calls
    )
}

/// The monthly cost change with its sign: `+€9.52`.
pub fn cost_delta(plan: &Plan) -> String {
    let delta = &plan.summary.monthly_cost_delta;
    let sign = if delta.0 >= 0 { "+" } else { "" };
    format!("{sign}{delta}")
}

/// `1 of 2 allowed` for the disruption and the deletion budget.
pub fn budget_use(plan: &Plan) -> (String, String) {
    (
        format!(
            "{} of {} allowed",
            plan.summary.disruptions, plan.disruptions_allowed
        ),
        format!(
            "{} of {} allowed",
            plan.summary.deletions, plan.deletions_allowed
        ),
    )
}

/// `Quarantined: 2 servers, €9.98/month (powered off, still billed)`, when any are.
fn quarantined_part(plan: &Plan) -> Option<String> {
    let s = &plan.summary;
    let cost = s.quarantined_monthly_cost?;
    Some(format!(
        "Quarantined: {} server(s), {cost}/month (powered off, still billed)",
        s.quarantined
    ))
}
