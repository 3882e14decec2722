//! Renderings of a [`super::Plan`] for people: [`text`] for terminals (Terraform-like, colour on
//! a TTY only) and [`markdown`] for pull-request comments. Machines read the plan's JSON form.

pub mod markdown;
pub mod text;

use super::{Action, Note, Plan};
use similar::{ChangeTag, TextDiff};
use std::collections::BTreeMap;

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
        | Action::Restore { .. } => "~",
    }
}

/// One line saying what the action does and why.
pub fn headline(action: &Action) -> String {
    match action {
        Action::Create {
            agent,
            server_type,
            location,
            image,
            reason,
            ..
        } => format!("create server {agent} ({server_type}, {location}, {image}): {reason}"),
        Action::Replace {
            agent,
            server_id,
            changes,
            ..
        } => {
            let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
            format!(
                "REPLACE server {agent} (id {server_id}): {} cannot change in place",
                fields.join(", ")
            )
        }
        Action::Resize {
            agent,
            server_id,
            from,
            to,
        } => format!(
            "resize server {agent} (id {server_id}) {from} → {to}: power off, change type, power on (DOWNTIME)"
        ),
        Action::Relabel {
            agent, server_id, ..
        } => format!("update labels of server {agent} (id {server_id})"),
        Action::PowerOn { agent, server_id } => {
            format!("power on server {agent} (id {server_id}): spec says `power: on`")
        }
        Action::PowerOff { agent, server_id } => {
            format!("power off server {agent} (id {server_id}): spec says `power: off`")
        }
        Action::Delete {
            agent,
            server_id,
            devices,
            reason,
            ..
        } => format!(
            "delete server {agent} (id {server_id}) and {} device(s): {reason}",
            devices.len()
        ),
        Action::DeleteDevice {
            agent,
            device_id,
            name,
            reason,
        } => format!(
            "delete device {name} (id {}) of {agent}: {reason}",
            device_id.0
        ),
        Action::Quarantine {
            agent,
            server_id,
            devices,
            grace,
            reason,
            ..
        } => format!(
            "QUARANTINE server {agent} (id {server_id}): {reason}; power off, deauthorize {} device(s), delete after {grace} unless the spec comes back",
            devices.len()
        ),
        Action::Restore {
            agent,
            server_id,
            devices,
            reason,
        } => format!(
            "{reason}: server {agent} (id {server_id}) renamed back, {} device(s) re-authorized, powered on",
            devices.len()
        ),
    }
}

/// A unified diff of the values an action changes, when it changes values.
pub fn diff(action: &Action) -> Option<String> {
    let (old, new) = match action {
        Action::Replace { changes, .. } => (
            changes
                .iter()
                .map(|c| format!("{}: {}", c.field, c.from))
                .collect::<Vec<_>>()
                .join("\n"),
            changes
                .iter()
                .map(|c| format!("{}: {}", c.field, c.to))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Action::Resize { from, to, .. } => (format!("type: {from}"), format!("type: {to}")),
        Action::Relabel { from, to, .. } => (labels_text(from), labels_text(to)),
        _ => return None,
    };
    let diff = TextDiff::from_lines(&old, &new);
    let mut out = String::new();
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            ChangeTag::Delete => "-",
            ChangeTag::Insert => "+",
            ChangeTag::Equal => " ",
        };
        out.push_str(sign);
        out.push(' ');
        out.push_str(change.value().trim_end_matches('\n'));
        out.push('\n');
    }
    Some(out)
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a suspended plan says in every rendering.
pub const SUSPENDED: &str = "SUSPENDED: `spec.suspend: true` in fleet.yaml pauses every change. This plan is reported; nothing of it is applied until the setting is removed.";

/// `Plan: 3 to create, 1 to replace, 2 to delete. Cost: +€12.40/month. API calls: ~41.`
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    if plan.is_empty() {
        let open = plan
            .notes
            .iter()
            .filter(|n| {
                matches!(
                    n,
                    Note::Deferred { .. }
                        | Note::ReplaceBlocked { .. }
                        | Note::NameTaken { .. }
                        | Note::Unhealthy { .. }
                        | Note::Waiting { .. }
                )
            })
            .count();
        let line = if open == 0 {
            "No changes. The fleet matches its spec.".to_owned()
        } else {
            format!(
                "No changes in this run, but the fleet does not match its spec yet: {open} note(s) above need a later run or attention."
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
    if s.restore > 0 {
        parts.push(format!("{} to restore from quarantine", s.restore));
    }
    let sign = if s.monthly_cost_delta.0 >= 0 { "+" } else { "" };
    let quarantined = quarantined_part(plan)
        .map(|p| format!(" {p}."))
        .unwrap_or_default();
    format!(
        "Plan: {}. Cost: {sign}{}/month.{quarantined} API calls: ~{}.",
        parts.join(", "),
        s.monthly_cost_delta,
        s.api_calls
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
