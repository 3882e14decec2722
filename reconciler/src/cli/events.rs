//! `tether events list|show|replay`: the agents' lifecycle events as the status branch records
//! them, where each endpoint's delivery stands, and sending chosen events again.

use super::style::Tone;
use super::{CliError, Format, Outcome};
use crate::audit;
use crate::daemon::config::EventsEndpoint;
use crate::daemon::events::cursor::{CURSOR_REF_PREFIX, Cursor};
use crate::daemon::events::post;
use crate::events::derive::Deriver;
use crate::events::{LifecycleEvent, rfc3339};
use crate::secret::Secret;
use std::path::PathBuf;

/// The agents' lifecycle events, from the status branch.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum EventsCommand {
    List(ListArgs),
    Show(ShowArgs),
    Replay(ReplayArgs),
}

/// Where the events are read from and which.
#[derive(Debug, clap::Args)]
struct Selection {
    /// The fleet repository (its status branch is the outbox).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// The status branch.
    #[arg(long, default_value = audit::STATUS_BRANCH)]
    status_branch: String,
    /// Only this agent's events.
    #[arg(long)]
    agent: Option<String>,
    /// Only events at or after this date (`2026-11-01` or RFC 3339).
    #[arg(long)]
    since: Option<String>,
}

/// Every event, oldest first, with where each endpoint's delivery stands.
#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    select: Selection,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// One event as delivered: its CloudEvent JSON.
#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The event's id (`evt_…`).
    id: String,
    #[command(flatten)]
    select: Selection,
}

/// Sends the chosen events again, signed, to a URL, with their ids unchanged (receivers drop
/// what they already have); the daemon's cursors are not touched.
#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// Only this event (else every event `--agent` and `--since` choose).
    id: Option<String>,
    #[command(flatten)]
    select: Selection,
    /// Where to POST.
    #[arg(long)]
    url: String,
    /// The environment variable holding the signing secret(s), comma-separated.
    #[arg(long, default_value = "TETHER_EVENTS_SECRETS")]
    secrets_env: String,
}

/// Runs `tether events ...`.
///
/// # Errors
/// The repository or a date cannot be read, no event matches, or a replay fails.
pub fn cmd_events(args: &EventsArgs) -> Result<Outcome, CliError> {
    match &args.command {
        EventsCommand::List(a) => list(a),
        EventsCommand::Show(a) => {
            let events = select(&a.select)?;
            let event = find(&events, &a.id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&event.to_cloudevent()).unwrap_or_default()
            );
            Ok(Outcome::Success)
        }
        EventsCommand::Replay(a) => replay(a),
    }
}

fn find<'e>(events: &'e [LifecycleEvent], id: &str) -> Result<&'e LifecycleEvent, CliError> {
    events.iter().find(|e| e.id == id).ok_or_else(|| {
        CliError::failed(
            format!("no event `{id}` on the status branch (with this --agent and --since)"),
            "list the events with `tether events list`",
        )
    })
}

/// The events of the status branch that `select` chooses, oldest first.
fn select(select: &Selection) -> Result<Vec<LifecycleEvent>, CliError> {
    let since = select
        .since
        .as_deref()
        .map(super::audit::parse_date)
        .transpose()?;
    let unreadable = |e: git2::Error| {
        CliError::failed(
            format!(
                "cannot read the status branch `{}` in `{}`: {}",
                select.status_branch,
                select.repo.display(),
                e.message()
            ),
            "pass --repo with the fleet repository; fetch the status branch first (`git fetch origin tether/status:tether/status`)",
        )
    };
    let repo = git2::Repository::open(&select.repo).map_err(unreadable)?;
    let tip = repo
        .refname_to_id(&format!("refs/heads/{}", select.status_branch))
        .map_err(unreadable)?;
    let events = Deriver::new().advance(&repo, tip).map_err(unreadable)?;
    Ok(events
        .into_iter()
        .filter(|e| select.agent.as_deref().is_none_or(|a| a == e.agent))
        .filter(|e| since.is_none_or(|s| e.time >= s))
        .collect())
}

/// Each endpoint's cursor in the repository: (endpoint, cursor).
fn cursors(select: &Selection) -> Vec<(String, Cursor)> {
    let Ok(repo) = git2::Repository::open(&select.repo) else {
        return Vec::new();
    };
    let Ok(refs) = repo.references_glob(&format!("{CURSOR_REF_PREFIX}*")) else {
        return Vec::new();
    };
    refs.flatten()
        .filter_map(|r| {
            let name = r.name()?.strip_prefix(CURSOR_REF_PREFIX)?.to_owned();
            let message = r.peel_to_commit().ok()?.message()?.to_owned();
            let json = message.split_once('\n')?.1;
            Some((name, serde_json::from_str(json.trim()).ok()?))
        })
        .collect()
}

