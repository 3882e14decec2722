//! `tether status`: the fleet in one table, read from the status branch (fetched first), the
//! spec it reflects and the fleet's lease. Read-only; offline unless `--live` asks Hetzner and
//! Tailscale for the inventory to compare ([`live`]). `--watch` draws it again every interval.

mod live;

use super::style::{Style, Tone};
use super::{CliError, Format, Outcome};
use crate::audit::live::Extras;
use crate::audit::overview::{self, Filter, FleetOverview};
use crate::audit::status::Phase;
use crate::audit::{self, log};
use git2::Repository;
use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Show every agent's phase, server and device as the status branch last recorded them.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The fleet repository.
    #[arg(long = "git", value_name = "REPO", default_value = ".")]
    repo: PathBuf,
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
    /// Only agents whose spec has this `customer` label.
    #[arg(long, value_name = "ID")]
    customer: Option<String>,
    /// Only agents in this phase: pending, provisioning, ready, degraded, deleting, failed,
    /// orphaned or quarantined.
    #[arg(long, value_parser = PhaseParser)]
    phase: Option<Phase>,
    /// Also read the live inventory (with `tether plan`'s credentials: HCLOUD_TOKEN, TS_API_KEY
    /// or TS_OAUTH_CLIENT_ID/TS_OAUTH_CLIENT_SECRET) for the cost per month, each device's last
    /// contact, and where the status branch and the live state disagree.
    #[arg(long)]
    live: bool,
    /// Draw the status again every INTERVAL (default 5s) until interrupted; the screen is
    /// cleared between draws only on a terminal.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "5s")]
    watch: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

impl StatusArgs {
    /// Whether output (and so an error) is JSON.
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }
}

/// `--phase`: a phase name in any case. Its possible values are the phases, so shell
/// completion offers them instead of file names.
#[derive(Debug, Clone, Copy)]
struct PhaseParser;

impl clap::builder::TypedValueParser for PhaseParser {
    type Value = Phase;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Phase, clap::Error> {
        let text = value.to_string_lossy();
        overview::phase_named(&text).ok_or_else(|| {
            let names: Vec<&str> = overview::PHASES.iter().map(phase_name).collect();
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("`{text}` is not a phase: use one of {}\n", names.join(", ")),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            overview::PHASES
                .iter()
                .map(|p| clap::builder::PossibleValue::new(phase_name(p))),
        ))
    }
}

/// A phase as `--phase` writes it: `provisioning`.
fn phase_name(phase: &Phase) -> &'static str {
    match phase {
        Phase::Pending => "pending",
        Phase::Provisioning => "provisioning",
        Phase::Ready => "ready",
        Phase::Degraded => "degraded",
        Phase::Deleting => "deleting",
        Phase::Failed => "failed",
        Phase::Orphaned => "orphaned",
        Phase::Quarantined => "quarantined",
    }
}

/// Runs `tether status`.
///
/// # Errors
/// An unknown `--phase` or `--watch` interval (usage), a repository or status branch that
/// cannot be read, or (with `--live`) missing credentials or an unreadable inventory.
pub fn cmd_status(args: &StatusArgs) -> Result<Outcome, CliError> {
    let filter = Filter {
        agent: args.agent.clone(),
        customer: args.customer.clone(),
        phase: args.phase,
    };
    let watch = args
        .watch
        .as_deref()
        .map(|t| {
            crate::process::parse_duration(t.trim())
                .and_then(|d| {
                    (d >= Duration::from_millis(100))
                        .then_some(d)
                        .ok_or_else(|| {
                            format!("{} is shorter than 100ms", humantime::format_duration(d))
                        })
                })
                .map_err(|e| {
                    CliError::usage(
                        format!("--watch: {e}"),
                        "write a number with a unit: `5s`, `1m`",
                    )
                })
        })
        .transpose()?;
    let Some(every) = watch else {
        print!("{}", draw(args, &filter)?);
        return Ok(Outcome::Success);
    };
    let tty = std::io::stdout().is_terminal();
    let mut first = true;
    loop {
        match draw(args, &filter) {
            Ok(text) => {
                let mut out = std::io::stdout().lock();
                let separator = match (tty, first) {
                    (true, _) => "\x1b[2J\x1b[H",
                    (false, true) => "",
                    (false, false) => "\n",
                };
                let _ = write!(out, "{separator}{text}");
                let _ = out.flush();
            }
            Err(e) if first => return Err(e),
            Err(e) => eprintln!("warning: {e}"),
        }
        first = false;
        std::thread::sleep(every);
    }
}

