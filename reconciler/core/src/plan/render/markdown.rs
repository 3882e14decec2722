//! The pull-request rendering: the summary first (verdict, counts, cost, budget use, API
//! calls), then what needs attention, the actions and the other notes in collapsible sections.
//!
//! # Guarantees
//! - At most the given limit of characters (GitHub's 65,536 for a comment): sections list as
//!   many whole items as fit and say how many were left out.
//! - Nothing users, VMs or the inventory control can change the comment's structure: notes are
//!   Markdown-escaped whole ([`crate::escape::markdown`]: no mention, autolink, HTML, table
//!   cell or line break), the actions' lines are [`crate::escape::terminal`]-escaped inside a
//!   code block fenced with more backticks than any run inside it.
//! - A note of any length leaves room for the others: each is cut at [`MAX_NOTE_CHARS`], so
//!   the "Needs attention" section lists every item that fits even when one is huge.

use super::{budget_use, cost_delta, details, headline, needs_attention, summary_line, symbol};
use crate::escape;
use crate::plan::render::text::note_line;
use crate::plan::{Note, Plan};
use std::fmt::Write as _;

/// GitHub's limit on a comment body, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;
/// The longest note shown, in characters, before its rest is left out.
pub const MAX_NOTE_CHARS: usize = 600;
/// The hidden marker that lets tether find and edit its own comment.
pub const MARKER: &str = "<!-- tether:plan -->";

/// Renders `plan` as Markdown of at most `limit` characters.
pub fn render(plan: &Plan, limit: usize) -> String {
    let head = header(plan);
    let foot = footer(plan);
    let mut budget = limit.saturating_sub(len(&head) + len(&foot));
    let (attention, other): (Vec<_>, Vec<_>) = plan.notes.iter().partition(|n| needs_attention(n));
    let attention: Vec<Vec<String>> = attention
        .iter()
        .map(|n| vec![format!("- {}", note_item(n))])
        .collect();
    let actions: Vec<Vec<String>> = plan.actions.iter().map(action_lines).collect();
    let other: Vec<Vec<String>> = other
        .iter()
        .map(|n| vec![format!("- {}", note_item(n))])
        .collect();
    let sections = [
        ("⚠️ Needs attention", &attention, false, true),
        ("Actions", &actions, true, false),
        ("Noticed and left alone", &other, false, false),
    ];
    let mut waiting = sections.iter().filter(|s| !s.1.is_empty()).count();
    let mut body = String::new();
    for (title, items, code, open) in sections {
        if items.is_empty() {
            continue;
        }
        // Each section may take an even share of what is left; what it leaves goes on.
        let share = budget / waiting.max(1);
        waiting -= 1;
        let section = section(title, items, code, open, share);
        budget = budget.saturating_sub(len(&section));
        body.push_str(&section);
    }
    let full = format!("{head}{body}{foot}");
    full.chars().take(limit).collect()
}

/// One note, cut at [`MAX_NOTE_CHARS`] and Markdown-escaped whole.
fn note_item(note: &Note) -> String {
    let line = note_line(note);
    let count = len(&line);
    if count <= MAX_NOTE_CHARS {
        return escape::markdown(&line);
    }
    let kept: String = line.chars().take(MAX_NOTE_CHARS).collect();
    format!(
        "{}… ({} more characters; `tether plan` shows them)",
        escape::markdown(&kept),
        count - MAX_NOTE_CHARS
    )
}

fn len(text: &str) -> usize {
    text.chars().count()
}

fn action_lines(action: &crate::plan::Action) -> Vec<String> {
    let mut lines = vec![format!(
        "{} {}",
        symbol(action),
        escape::terminal(&headline(action))
    )];
    lines.extend(
        details(action)
            .into_iter()
            .map(|(sign, text)| format!("{sign}     {}", escape::terminal(&text))),
    );
    lines
}

/// A collapsible section listing as many whole items as fit in `budget` characters.
fn section(title: &str, items: &[Vec<String>], code: bool, open: bool, budget: usize) -> String {
    if items.is_empty() {
        return String::new();
    }
    let fence = if code {
        fence_for(items)
    } else {
        String::new()
    };
    let (open_code, close_code) = if code {
        (format!("{fence}diff\n"), format!("{fence}\n"))
    } else {
        (String::new(), String::new())
    };
    let open_attr = if open { " open" } else { "" };
    let start = format!(
        "\n<details{open_attr}><summary>{title} ({})</summary>\n\n{open_code}",
        items.len()
    );
    let end = format!("{close_code}</details>\n");
    let left_out_reserve = 200;
    let room = budget.saturating_sub(len(&start) + len(&end) + left_out_reserve);
    if room == 0 {
        return String::new();
    }
    let mut shown = String::new();
    let mut count = 0;
    for item in items {
        let block: String = item.iter().map(|l| format!("{l}\n")).collect();
        if len(&shown) + len(&block) > room {
            break;
        }
        shown.push_str(&block);
        count += 1;
    }
    let mut out = format!("{start}{shown}");
    if count < items.len() {
        let _ = writeln!(
            out,
            "… {} more not shown: the comment would pass GitHub's size limit. Run `tether plan` for every line.",
            items.len() - count
        );
    }
    out.push_str(&end);
    out
}