/// Where `event` stands at one endpoint: delivered, dead, or pending.
fn state(
    event: &LifecycleEvent,
    position: Option<usize>,
    index: usize,
    cursor: &Cursor,
) -> &'static str {
    if cursor.dead.iter().any(|d| d.id == event.id) {
        "dead"
    } else if position.is_some_and(|p| index <= p) {
        "delivered"
    } else {
        "pending"
    }
}

fn list(a: &ListArgs) -> Result<Outcome, CliError> {
    let all = select(&Selection {
        repo: a.select.repo.clone(),
        status_branch: a.select.status_branch.clone(),
        agent: None,
        since: None,
    })?;
    let cursors = cursors(&a.select);
    let positions: Vec<Option<usize>> = cursors
        .iter()
        .map(|(_, c)| {
            c.after
                .as_ref()
                .and_then(|id| all.iter().position(|e| &e.id == id))
        })
        .collect();
    let chosen: Vec<String> = select(&a.select)?.into_iter().map(|e| e.id).collect();
    let mut rows = Vec::new();
    for (index, event) in all.iter().enumerate() {
        if !chosen.contains(&event.id) {
            continue;
        }
        let delivery: Vec<(String, &str)> = cursors
            .iter()
            .zip(&positions)
            .map(|((name, cursor), position)| {
                (name.clone(), state(event, *position, index, cursor))
            })
            .collect();
        rows.push((event, delivery));
    }
    if a.format == Format::Json {
        let json: Vec<serde_json::Value> = rows
            .iter()
            .map(|(event, delivery)| {
                let mut v = event.to_cloudevent();
                v["delivery"] = delivery
                    .iter()
                    .map(|(n, s)| (n.clone(), serde_json::json!(s)))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
                v
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
        return Ok(Outcome::Success);
    }
    let style = super::style::current();
    if rows.is_empty() {
        println!("no lifecycle events on the status branch");
    }
    for (event, delivery) in &rows {
        let states: Vec<String> = delivery.iter().map(|(n, s)| format!("{n}: {s}")).collect();
        let machine = [
            event.data.server_id.map(|id| format!("server {id}")),
            event.data.ipv4.clone(),
            event.data.tailnet_ips.first().cloned(),
            event.reason.clone(),
        ];
        let machine: Vec<String> = machine.into_iter().flatten().collect();
        println!(
            "{} {} {:<18} {} #{} {} {}",
            style.out(Tone::Faint, &event.id),
            rfc3339(event.time),
            event.kind.as_str(),
            style.out(Tone::Strong, &event.agent),
            event.sequence,
            machine.join(" "),
            style.out(Tone::Faint, &states.join(", "))
        );
    }
    for (name, cursor) in &cursors {
        for dead in &cursor.dead {
            println!(
                "{} {name}: {} {} {} gave up after {} attempt(s): {}",
                style.out(Tone::Warn, "dead letter"),
                dead.id,
                dead.kind,
                dead.agent,
                dead.attempts,
                dead.last_error
            );
        }
    }
    Ok(Outcome::Success)
}

fn replay(a: &ReplayArgs) -> Result<Outcome, CliError> {
    let mut events = select(&a.select)?;
    if let Some(id) = &a.id {
        events = vec![find(&events, id)?.clone()];
    }
    if events.is_empty() {
        return Err(CliError::failed(
            "no event matches --agent and --since",
            "list the events with `tether events list`",
        ));
    }
    let secrets: Vec<Secret<String>> = std::env::var(&a.secrets_env)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Secret::new(s.to_owned()))
        .collect();
    if secrets.is_empty() {
        return Err(CliError::usage(
            format!("`{}` holds no signing secret", a.secrets_env),
            "set it to the endpoint's secret(s), comma-separated, or name another variable with --secrets-env",
        ));
    }
    let endpoint = EventsEndpoint {
        name: "replay".into(),
        url: Secret::new(a.url.clone()),
        secrets,
        timeout: crate::daemon::config::DEFAULT_EVENTS_TIMEOUT,
        retry_first: crate::daemon::config::DEFAULT_RETRY_FIRST,
        retry_max: crate::daemon::config::DEFAULT_RETRY_MAX,
        give_up_after: crate::daemon::config::DEFAULT_GIVE_UP_AFTER,
    };
    let runtime = super::common::runtime()?;
    let client = reqwest::Client::new();
    runtime.block_on(async {
        for event in &events {
            let now = crate::billing::serve::signature::unix(std::time::SystemTime::now());
            post::post(&client, &endpoint, event, now)
                .await
                .map_err(|e| {
                    CliError::transient(
                        format!("{} ({} {}) not delivered: {e}", event.id, event.kind.as_str(), event.agent),
                        "check that the endpoint is up, then replay again: receivers drop ids they already have",
                    )
                })?;
            println!("replayed {} {} {}", event.id, event.kind.as_str(), event.agent);
        }
        Ok(Outcome::Success)
    })
}

impl EventsArgs {
    /// Whether output (and so an error) is JSON.
    pub fn json(&self) -> bool {
        matches!(&self.command, EventsCommand::List(a) if a.format == Format::Json)
    }
}
