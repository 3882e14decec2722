//! The pull-request rendering: summary first, then details in collapsible sections. Kept under
//! GitHub's 65,536-character comment limit by summarising the longest sections.

use super::{diff, headline, summary_line, symbol, text::note_line};
use crate::plan::Plan;
use std::fmt::Write as _;

/// GitHub's limit on a comment body, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;
/// The hidden marker that lets tether find and edit its own comment.
pub const MARKER: &str = "<!-- tether:plan -->";

/// Renders `plan` as Markdown of at most `limit` characters.
pub fn render(plan: &Plan, limit: usize) -> String {
    let head = header(plan);
    let details = details(plan);
    let full = format!("{head}{details}{}", footer(plan));
    if full.chars().count() <= limit {
        return full;
    }
    let short = format!(
        "{head}\n<details><summary>Details omitted</summary>\n\nThe full plan has {} actions and does not fit in a comment. Run `tether plan` locally or read the CI log for every line.\n</details>\n{}",
        plan.actions.len(),
        footer(plan)
    );
    short.chars().take(limit).collect()
}

fn header(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER}");
    let status = if plan.refusal.is_some() {
        "🛑 refused"
    } else if plan.suspended {
        "⏸️ suspended"
    } else if plan.is_empty() {
        "✅ no changes"
    } else {
        "📋 changes"
    };
    let revision = plan
        .revision
        .as_deref()
        .map(|r| format!(" at `{}`", &r[..r.len().min(12)]))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "### tether plan for `{}`{revision}: {status}\n",
        plan.fleet
    );
    let _ = writeln!(out, "**{}**\n", summary_line(plan));
    if let Some(refusal) = &plan.refusal {
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> This plan breaks the fleet's safety policy and will not be applied:"
        );
        for reason in &refusal.reasons {
            let _ = writeln!(out, "> - {reason}");
        }
        let _ = writeln!(
            out,
            ">\n> Nothing was changed. To proceed: {}.\n",
            refusal.how_to_proceed
        );
    }
    if plan.suspended {
        let _ = writeln!(out, "> [!NOTE]\n> {}\n", super::SUSPENDED);
    }
    let _ = writeln!(out, "| | count |\n|---|---|");
    let s = &plan.summary;
    for (label, n) in [
        ("➕ create", s.create),
        ("♻️ replace", s.replace),
        ("✏️ update", s.update),
        ("➖ delete", s.delete),
        ("📱 delete devices", s.delete_devices),
    ] {
        if n > 0 {
            let _ = writeln!(out, "| {label} | {n} |");
        }
    }
    out
}

fn details(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.actions.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>Actions ({})</summary>\n\n```diff",
            plan.actions.len()
        );
        for action in &plan.actions {
            let sign = match symbol(action) {
                "+" => "+",
                "-" | "-/+" => "-",
                _ => "!",
            };
            let _ = writeln!(out, "{sign} {} {}", symbol(action), headline(action));
            if let Some(d) = diff(action) {
                for line in d.lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        let _ = writeln!(out, "```\n</details>");
    }
    if !plan.notes.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>Noticed and left alone ({})</summary>\n",
            plan.notes.len()
        );
        for note in &plan.notes {
            let _ = writeln!(out, "- {}", note_line(note));
        }
        let _ = writeln!(out, "</details>");
    }
    out
}

fn footer(plan: &Plan) -> String {
    format!(
        "\n<sub>plan hash `{}` · apply exactly this plan with `tether apply --plan-hash {}`</sub>\n",
        plan.plan_hash, plan.plan_hash
    )
}
