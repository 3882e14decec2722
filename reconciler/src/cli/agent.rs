//! `tether agent add` / `tether agent remove`: the billing interface, one validated commit per
//! subscription change; `tether agent purge` ([`purge`]) deletes a quarantined server early.

mod purge;

use super::common::{self, SigningArgs};
use super::{CliError, Outcome};
use crate::audit::commit::Identity;
use crate::billing::{self, AgentRequest, BillingError, Change, Target};
use crate::forge;
use std::path::PathBuf;
use tether_schema::render;

/// Add, update or remove an agent spec as billing automation does.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AgentCommand {
    Add(AddArgs),
    Remove(RemoveArgs),
    Purge(purge::PurgeArgs),
}

/// Where billing commits.
#[derive(Debug, clap::Args)]
struct RepoArgs {
    /// The fleet repository (a clone or a bare repository).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// The fleet branch.
    #[arg(long, default_value = "main")]
    branch: String,
    /// Push the commit to this remote (name or URL), rebasing the one-file change if the branch
    /// moved; without it only the local branch moves.
    #[arg(long, value_name = "REMOTE")]
    push: Option<String>,
    /// Open a pull request instead of committing to --branch: the change goes on the branch
    /// `tether/agent-<subscription>` pushed to --push, and a pull request into --branch is
    /// opened (or the open one found). Needs GITHUB_TOKEN and GITHUB_REPOSITORY.
    #[arg(long, requires = "push")]
    open_pr: bool,
    /// Idempotency key (e.g. the billing event id): a key already on the branch changes nothing.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// Commit author name.
    #[arg(long, env = "TETHER_AUTHOR_NAME", default_value = "tether billing")]
    author_name: String,
    /// Commit author email.
    #[arg(
        long,
        env = "TETHER_AUTHOR_EMAIL",
        default_value = "billing@tether.invalid"
    )]
    author_email: String,
    #[command(flatten)]
    signing: SigningArgs,
}

/// Write (or update) the agent spec of a subscription and commit it.
#[derive(Debug, clap::Args)]
struct AddArgs {
    /// Billing subscription id.
    #[arg(long)]
    subscription: String,
    /// Customer id: the `customer` label and the spec's folder under agents/.
    #[arg(long)]
    customer: String,
    /// Agent name (default: derived from the subscription id).
    #[arg(long)]
    name: Option<String>,
    /// Server type (default: fleet.yaml's).
    #[arg(long = "type", value_name = "TYPE")]
    server_type: Option<String>,
    /// Location (default: fleet.yaml's).
    #[arg(long)]
    location: Option<String>,
    /// Image (default: fleet.yaml's).
    #[arg(long)]
    image: Option<String>,
    /// Value of the `plan` label.
    #[arg(long)]
    plan: Option<String>,
    /// Agent runtime version, e.g. 1.4.2: required for a new agent (tether never installs an
    /// unpinned version); an existing agent keeps its own unless given.
    #[arg(long)]
    runtime_version: Option<String>,
    #[command(flatten)]
    repo: RepoArgs,
}

/// Remove the agent spec of a subscription and commit it.
#[derive(Debug, clap::Args)]
struct RemoveArgs {
    /// Billing subscription id.
    #[arg(long)]
    subscription: String,
    #[command(flatten)]
    repo: RepoArgs,
}

/// Runs `tether agent ...`.
///
/// # Errors
/// The repository cannot be used, the branch kept moving, or GitHub refused the pull request.
pub fn cmd_agent(args: &AgentArgs) -> Result<Outcome, CliError> {
    let (repo, subscription, summary) = match &args.command {
        AgentCommand::Add(a) => (
            &a.repo,
            &a.subscription,
            format!(
                "Add agent {} (subscription {})",
                a.name
                    .clone()
                    .unwrap_or_else(|| billing::default_name(&a.subscription)),
                a.subscription
            ),
        ),
        AgentCommand::Remove(r) => (
            &r.repo,
            &r.subscription,
            format!("Remove the agent of subscription {}", r.subscription),
        ),
        AgentCommand::Purge(p) => return purge::cmd_purge(p),
    };
    if let Some(remote) = &repo.push {
        check_remote(&repo.repo, remote)?;
    }
    let pr = repo
        .open_pr
        .then(|| PullRequestArgs::new(subscription))
        .transpose()?;
    // Built before committing, so missing GitHub settings fail before anything is pushed.
    let runtime_and_forge = pr
        .as_ref()
        .map(|_| {
            let rt = common::runtime()?;
            let gh = common::github(&rt)?;
            Ok::<_, CliError>((rt, gh))
        })
        .transpose()?;
    let branch = pr
        .as_ref()
        .map_or(repo.branch.as_str(), |p| p.branch.as_str());
    let base = pr.as_ref().map(|_| repo.branch.as_str());
    let identity = repo
        .signing
        .identity(&repo.author_name, &repo.author_email)?;
    let result = match &args.command {
        AgentCommand::Add(a) => {
            let req = AgentRequest {
                subscription: a.subscription.clone(),
                customer: a.customer.clone(),
                name: a.name.clone(),
                server_type: a.server_type.clone(),
                location: a.location.clone(),
                image: a.image.clone(),
                plan: a.plan.clone(),
                runtime_version: a.runtime_version.clone(),
                idempotency_key: a.repo.idempotency_key.clone(),
                power: None,
                whole_server: false,
            };
            with_target(repo, &identity, branch, base, |t| billing::add(t, &req))
        }
        AgentCommand::Remove(r) => with_target(repo, &identity, branch, base, |t| {
            billing::remove(t, &r.subscription, r.repo.idempotency_key.as_deref())
        }),
        AgentCommand::Purge(p) => return purge::cmd_purge(p),
    };
    match result {
        Ok(Change::Committed { commit, path }) => match &args.command {
            AgentCommand::Remove(_) => println!("removed {path}: committed {commit} on {branch}"),
            _ => println!("committed {commit} on {branch}: {path}"),
        },
        Ok(Change::Unchanged { reason }) => {
            println!("unchanged: {reason}");
        }
        Err(BillingError::Invalid(diagnostics)) => {
            eprint!("{}", render::human(&diagnostics, |_| None));
            eprintln!("error: the change would make the fleet invalid; nothing was committed");
            return Ok(Outcome::Problems);
        }
        Err(e @ BillingError::RuntimeVersionRequired { .. }) => {
            return Err(CliError::usage(
                e.to_string(),
                "pass --runtime-version VERSION: the agent runtime version its VM installs",
            ));
        }
        Err(e @ BillingError::Field { .. }) => {
            return Err(CliError::usage(
                e.to_string(),
                "pass the value as billing has it, within the grammar: tether refuses such a value rather than cut or rewrite it",
            ));
        }
        Err(e @ BillingError::DirtyWorkTree { .. }) => {
            return Err(CliError::failed(
                e.to_string(),
                "commit or stash those changes (`git stash`) and run the command again, or point --repo at a bare clone",
            ));
        }
        Err(e @ BillingError::Diverged { .. }) => {
            return Err(CliError::failed(
                e.to_string(),
                "push or rebase the local commits first (`git pull --rebase`, then `git push`), and run the command again",
            ));
        }
        Err(e) => {
            return Err(CliError::failed(
                e.to_string(),
                "check --repo and --branch; for a contended branch, retry",
            ));
        }
    }
    if let (Some(pr), Some((rt, gh))) = (pr, runtime_and_forge) {
        open_pull_request(repo, &pr, &summary, &rt, &gh)?;
    }
    Ok(Outcome::Success)
}

