//! `tether apply`: show the plan, have it approved ([`super::approve`]), and converge the
//! fleet once.

use super::approve::{self, Approval};
use super::common::{self, LogFormat, SigningArgs, SourceArgs};
use super::error::Failure;
use super::github::Reporter;
use super::lease;
use super::{CliError, Outcome};
use crate::apply::Options;
use crate::audit::{self, commit::Identity, journal, message};
use crate::cloud::fence::Fenced;
use crate::cloud::retry::{Clock, TokioClock};
use crate::forge::StatusState;
use crate::plan::Plan;
use crate::plan::render::text;
use crate::process::shutdown;
use crate::reconcile::{self, PassError, PassOptions, PassOutcome, StatusTarget};
use crate::source::Snapshot;
use crate::source::fleets::Loaded;
use std::path::PathBuf;
use std::time::Duration;

/// Show the plan, ask, carry it out, then record what happened on the status branch.
///
/// The plan is printed first; on a terminal tether asks before acting (only `yes` goes on).
/// Automation passes --auto-approve, or applies an approved plan: a PLAN_FILE saved with
/// `tether plan --out`, or --plan-hash. Either refuses, changing nothing, unless a fresh plan
/// has exactly the approved hash. Without any of these and without a terminal on stdin, apply
/// refuses with a usage error.
///
/// With --git, takes the fleet's single-writer lease first (the one `tether run` holds) and
/// refuses, changing nothing, while another process holds it. On Ctrl-C or SIGTERM, starts no
/// new action, lets the ones in flight finish, prints the partial account and records status.
///
/// Exit status: 0 when every action was done, 1 on a failure, 3 when refused by policy
/// (safety rules, a changed plan hash, a suspended fleet with changes), 4 when an API failed
/// in a way that may pass or another process holds the lease, 130 when interrupted; see
/// docs/operations.md.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    signing: SigningArgs,
    /// A plan saved with `tether plan --out FILE`: apply it only if a fresh plan has its hash.
    #[arg(value_name = "PLAN_FILE", conflicts_with = "plan_hash")]
    plan_file: Option<PathBuf>,
    /// Refuse to act unless a fresh plan has exactly this hash (the plan approved on the PR).
    #[arg(long, value_name = "HASH")]
    plan_hash: Option<String>,
    /// Apply without asking (for automation); the plan is still printed before acting.
    #[arg(long)]
    auto_approve: bool,
    /// Actions making requests at once (an action waiting for Hetzner or its device holds no slot).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds a new server's device may take to come online.
    #[arg(long, default_value_t = 300)]
    device_timeout: u64,
    /// Milliseconds between checks for a new server's device.
    #[arg(long, default_value_t = 2000)]
    device_poll_ms: u64,
    /// Accept a shrink of the fleet beyond the deletion budget (the circuit breaker).
    #[arg(long)]
    allow_shrink: bool,
    /// The status branch (with --git).
    #[arg(long, default_value = audit::STATUS_BRANCH)]
    status_branch: String,
    /// Push status commits to this remote (name or URL) of the --git repository.
    #[arg(long, value_name = "REMOTE")]
    push_status: Option<String>,
    /// The fleet branch, which status never writes (with --git).
    #[arg(long, default_value = "main")]
    source_branch: String,
    /// Set the `tether/<fleet>` commit status on the applied commit: pending, then success or
    /// failure. Needs GITHUB_TOKEN and GITHUB_REPOSITORY.
    #[arg(long)]
    github_status: bool,
    /// The commit for --github-status (default: the commit read with --git, else $GITHUB_SHA).
    #[arg(long, value_name = "SHA", requires = "github_status")]
    github_sha: Option<String>,
    /// Log format: text for terminals, json for log pipelines.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// The single-writer lease's TTL (with --git): renewed every third of it while applying.
    #[arg(long, value_name = "DURATION", env = "TETHER_LOCK_TTL", default_value = "2m",
          value_parser = lease::ttl)]
    lock_ttl: Duration,
    /// How long to wait for the lease while another process holds it (after a killed run, its
    /// lease expires within the TTL); with --fleet, for the local lock another apply of the
    /// same fleet on this host holds.
    #[arg(long, value_name = "DURATION", env = "TETHER_LOCK_WAIT", default_value = "0s",
          value_parser = lease::wait)]
    lock_wait: Duration,
    /// After Ctrl-C or SIGTERM: how long in-flight actions may take to finish before tether
    /// stops waiting for them.
    #[arg(long, value_name = "DURATION", env = "TETHER_SHUTDOWN_GRACE", default_value = "60s",
          value_parser = crate::process::parse_duration)]
    shutdown_grace: Duration,
}

