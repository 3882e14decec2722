//! `tether agent add` / `tether agent remove`: the billing interface, one validated commit per
//! subscription change.

use super::{CliError, Outcome};
use crate::audit::commit::Identity;
use crate::billing::{self, AgentRequest, BillingError, Change, Target};
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
    /// Agent runtime version (default for a new agent: `stable`; an existing agent keeps its own).
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
/// The repository cannot be used, or the branch kept moving.
pub fn cmd_agent(args: &AgentArgs) -> Result<Outcome, CliError> {
    let (repo, result) = match &args.command {
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
            };
            (&a.repo, with_target(&a.repo, |t| billing::add(t, &req)))
        }
        AgentCommand::Remove(r) => (
            &r.repo,
            with_target(&r.repo, |t| {
                billing::remove(t, &r.subscription, r.repo.idempotency_key.as_deref())
            }),
        ),
    };
    match result {
        Ok(Change::Committed { commit, path }) => {
            println!("committed {commit} on {}: {path}", repo.branch);
            Ok(Outcome::Success)
        }
        Ok(Change::Unchanged { reason }) => {
            println!("unchanged: {reason}");
            Ok(Outcome::Success)
        }
        Err(BillingError::Invalid(diagnostics)) => {
            eprint!("{}", render::human(&diagnostics, |_| None));
            eprintln!("error: the change would make the fleet invalid; nothing was committed");
            Ok(Outcome::Problems)
        }
        Err(e) => Err(CliError::failed(
            e.to_string(),
            "check --repo and --branch; for a contended branch, retry",
        )),
    }
}

fn with_target<T>(repo: &RepoArgs, f: impl FnOnce(&Target<'_>) -> T) -> T {
    let identity = Identity {
        name: repo.author_name.clone(),
        email: repo.author_email.clone(),
    };
    f(&Target {
        repo: &repo.repo,
        branch: &repo.branch,
        push: repo.push.as_deref(),
        identity: &identity,
    })
}