/// One drawing of the status: the text, or the JSON document with a final newline.
fn draw(args: &StatusArgs, filter: &Filter) -> Result<String, CliError> {
    let unreadable = |e: git2::Error| {
        CliError::failed(
            format!(
                "cannot read the status branch `{}` in {}: {}",
                args.status_branch,
                args.repo.display(),
                e.message()
            ),
            "pass --git with the fleet repository tether applies",
        )
    };
    let repo = Repository::open(&args.repo).map_err(unreadable)?;
    let Some(refname) = newest_status_ref(args, &repo) else {
        return Err(CliError::failed(
            format!(
                "the status branch `{}` is neither in {} nor on its remote",
                args.status_branch,
                args.repo.display()
            ),
            "has tether applied this fleet yet? pass --remote with the remote it pushes to, or --status-branch",
        ));
    };
    let files = audit::ledger::status_files(&repo, &refname).map_err(unreadable)?;
    let spec = audit::view::spec_at(&args.repo, &files).unwrap_or_else(|warning| {
        eprintln!("warning: {warning}");
        None
    });
    let activity = audit::view::status_activity(&repo, &refname).map_err(unreadable)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let all = FleetOverview::from_files(&files, spec.as_ref(), &Filter::default());
    let view =
        FleetOverview::from_files(&files, spec.as_ref(), filter).with_activity(&activity, now);
    let fleet = all.fleet.clone().unwrap_or_default();
    let inventory = if args.live {
        let projects = spec
            .as_ref()
            .map_or_else(Vec::new, |f| f.settings.project_names());
        Some(live::read(&fleet, &projects, &files)?)
    } else {
        None
    };
    let shown: BTreeSet<&str> = view.agents.iter().map(|a| a.agent.as_str()).collect();
    let extras = Extras::new(
        live::lease(&args.repo, &fleet),
        inventory.as_ref(),
        &all.agents,
        &files,
    )
    .narrowed(&shown);
    if args.json() {
        let doc = View {
            overview: &view,
            extras: &extras,
        };
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
    }
    let style = super::style::current();
    let mut text = view.render_with(&extras.lines(), &|p, t| paint(style, p, t));
    text.push_str(&extras.section());
    Ok(text)
}

/// The JSON document: the overview's fields and the extras' side by side.
#[derive(serde::Serialize)]
struct View<'a> {
    #[serde(flatten)]
    overview: &'a FleetOverview,
    #[serde(flatten)]
    extras: &'a Extras,
}

fn paint(style: Style, phase: &str, text: &str) -> String {
    match phase {
        "Ready" => style.out(Tone::Good, text),
        "Failed" => style.out(Tone::Bad, text),
        "Degraded" | "Orphaned" | "Quarantined" => style.out(Tone::Warn, text),
        _ => style.out(Tone::Faint, text),
    }
}

/// The local status branch and the remote's (fetched; `origin` unless `--remote` says
/// otherwise): whichever tip was committed last. A failed fetch is a warning: the local
/// branch is then shown.
fn newest_status_ref(args: &StatusArgs, repo: &Repository) -> Option<String> {
    let local = format!("refs/heads/{}", args.status_branch);
    let remote = args
        .remote
        .clone()
        .or_else(|| repo.find_remote("origin").ok().map(|_| "origin".to_owned()));
    let fetched = match remote.as_deref().filter(|r| !r.is_empty()) {
        Some(remote) => log::fetch_status(&args.repo, remote, &args.status_branch)
            .unwrap_or_else(|e| {
                eprintln!(
                    "warning: cannot fetch the status branch `{}` from `{remote}` ({}); showing the local one",
                    args.status_branch,
                    e.message()
                );
                None
            }),
        None => None,
    };
    let time = |name: &str| {
        repo.find_reference(name)
            .and_then(|r| r.peel_to_commit())
            .map(|c| c.time().seconds())
            .ok()
    };
    [Some(local), fetched]
        .into_iter()
        .flatten()
        .filter_map(|r| time(&r).map(|t| (t, r)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, r)| r)
}