/// A code fence longer than any run of backticks in `items`.
fn fence_for(items: &[Vec<String>]) -> String {
    let mut longest = 0;
    for line in items.iter().flatten() {
        let mut run = 0;
        for c in line.chars() {
            run = if c == '`' { run + 1 } else { 0 };
            longest = longest.max(run);
        }
    }
    "`".repeat((longest + 1).max(3))
}

fn header(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER}");
    let status = if plan.refusal.is_some() {
        "🛑 refused"
    } else if plan.suspended {
        "⏸️ suspended"
    } else if !plan.is_empty() {
        "📋 changes"
    } else if plan.notes.iter().any(needs_attention) {
        "⚠️ no changes, needs attention"
    } else {
        "✅ no changes"
    };
    let revision = plan
        .revision
        .as_deref()
        .map(|r| format!(" at `{}`", escape::markdown(&r[..r.len().min(12)])))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "### tether plan for {}{revision}: {status}\n",
        escape::markdown(&plan.fleet)
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
    let s = &plan.summary;
    let _ = writeln!(out, "| | |\n|---|---|");
    for (label, n) in [
        ("➕ create", s.create),
        ("♻️ replace", s.replace),
        ("✏️ update", s.update),
        ("➖ delete", s.delete),
        ("📱 delete devices", s.delete_devices),
        ("⏸️ quarantine", s.quarantine),
        ("▶️ restore from quarantine", s.restore),
        ("💤 in quarantine", s.quarantined),
        (
            "⚠️ needs attention",
            plan.notes.iter().filter(|n| needs_attention(n)).count(),
        ),
    ] {
        if n > 0 {
            let _ = writeln!(out, "| {label} | {n} |");
        }
    }
    let (disruptions, deletions) = budget_use(plan);
    let _ = writeln!(out, "| 💶 monthly cost | {} |", cost_delta(plan));
    if let Some(cost) = s.quarantined_monthly_cost {
        let _ = writeln!(
            out,
            "| 💤 quarantine cost | {cost}/month (powered off, still billed) |"
        );
    }
    let _ = writeln!(out, "| ⚡ disruption budget | {disruptions} |");
    let _ = writeln!(out, "| 🗑️ deletion budget | {deletions} |");
    let _ = writeln!(out, "| 📡 API calls | ~{} |", s.api_calls);
    out
}

fn footer(plan: &Plan) -> String {
    format!(
        "\n<sub>plan hash `{}` · apply exactly this plan with `tether apply --plan-hash {}`</sub>\n",
        plan.plan_hash, plan.plan_hash
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::compute::ServerId;

    /// A plan whose notes are a halted rollout per agent carrying the canary's hostile 2 MB
    /// error, and an unhealthy agent after them.
    fn plan_with_a_huge_hostile_error() -> Plan {
        let error = format!(
            "@octocat \u{202e}see https://evil.example\n# forged | cell <b>x</b> {}",
            "x".repeat(2 * 1024 * 1024)
        );
        let mut notes: Vec<Note> = (0..3)
            .map(|i| Note::RolloutHalted {
                agent: format!("agent-{i}"),
                version: "2.0.0".into(),
                reason: error.clone(),
            })
            .collect();
        notes.push(Note::Unhealthy {
            agent: "zeta".into(),
            server_id: ServerId(9),
        });
        Plan {
            version: crate::plan::PLAN_VERSION,
            fleet: "f".into(),
            revision: None,
            managed_servers: 4,
            deletions_allowed: 0,
            disruptions_allowed: 1,
            actions: Vec::new(),
            notes,
            summary: crate::plan::Summary::default(),
            refusal: None,
            suspended: false,
            heal: std::collections::BTreeMap::new(),
            plan_hash: String::new(),
        }
    }

    #[test]
    fn a_huge_hostile_vm_error_leaves_every_needs_attention_item_listed_and_inert() {
        let plan = plan_with_a_huge_hostile_error();
        let out = render(&plan, GITHUB_COMMENT_LIMIT);
        assert!(out.chars().count() <= GITHUB_COMMENT_LIMIT);
        for agent in ["agent-0", "agent-1", "agent-2", "zeta"] {
            assert!(out.contains(&escape::markdown(agent)), "{agent} missing");
        }
        assert!(!out.contains("more not shown"), "an item was left out");
        assert!(out.contains("more characters; `tether plan` shows them"));
        for raw in [
            "@octocat",
            "https://evil",
            "\u{202e}",
            "\n# forged",
            "<b>",
            " | cell",
        ] {
            assert!(!out.contains(raw), "{raw:?} reached the comment");
        }
    }

    #[test]
    fn the_fence_is_longer_than_any_backtick_run_inside() {
        let items = vec![vec!["+ env.X: \"````\"".to_owned()]];
        assert_eq!(fence_for(&items), "`````");
    }
}