/// Runs `tether apply`.
///
/// # Errors
/// The fleet, the credentials or the inventory cannot be read, or the plan is refused.
pub fn cmd_apply(args: &ApplyArgs) -> Result<Outcome, CliError> {
    common::init_logging(args.log_format, "info");
    let approval = Approval::from_args(
        args.plan_file.as_deref(),
        args.plan_hash.as_deref(),
        args.auto_approve,
    )?;
    let snapshot = args.source.snapshot()?;
    let rt = common::runtime()?;
    let reporter = if args.github_status {
        let reporter = Reporter::new(&rt, &snapshot, args.github_sha.clone())?;
        reporter.status(StatusState::Pending, "tether is applying this commit")?;
        Some(reporter)
    } else {
        None
    };
    let result = apply(args, &approval, &snapshot, &rt);
    if let Some(r) = &reporter {
        let (state, description) = match &result {
            Ok((outcome, _)) if outcome.report.succeeded() => {
                (StatusState::Success, message::summary_line(&outcome.report))
            }
            Ok((outcome, _)) => (StatusState::Failure, message::summary_line(&outcome.report)),
            Err(Failure::Pass(PassError::Refused(e))) => (
                StatusState::Failure,
                format!("refused, nothing changed: {e}"),
            ),
            Err(Failure::Pass(PassError::NotOffered(e))) => (
                StatusState::Failure,
                format!(
                    "nothing changed: {}",
                    e.0.first().map_or_else(String::new, ToString::to_string)
                ),
            ),
            Err(Failure::Pass(PassError::Load(e))) => {
                (StatusState::Failure, format!("{e}; nothing changed"))
            }
            Err(Failure::Pass(e)) => (StatusState::Error, format!("tether could not apply: {e}")),
            Err(Failure::Cli(e)) => (
                StatusState::Error,
                format!("tether could not apply: {}", e.message),
            ),
        };
        r.status(state, &description)?;
    }
    if let Err(Failure::Pass(e)) = &result
        && let Some(outcome) = e.outcome()
    {
        println!("{}", super::style::current().report(&outcome.report));
    }
    let (outcome, interrupted) = result?;
    println!("{}", super::style::current().report(&outcome.report));
    if let Some(commit) = &outcome.status_commit {
        println!("status commit {commit} on {}", args.status_branch);
    }
    Ok(if interrupted {
        eprintln!(
            "interrupted: actions not started were skipped; the ones in flight were let finish. Run `tether apply` again to finish the rest"
        );
        Outcome::Interrupted
    } else if outcome.plan.suspended && !outcome.plan.is_empty() {
        Outcome::Refused
    } else if outcome.report.succeeded() {
        Outcome::Success
    } else {
        Outcome::Problems
    })
}

/// Prints a plan on stdout, coloured on a terminal.
fn show(plan: &Plan) {
    print!(
        "{}",
        text::render(plan, super::style::current().enabled_for_stdout())
    );
}

