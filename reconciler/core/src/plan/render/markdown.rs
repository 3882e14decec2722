//! The pull-request rendering: the summary first (verdict, counts, cost, budget use, API
//! calls), then what needs attention, the actions and the other notes in collapsible sections.
//!
//! # Guarantees
//! - At most the given limit of characters (GitHub's 65,536 for a comment): sections list as
//!   many whole items as fit and say how many were left out.
//! - Nothing users or the inventory control can change the comment's structure: such text is
//!   Markdown-escaped ([`escape`]), and the actions' code block is fenced with more backticks
//!   than any run inside it.

use super::{budget_use, cost_delta, details, headline, needs_attention, summary_line, symbol};
use crate::plan::Plan;
use crate::plan::render::text::note_line;
use std::fmt::Write as _;

/// GitHub's limit on a comment body, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;
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
        .map(|n| vec![format!("- {}", note_line(n, escape))])
        .collect();
    let actions: Vec<Vec<String>> = plan.actions.iter().map(action_lines).collect();
    let other: Vec<Vec<String>> = other
        .iter()
        .map(|n| vec![format!("- {}", note_line(n, escape))])
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

/// Backslash-escapes every character Markdown or GitHub's HTML could read as structure, and
/// turns line breaks into spaces.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push(' '),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '!'
            | '&' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn len(text: &str) -> usize {
    text.chars().count()
}

fn action_lines(action: &crate::plan::Action) -> Vec<String> {
    let mut lines = vec![format!(
        "{} {}",
        symbol(action),
        headline(action, str::to_owned)
    )];
    lines.extend(
        details(action)
            .into_iter()
            .map(|(sign, text)| format!("{sign}     {text}")),
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
        .map(|r| format!(" at `{}`", escape(&r[..r.len().min(12)])))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "### tether plan for {}{revision}: {status}\n",
        escape(&plan.fleet)
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

    #[test]
    fn escaping_leaves_no_markdown_or_html_structure() {
        let hostile = "a*b_c`d<script>[x](y)|z\n# h";
        let e = escape(hostile);
        assert_eq!(e, r"a\*b\_c\`d\<script\>\[x\](y)\|z \# h");
    }

    #[test]
    fn the_fence_is_longer_than_any_backtick_run_inside() {
        let items = vec![vec!["+ env.X: \"````\"".to_owned()]];
        assert_eq!(fence_for(&items), "`````");
    }
}
