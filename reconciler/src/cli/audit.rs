//! `tether audit log`: who caused each VM to exist or disappear, when, and what happened;
//! `tether audit verify` ([`verify`]) proves the status branch; `tether audit report`
//! ([`report`]) exports a period's activity.

mod report;
mod verify;

use super::style::Tone;
use super::{CliError, Format, Outcome};
use crate::audit::log::TimelineEntry;
use crate::audit::{self, log};
use std::path::PathBuf;
use tether_core::escape::terminal;

/// Read the audit trail from git.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    Log(LogArgs),
    Verify(verify::VerifyArgs),
    Report(report::ReportArgs),
}

/// Per agent, each spec change (commit, author, time, what changed) with the actions it caused,
/// and each phase the status branch recorded, in time order.
#[derive(Debug, clap::Args)]
struct LogArgs {
    /// The fleet repository.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// The fleet branch.
    #[arg(long, default_value = "main")]
    branch: String,
    /// The status branch.
    #[arg(long, default_value = audit::STATUS_BRANCH)]
    status_branch: String,
    /// Fetch the status branch from this remote (a name or URL) first; default: `origin` when
    /// the repository has it. `--remote ""` reads only what is local.
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
    /// Only this agent.
    #[arg(long)]
    agent: Option<String>,
    /// Only changes at or after this date (`2026-11-01` or RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// Runs `tether audit ...`.
///
/// # Errors
/// The repository or a date cannot be read.
pub fn cmd_audit(args: &AuditArgs) -> Result<Outcome, CliError> {
    match &args.command {
        AuditCommand::Log(a) => cmd_log(a),
        AuditCommand::Verify(a) => verify::cmd_verify(a),
        AuditCommand::Report(a) => report::cmd_report(a),
    }
}

fn cmd_log(a: &LogArgs) -> Result<Outcome, CliError> {
    let since = a.since.as_deref().map(parse_date).transpose()?;
    let status_refs = status_refs(a);
    let refs: Vec<&str> = status_refs.iter().map(String::as_str).collect();
    let history =
        log::history(&a.repo, &a.branch, &refs, a.agent.as_deref(), since).map_err(|e| {
            CliError::failed(
                e.to_string(),
                "pass --repo with the fleet repository and --branch with its fleet branch",
            )
        })?;
    let flagged = log::flagged(&a.repo, &refs).unwrap_or_default();
    for f in &flagged {
        // On stderr with --format json, so the JSON stays the history alone.
        let line = format!(
            "status commit {} has conflicting trailers ({}): its records are not shown",
            &f.status_commit[..f.status_commit.len().min(10)],
            f.tokens.join(", ")
        );
        if a.format == Format::Json {
            eprintln!("warning: {line}");
        } else {
            println!("! {line}");
        }
    }
    if a.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&history).unwrap_or_default()
        );
        return Ok(Outcome::Success);
    }
    let style = super::style::current();
    if history.is_empty() {
        println!("no spec changes found");
    }
    for agent in &history {
        println!("{}", style.out(Tone::Strong, &terminal(&agent.agent)));
        for entry in agent.timeline() {
            let when = rfc3339(entry.time());
            match entry {
                TimelineEntry::Spec(c) => {
                    println!(
                        "  {} {when} {:<8} {} by {}: {}",
                        style.out(Tone::Warn, &terminal(&c.commit[..c.commit.len().min(10)])),
                        c.change,
                        terminal(&c.path),
                        terminal(&c.author),
                        terminal(&c.summary)
                    );
                    for action in &c.actions {
                        let line = terminal(&format!("→ {action}"));
                        println!("      {}", style.out(Tone::Faint, &line));
                    }
                }
                TimelineEntry::Phase(p) => println!(
                    "  {} {when} {}",
                    style.out(
                        Tone::Faint,
                        &terminal(&p.status_commit[..p.status_commit.len().min(10)])
                    ),
                    terminal(&log::phase_line(p))
                ),
            }
        }
    }
    Ok(Outcome::Success)
}

/// The refs holding status records: the local status branch when it exists, and the remote's,
/// fetched. Says so on stderr when neither exists, or the fetch failed, since the log then
/// shows spec changes without the actions they caused.
fn status_refs(a: &LogArgs) -> Vec<String> {
    let local = format!("refs/heads/{}", a.status_branch);
    let repo = git2::Repository::open(&a.repo).ok();
    let has_local = repo
        .as_ref()
        .is_some_and(|r| r.find_reference(&local).is_ok());
    let remote = a.remote.clone().or_else(|| {
        repo.as_ref()
            .and_then(|r| r.find_remote("origin").ok())
            .map(|_| "origin".to_owned())
    });
    let mut refs: Vec<String> = has_local.then_some(local).into_iter().collect();
    match remote.as_deref().filter(|r| !r.is_empty()) {
        Some(remote) => match log::fetch_status(&a.repo, remote, &a.status_branch) {
            Ok(Some(fetched)) => refs.push(fetched),
            Ok(None) if !has_local => eprintln!(
                "warning: the status branch `{}` is neither in `{}` nor on `{remote}`: no actions are shown (has tether applied this fleet yet?)",
                a.status_branch,
                a.repo.display()
            ),
            Ok(None) => {}
            Err(e) => eprintln!(
                "warning: cannot fetch the status branch `{}` from `{remote}` ({}); showing the actions recorded locally{}",
                a.status_branch,
                e.message(),
                if has_local { "" } else { ": none" }
            ),
        },
        None if !has_local => eprintln!(
            "warning: the status branch `{}` is not in `{}` and no remote is known: no actions are shown; fetch it (`git fetch REMOTE {0}:{0}`) or pass --remote",
            a.status_branch,
            a.repo.display()
        ),
        None => {}
    }
    refs
}

fn rfc3339(time: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(time)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub(super) fn parse_date(text: &str) -> Result<i64, CliError> {
    use time::format_description::well_known::Rfc3339;
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    time::OffsetDateTime::parse(&full, &Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            CliError::usage(
                format!("--since `{text}` is not a date"),
                "use YYYY-MM-DD or an RFC 3339 time such as 2026-11-01T00:00:00Z",
            )
        })
}

impl AuditArgs {
    /// Whether output (and so an error) is JSON.
    pub fn json(&self) -> bool {
        match &self.command {
            AuditCommand::Log(a) => a.format == Format::Json,
            AuditCommand::Verify(a) => a.format == Format::Json,
            AuditCommand::Report(a) => a.format == report::ReportFormat::Json,
        }
    }
}
