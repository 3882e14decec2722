//! The dashboard's HTML, rendered on the server: the fleet page, an agent's page and a message
//! page. Every value from git goes through [`esc`], which escapes it for HTML text and
//! attributes and blanks anything shaped like a Tailscale auth key. Pure: the caller reads
//! git and the daemon's health.

use super::data::{AgentData, FleetData};
use crate::audit::log::{self, TimelineEntry};
use crate::audit::overview::{AgentRow, COLUMNS, FleetOverview, cells};
use crate::audit::view::StatusCommit;
use std::fmt::Write as _;

/// The prefix of Tailscale auth keys, which no page may show.
const AUTH_KEY_PREFIX: &str = "tskey-";

/// The daemon's own state, shown beside what git records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `ready`, `not ready` or `degraded`.
    pub status: String,
    /// Why it is not ready.
    pub reason: Option<String>,
    /// Who holds the fleet's lease, until when; or why that is unknown.
    pub lease: String,
    /// Where lifecycle event delivery stands, one line per endpoint (none: not configured, or
    /// this daemon does not hold the lease).
    pub events: Vec<String>,
}

/// Where commit ids link to.
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    /// The URL a commit id is appended to; `None`: commits are plain text.
    pub commit_url: Option<&'a str>,
}

/// `text` with anything shaped like an auth key replaced, then escaped for HTML text and
/// quoted attributes ([`tether_core::escape::html`]).
pub fn esc(text: &str) -> String {
    tether_core::escape::html(&redact(text))
}

/// `text` with every `tskey-…` word replaced by `[redacted]`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(AUTH_KEY_PREFIX) {
        out.push_str(&rest[..at]);
        let after = &rest[at + AUTH_KEY_PREFIX.len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(after.len());
        out.push_str("[redacted]");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `name` as one URL path segment: unreserved characters kept, the rest percent-encoded.
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The CSS class of a phase: `phase-ready`, `phase-failed`, …
pub fn phase_class(phase: &str) -> String {
    let name: String = phase
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("phase-{name}")
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn short(id: &str) -> &str {
    &id[..id.len().min(7)]
}

impl Links<'_> {
    fn commit(&self, id: &str) -> String {
        match self.commit_url {
            Some(base) => format!(
                "<a class=\"commit\" href=\"{}/{}\" rel=\"noreferrer\">{}</a>",
                esc(base.trim_end_matches('/')),
                esc(id),
                esc(short(id))
            ),
            None => format!("<code class=\"commit\">{}</code>", esc(short(id))),
        }
    }
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"stylesheet\" href=\"/dashboard.css\">\n</head>\n\
         <body>\n<header><h1><a href=\"/\">tether</a> · {}</h1>\
         <span id=\"updated\" class=\"faint\"></span></header>\n<main>\n",
        esc(title),
        esc(title)
    );
}

fn foot(out: &mut String) {
    out.push_str("</main>\n<script src=\"/dashboard.js\"></script>\n</body>\n</html>\n");
}

fn field(out: &mut String, id: &str, name: &str, value_html: &str) {
    let _ = writeln!(out, "<dt>{name}</dt><dd id=\"{id}\">{value_html}</dd>");
}

fn summary(out: &mut String, o: &FleetOverview, links: Links<'_>) {
    let dash = |v: &Option<String>| esc(v.as_deref().unwrap_or("-"));
    out.push_str("<section id=\"summary\"><h2>Fleet</h2><dl>\n");
    let revision = o
        .revision
        .as_deref()
        .map_or("-".to_owned(), |r| links.commit(r));
    let plan = o
        .plan_hash
        .as_deref()
        .map(|h| format!(" (plan <code>{}</code>)", esc(short(h))))
        .unwrap_or_default();
    field(
        out,
        "spec-commit",
        "spec commit",
        &format!("{revision}{plan}"),
    );
    field(out, "last-pass", "last pass", &dash(&o.last_pass));
    let suspended = if o.suspended { "yes" } else { "no" };
    field(out, "suspended", "suspended", suspended);
    if let Some(b) = o.deletion_budget {
        let text = format!("{} of {} per hour", b.used, b.limit);
        field(out, "deletions", "deletions", &text);
    }
    let counts: Vec<String> = o.phases.iter().map(|(p, n)| format!("{n} {p}")).collect();
    let agents = format!("{} ({})", o.agents.len(), counts.join(", "));
    field(out, "agent-count", "agents", &esc(&agents));
    field(out, "last-error", "last error", &dash(&o.last_error));
    out.push_str("</dl></section>\n");
}

fn health(out: &mut String, h: &Health) {
    out.push_str("<section id=\"health\"><h2>Daemon</h2><dl>\n");
    let status = match &h.reason {
        Some(reason) => format!("{}: {}", h.status, reason),
        None => h.status.clone(),
    };
    let class = if h.reason.is_some() { "bad" } else { "good" };
    let html = format!("<span class=\"{class}\">{}</span>", esc(&status));
    field(out, "readiness", "readiness", &html);
    field(out, "lease", "lease", &esc(&h.lease));
    for line in &h.events {
        field(out, "events", "events", &esc(line));
    }
    out.push_str("</dl></section>\n");
}