/// The pull-request branch of `--open-pr`.
struct PullRequestArgs {
    branch: String,
    subscription: String,
}

impl PullRequestArgs {
    fn new(subscription: &str) -> Result<Self, CliError> {
        let branch = format!("tether/agent-{subscription}");
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(CliError::usage(
                format!("--subscription `{subscription}` cannot name a git branch ({branch})"),
                "use a subscription id of letters, digits, `_` and `-`",
            ));
        }
        Ok(PullRequestArgs {
            branch,
            subscription: subscription.to_owned(),
        })
    }
}

/// Opens (or finds) the pull request from the agent's branch into the fleet branch, when the
/// branch exists: a request that changed nothing and had no branch has nothing to review.
fn open_pull_request(
    repo: &RepoArgs,
    pr: &PullRequestArgs,
    summary: &str,
    rt: &tokio::runtime::Runtime,
    gh: &forge::GitHub,
) -> Result<(), CliError> {
    let has_branch = git2::Repository::open(&repo.repo)
        .and_then(|r| r.refname_to_id(&format!("refs/heads/{}", pr.branch)))
        .is_ok();
    if !has_branch {
        println!("no pull request: branch {} does not exist", pr.branch);
        return Ok(());
    }
    let mut body = format!(
        "Opened by `tether agent` for subscription `{}`.\n\ntether posts its plan for this change here; merging it into `{}` lets tether apply it.\n",
        pr.subscription, repo.branch
    );
    if let Some(key) = &repo.idempotency_key {
        body.push_str(&format!("\nIdempotency key: `{key}`\n"));
    }
    let new = forge::NewPullRequest {
        head: pr.branch.clone(),
        base: repo.branch.clone(),
        title: summary.to_owned(),
        body,
    };
    let number = rt.block_on(gh.create_pull_request(&new)).map_err(|e| {
        CliError::failed(
            e.to_string(),
            "the branch is pushed; run the same command again to open the pull request",
        )
    })?;
    println!("pull request {number}: {} <- {}", repo.branch, pr.branch);
    Ok(())
}

/// `--push NAME` must name a configured remote; a URL or a path (anything with `/` or `:`, or
/// an existing folder) is taken as is. Checked before anything is committed, so a mistyped
/// remote says so instead of failing the push with "unsupported URL protocol".
fn check_remote(repo: &std::path::Path, remote: &str) -> Result<(), CliError> {
    if remote.contains(['/', ':', '\\']) || std::path::Path::new(remote).is_dir() {
        return Ok(());
    }
    let Ok(git) = git2::Repository::open(repo) else {
        // The billing step reports an unreadable repository in its own words.
        return Ok(());
    };
    let names = git
        .remotes()
        .map(|r| r.iter().flatten().map(str::to_owned).collect::<Vec<_>>())
        .unwrap_or_default();
    if names.iter().any(|n| n == remote) {
        return Ok(());
    }
    let known = if names.is_empty() {
        "it has no remotes".to_owned()
    } else {
        format!("its remotes: {}", names.join(", "))
    };
    Err(CliError::usage(
        format!(
            "--push `{remote}`: the repository at {} has no remote `{remote}` ({known}); nothing was committed",
            repo.display()
        ),
        format!(
            "add it (`git -C {} remote add {remote} URL`), or pass --push with a remote's URL",
            repo.display()
        ),
    ))
}

fn with_target<T>(
    repo: &RepoArgs,
    identity: &Identity,
    branch: &str,
    base: Option<&str>,
    f: impl FnOnce(&Target<'_>) -> T,
) -> T {
    f(&Target {
        repo: &repo.repo,
        branch,
        base,
        push: repo.push.as_deref(),
        identity,
    })
}