/// Plans without acting, shows the plan and has it approved: the hash the pass must then
/// find, or `None` when the pass may act on what it plans (--auto-approve).
fn approve(
    approval: &Approval,
    snapshot: &Snapshot,
    rt: &tokio::runtime::Runtime,
    clients: (
        &impl crate::cloud::Compute,
        &impl crate::cloud::tailscale::Tailnet,
    ),
    options: &PassOptions<'_>,
) -> Result<Option<String>, Failure> {
    if matches!(approval, Approval::Auto) {
        return Ok(None);
    }
    let preview = || -> Result<Plan, PassError> {
        let (compute, tailnet) = clients;
        let loaded = Loaded::from_snapshot(snapshot);
        rt.block_on(reconcile::plan_only(
            loaded,
            compute,
            tailnet,
            &TokioClock,
            options,
        ))
        .map(|(_, _, plan)| plan)
    };
    let plan = match (preview(), approval) {
        (Ok(plan), _) => plan,
        (Err(e), Approval::Ask) => return Err(Failure::Pass(e)),
        // The pass repeats the failure, records it, and acts on nothing but the approved hash.
        (Err(_), _) => return Ok(approval.expected().map(str::to_owned)),
    };
    show(&plan);
    match approval {
        Approval::Saved(saved) if saved.hash != plan.plan_hash => {
            Err(Failure::Cli(saved.mismatch(&plan)))
        }
        Approval::Hash(hash) if *hash != plan.plan_hash => {
            Err(Failure::Pass(PassError::PlanChanged {
                expected: hash.clone(),
                actual: plan.plan_hash,
            }))
        }
        Approval::Ask
            if approve::needs_question(&plan) && !approve::ask(&plan).map_err(Failure::Cli)? =>
        {
            Err(Failure::Cli(CliError::failed(
                "apply cancelled: the answer was not `yes`; nothing was changed",
                "run `tether apply` again and answer yes to apply the plan shown",
            )))
        }
        _ => Ok(Some(plan.plan_hash)),
    }
}

/// Takes the folder-mode apply lock of `fleet`, waiting up to `wait`.
fn local_lock(
    fleet: &str,
    wait: Duration,
    rt: &tokio::runtime::Runtime,
) -> Result<crate::apply::local_lock::LocalLock, Failure> {
    let fleet = tether_schema::names::FleetName::parse(fleet)
        .map_err(|e| Failure::Cli(CliError::failed(e.message, e.hint)))?;
    rt.block_on(crate::apply::local_lock::take(&fleet, wait, &TokioClock))
        .map_err(|e| {
            Failure::Cli(CliError::refused(
                e.to_string(),
                "wait for it to finish, or pass --lock-wait 10m to wait for it; nothing was changed",
            ))
        })
}