/// The agents table; the script refreshes its body from `/api/status`.
fn table(out: &mut String, rows: &[AgentRow], only: Option<&str>) {
    let only = only
        .map(|a| format!(" data-only=\"{}\"", esc(a)))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<div class=\"scroll\">\n<table id=\"agents\"{only}>\n<thead><tr>"
    );
    for c in COLUMNS {
        let _ = write!(out, "<th>{c}</th>");
    }
    out.push_str("</tr></thead>\n<tbody id=\"agent-rows\">\n");
    for row in rows {
        out.push_str(&table_row(row));
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

/// One `<tr>`: the agent cell links to its page, the phase cell carries its class.
pub fn table_row(row: &AgentRow) -> String {
    let class = phase_class(&row.phase);
    let mut tr = format!("<tr class=\"{class}\" data-agent=\"{}\">", esc(&row.agent));
    for (i, cell) in cells(row).iter().enumerate() {
        let html = match i {
            0 => format!(
                "<a href=\"/agents/{}\">{}</a>",
                esc(&segment(&row.agent)),
                esc(cell)
            ),
            3 => format!("<span class=\"phase {class}\">{}</span>", esc(cell)),
            _ => esc(cell),
        };
        let _ = write!(tr, "<td>{html}</td>");
    }
    tr.push_str("</tr>\n");
    tr
}

fn last_plan(out: &mut String, commit: Option<&StatusCommit>, links: Links<'_>) {
    out.push_str("<section id=\"last-plan\"><h2>Last plan</h2>\n");
    match commit {
        None => out.push_str("<p class=\"faint\">no pass recorded yet</p>\n"),
        Some(c) => {
            let refused = c.summary.contains("refused");
            let class = if refused { " class=\"bad\"" } else { "" };
            let _ = writeln!(
                out,
                "<p{class}>{} {} <time>{}</time></p>",
                links.commit(&c.commit),
                esc(&c.summary),
                rfc3339(c.time)
            );
            if refused {
                out.push_str("<p class=\"bad\">refused:</p>\n");
            }
            if !c.body.is_empty() {
                out.push_str("<pre id=\"plan-lines\">");
                for line in &c.body {
                    let _ = writeln!(out, "{}", esc(line));
                }
                out.push_str("</pre>\n");
            }
        }
    }
    out.push_str("</section>\n");
}

fn commits(out: &mut String, list: &[StatusCommit], links: Links<'_>) {
    out.push_str("<section id=\"commits\"><h2>Recent status commits</h2>\n<ul>\n");
    for c in list {
        let _ = writeln!(
            out,
            "<li>{} <time>{}</time> {}</li>",
            links.commit(&c.commit),
            rfc3339(c.time),
            esc(&c.summary)
        );
    }
    out.push_str("</ul></section>\n");
}

/// The fleet page: fleet lines, daemon health, the agents table, the last plan and the newest
/// status commits.
pub fn fleet_page(data: &FleetData, h: &Health, links: Links<'_>) -> String {
    let mut out = String::new();
    head(&mut out, data.overview.fleet.as_deref().unwrap_or("fleet"));
    summary(&mut out, &data.overview, links);
    health(&mut out, h);
    if let Some(w) = &data.warning {
        let _ = writeln!(out, "<p class=\"warn\">{}</p>", esc(w));
    }
    out.push_str("<section id=\"fleet\"><h2>Agents</h2>\n");
    table(&mut out, &data.overview.agents, None);
    out.push_str("</section>\n");
    last_plan(&mut out, data.commits.first(), links);
    commits(&mut out, &data.commits, links);
    foot(&mut out);
    out
}

/// An agent's page: its row, provider ids, timeline (spec changes and phases, from git) and
/// the recent plan lines that name it.
pub fn agent_page(data: &AgentData, links: Links<'_>) -> String {
    let mut out = String::new();
    let name = data.history.agent.as_str();
    head(&mut out, name);
    out.push_str("<section id=\"agent\"><h2>Now</h2>\n");
    table(&mut out, &data.overview.agents, Some(name));
    out.push_str("<dl>\n");
    let row = data.overview.agents.first();
    let server = row
        .and_then(|r| r.server_id)
        .map_or("-".to_owned(), |id| id.to_string());
    field(&mut out, "server-id", "Hetzner server", &esc(&server));
    let device = data.device_id.as_deref().unwrap_or("-");
    field(&mut out, "device-id", "Tailscale device", &esc(device));
    out.push_str("</dl></section>\n");
    out.push_str("<section id=\"timeline\"><h2>Timeline</h2>\n<ol>\n");
    for entry in data.history.timeline() {
        let when = rfc3339(entry.time());
        match entry {
            TimelineEntry::Spec(c) => {
                let _ = write!(
                    out,
                    "<li><time>{when}</time> {} spec {} by {}: {}",
                    links.commit(&c.commit),
                    esc(&c.change),
                    esc(&c.author),
                    esc(&c.summary)
                );
                for a in &c.actions {
                    let _ = write!(out, "<br><span class=\"faint\">→ {}</span>", esc(a));
                }
                out.push_str("</li>\n");
            }
            TimelineEntry::Phase(p) => {
                let _ = writeln!(
                    out,
                    "<li class=\"{}\"><time>{when}</time> {} <span class=\"phase {0}\">{}</span></li>",
                    phase_class(&p.phase),
                    links.commit(&p.status_commit),
                    esc(&log::phase_line(p))
                );
            }
        }
    }
    out.push_str("</ol></section>\n");
    out.push_str("<section id=\"plan\"><h2>Recent plan lines</h2>\n<ul>\n");
    for (c, line) in &data.plan_lines {
        let _ = writeln!(
            out,
            "<li>{} <time>{}</time> {}</li>",
            links.commit(&c.commit),
            rfc3339(c.time),
            esc(line)
        );
    }
    out.push_str("</ul></section>\n");
    foot(&mut out);
    out
}

/// A page that only says `message` (nothing recorded yet, an unknown agent, a read error).
pub fn message_page(title: &str, message: &str) -> String {
    let mut out = String::new();
    head(&mut out, title);
    let _ = writeln!(out, "<p class=\"warn\" id=\"message\">{}</p>", esc(message));
    foot(&mut out);
    out
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