/// Runs the pass, holding the lease with --git (the local lock with a folder); `true` with the
/// outcome when it was interrupted.
fn apply(
    args: &ApplyArgs,
    approval: &Approval,
    snapshot: &Snapshot,
    rt: &tokio::runtime::Runtime,
) -> Result<(PassOutcome, bool), Failure> {
    // A folder has no lease: the local lock keeps a second apply here from sweeping the keys
    // this one mints (decision 042). Taken before planning, so the plan shown is the one applied.
    let _local = match (&args.source.git, lease::fleet_name(snapshot)) {
        (None, Some(fleet)) => Some(local_lock(&fleet, args.lock_wait, rt)?),
        _ => None,
    };
    let (compute, tailnet) = common::clients_for(snapshot).map_err(Failure::Cli)?;
    let default = Identity::default();
    let identity = args
        .signing
        .identity(&default.name, &default.email)
        .map_err(Failure::Cli)?;
    if args.source.git.is_some() && identity.signer.is_none() {
        tracing::info!(
            "status commits are unsigned: no signing key (--signing-key, TETHER_SIGNING_KEY, TETHER_SIGNING_KEY_FILE)"
        );
    }
    let started = time::OffsetDateTime::from(TokioClock.now());
    let run = format!("apply-{}", started.unix_timestamp_nanos());
    let status = args.source.git.as_deref().map(|repo| StatusTarget {
        repo,
        remote: args.push_status.as_deref(),
        branch: &args.status_branch,
        source_branch: &args.source_branch,
        identity: &identity,
    });
    let mut options = PassOptions {
        allow_shrink: args.allow_shrink,
        apply: Options {
            concurrency: args.concurrency,
            device_timeout: Duration::from_secs(args.device_timeout),
            device_poll: Duration::from_millis(args.device_poll_ms.max(10)),
            ..Options::default()
        },
        status,
        ..PassOptions::new(&run)
    };
    let expected = approve(approval, snapshot, rt, (&compute, &tailnet), &options)?;
    options.expect_plan_hash = expected.as_deref();
    options.on_plan = matches!(approval, Approval::Auto).then_some(show as fn(&Plan));
    let done = rt.block_on(async {
        let (trigger, signal) = shutdown::channel();
        shutdown::on_os_signals(trigger).map_err(|e| {
            Failure::Cli(CliError::failed(
                format!("cannot listen for Ctrl-C/SIGTERM: {e}"),
                "check the process's signal handling",
            ))
        })?;
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let lease = match (&args.source.git, lease::fleet_name(snapshot)) {
            (Some(repo), Some(fleet)) => Some(
                lease::take(repo, fleet, args.lock_ttl, args.lock_wait, &lease::holder("apply"))
                    .await
                    .map_err(Failure::Cli)?,
            ),
            (None, _) => {
                tracing::warn!(
                    "no single-writer lease: the fleet is a folder (--fleet); a `tether run` daemon or another apply could act at the same time. Use --git to take the lease"
                );
                tracing::warn!(
                    "no status branch: the fleet is a folder (--fleet), so nothing remembers earlier runs. maxDeletionsPerHour counts this run's deletions only, and any deletion or quarantine needs --allow-shrink. Use --git to keep the budgets across runs"
                );
                None
            }
            (Some(_), None) => None,
        };
        let stopper = async {
            match &lease {
                Some(guard) => tokio::select! {
                    _ = signal.requested() => {}
                    reason = guard.lost() => tracing::error!(%reason, "lease lost; starting no new action"),
                },
                None => {
                    signal.requested().await;
                }
            }
            let _ = stop_tx.send(true);
            std::future::pending::<std::convert::Infallible>().await
        };
        let pass = async {
            match &lease {
                Some(guard) => {
                    let compute = Fenced::new(compute, guard.fence());
                    let tailnet = Fenced::new(tailnet, guard.fence());
                    reconcile::run(Loaded::from_snapshot(snapshot), &compute, &tailnet, &TokioClock, &options, stop).await
                }
                None => reconcile::run(Loaded::from_snapshot(snapshot), &compute, &tailnet, &TokioClock, &options, stop).await,
            }
        };
        let work = async {
            tokio::select! {
                biased;
                done = pass => done,
                never = stopper => match never {},
            }
        };
        let outcome = shutdown::grace_after_shutdown(&signal, args.shutdown_grace, work).await;
        // Released whether the pass succeeded, failed or was refused; a pass cut at the end of
        // the grace keeps it until it expires, as requests it sent may still be landing.
        if let (Ok(_), Some(guard)) = (&outcome, lease)
            && let Err(e) = guard.release().await
        {
            tracing::warn!(error = %e, "could not release the lease; it expires on its own");
        }
        let outcome = outcome
            .map_err(|e| {
                Failure::Cli(CliError::failed(
                    format!("interrupted, and {e}: servers may be left half-created and keys unrevoked"),
                    "run `tether plan` to see what is left, then `tether apply` again",
                ))
            })?
            .map_err(Failure::Pass)?;
        Ok((outcome, signal.is_requested()))
    })?;
    journal(snapshot, options.status.as_ref(), &run, &done.0);
    Ok(done)
}

/// Without a status branch, appends the pass's account to this machine's journal
/// ([`audit::journal`]); with one, imports the journal's entries after the pass's own record.
fn journal(
    snapshot: &Snapshot,
    status: Option<&StatusTarget<'_>>,
    run: &str,
    outcome: &PassOutcome,
) {
    let Some(fleet) = lease::fleet_name(snapshot) else {
        return;
    };
    let Some(path) = journal::path(&fleet, &|v| std::env::var(v).ok()) else {
        tracing::warn!(
            "no journal: set TETHER_STATE_DIR (or HOME) so applies without a status branch are recorded"
        );
        return;
    };
    let journal = path.display().to_string();
    match status {
        None if !outcome.report.actions.is_empty() => {
            let text = message::commit_message(&outcome.report, run);
            match journal::append(&path, &text) {
                Ok(()) => tracing::info!(
                    %journal,
                    "no status branch: this apply is recorded in the local journal, which the next `tether apply --git` imports"
                ),
                Err(e) => {
                    tracing::warn!(%journal, error = %e, "this apply could not be recorded in the journal")
                }
            }
        }
        None => {}
        Some(target) => match journal::import(target, &path, &format!("{run}-import")) {
            Ok(Some(commit)) => {
                tracing::info!(%commit, %journal, "imported the applies recorded without a status branch")
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%journal, error = %e, "the journal could not be imported; the next apply tries again")
            }
        },
    }
}
