//! What several subcommands share: where the fleet comes from, the provider clients built from
//! the environment, the async runtime, and logging.

use super::CliError;
use crate::audit::commit::Identity;
use crate::audit::signing::Signer;
use crate::cloud::projects::{self, Projects};
use crate::cloud::{hetzner, tailscale};
use crate::forge;
use crate::source::{self, Snapshot};
use std::path::PathBuf;

/// Where to read the fleet from.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Folder holding fleet.yaml and agents/ (default: the current directory).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["git", "rev"])]
    pub fleet: Option<PathBuf>,
    /// Read the fleet from this git repository (no checkout needed); status commits go to it.
    #[arg(long, value_name = "REPO", requires = "rev")]
    pub git: Option<PathBuf>,
    /// The branch, tag or commit to read with --git.
    #[arg(long, value_name = "REV", requires = "git")]
    pub rev: Option<String>,
}

/// The key commits are signed with.
#[derive(Debug, Clone, clap::Args)]
pub struct SigningArgs {
    /// Sign commits with this SSH private key (OpenSSH format, no passphrase), as git does with
    /// `gpg.format=ssh`. Else the key in TETHER_SIGNING_KEY, else the file TETHER_SIGNING_KEY_FILE
    /// names; with none, commits are unsigned.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
}

impl SigningArgs {
    /// Commits as `name <email>`, signed with the configured key.
    ///
    /// # Errors
    /// The key given cannot be read or parsed.
    pub fn identity(&self, name: &str, email: &str) -> Result<Identity, CliError> {
        let signer = Signer::configured(self.signing_key.as_deref(), &|v| std::env::var(v).ok())
            .map_err(|e| {
                CliError::usage(
                    e.to_string(),
                    "pass --signing-key FILE with an OpenSSH private key, or unset TETHER_SIGNING_KEY and TETHER_SIGNING_KEY_FILE to commit unsigned",
                )
            })?;
        Ok(Identity {
            name: name.to_owned(),
            email: email.to_owned(),
            signer,
        })
    }
}

impl SourceArgs {
    /// Reads the fleet files.
    ///
    /// # Errors
    /// The folder or repository cannot be read.
    pub fn snapshot(&self) -> Result<Snapshot, CliError> {
        Ok(match (&self.git, &self.rev) {
            (Some(repo), Some(rev)) => source::git::read(repo, rev)?,
            _ => source::dir::read(self.fleet.as_deref().unwrap_or(std::path::Path::new(".")))?,
        })
    }
}

/// The Hetzner client from `HCLOUD_TOKEN` / `HCLOUD_ENDPOINT`, with the daemon's
/// `TETHER_HETZNER_ACTION_TIMEOUT` when set.
///
/// # Errors
/// The token is missing, or the action timeout is not a duration.
pub fn hetzner() -> Result<hetzner::Client, CliError> {
    let mut config = hetzner::Config::from_env().map_err(|e| {
        CliError::failed(
            e.to_string(),
            "export HCLOUD_TOKEN (and HCLOUD_ENDPOINT for the sandbox); see docs/operations.md",
        )
    })?;
    if let Some(timeout) = action_timeout()? {
        config.action_timeout = timeout;
    }
    hetzner::Client::new(config)
        .map_err(|e| CliError::failed(e.to_string(), "report this as a bug"))
}

/// `TETHER_HETZNER_ACTION_TIMEOUT`, when set.
fn action_timeout() -> Result<Option<std::time::Duration>, CliError> {
    std::env::var("TETHER_HETZNER_ACTION_TIMEOUT")
        .ok()
        .map(|text| {
            crate::process::parse_duration(text.trim()).map_err(|e| {
                CliError::usage(
                    format!("TETHER_HETZNER_ACTION_TIMEOUT: {e}"),
                    "write a number with a unit: `90s`, `10m`",
                )
            })
        })
        .transpose()
}

/// The Tailscale client from `TS_API_KEY` or `TS_OAUTH_CLIENT_ID`/`TS_OAUTH_CLIENT_SECRET`.
///
/// # Errors
/// Credentials are missing.
pub fn tailscale() -> Result<tailscale::Client, CliError> {
    let config = tailscale::Config::from_env().map_err(|e| CliError::failed(e.to_string(), "export TS_API_KEY, or TS_OAUTH_CLIENT_ID and TS_OAUTH_CLIENT_SECRET; see docs/operations.md"))?;
    tailscale::Client::new(config)
        .map_err(|e| CliError::failed(e.to_string(), "report this as a bug"))
}

/// The Hetzner clients `snapshot`'s fleet needs: one per project its fleet.yaml declares
/// (tokens from `HCLOUD_TOKEN_<PROJECT>`, [`projects::tokens`]), else the `HCLOUD_TOKEN`
/// client alone; and the Tailscale client.
///
/// # Errors
/// A token or the Tailscale credentials are missing.
pub fn clients_for(
    snapshot: &Snapshot,
) -> Result<(Projects<hetzner::Client>, tailscale::Client), CliError> {
    clients_for_projects(&tether_schema::declared_projects(&snapshot.files))
}

/// The Hetzner clients of the fleet projects `declared` (none: the `HCLOUD_TOKEN` client alone)
/// and the Tailscale client.
///
/// # Errors
/// A token or the Tailscale credentials are missing; every missing one is named in one error.
pub fn clients_for_projects(
    declared: &[String],
) -> Result<(Projects<hetzner::Client>, tailscale::Client), CliError> {
    match (hetzner_projects(declared), tailscale()) {
        (Ok(compute), Ok(tailnet)) => Ok((compute, tailnet)),
        (Err(compute), Err(tailnet)) => Err(compute.and(tailnet)),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
    }
}

/// The Hetzner clients of the fleet projects `declared` (none: the `HCLOUD_TOKEN` client alone).
fn hetzner_projects(declared: &[String]) -> Result<Projects<hetzner::Client>, CliError> {
    if declared.is_empty() {
        return Ok(Projects::single(hetzner()?));
    }
    let endpoint = std::env::var("HCLOUD_ENDPOINT")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| hetzner::DEFAULT_ENDPOINT.to_owned());
    let mut base = hetzner::Config::new(endpoint, crate::secret::Secret::new(String::new()));
    if let Some(timeout) = action_timeout()? {
        base.action_timeout = timeout;
    }
    let env = |var: &str| std::env::var(var).ok();
    let members = projects::tokens::clients(declared, &base, &env).map_err(|e| {
        CliError::failed(
            e.to_string(),
            "export HCLOUD_TOKEN_<PROJECT> for every project in `spec.projects`; see docs/operations.md",
        )
    })?;
    Ok(Projects::new(members))
}

/// Writes `bytes` (`what`, for the error) to stdout. A reader that stopped early (`tether man |
/// head`) is not an error: the rest is dropped silently, as other Unix tools do.
///
/// # Errors
/// Stdout cannot be written for another reason.
pub fn write_stdout(bytes: &[u8], what: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::failed(
            format!("cannot write {what} to stdout: {e}"),
            "check where stdout goes",
        )),
        _ => Ok(()),
    }
}

/// A multi-threaded tokio runtime for one command.
///
/// # Errors
/// The runtime cannot start.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::failed(
                format!("cannot start the async runtime: {e}"),
                "check the process limits",
            )
        })
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Sends `tracing` events to stderr; `RUST_LOG` overrides `default_level`.
pub fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(super::style::current().enabled_for_stderr())
            .try_init(),
    };
}

/// The GitHub client from `GITHUB_TOKEN` / `GITHUB_REPOSITORY` / `GITHUB_API_URL`, built inside
/// `rt` (octocrab needs a runtime).
///
/// # Errors
/// A variable is missing or malformed.
pub fn github(rt: &tokio::runtime::Runtime) -> Result<forge::GitHub, CliError> {
    let hint = "export GITHUB_TOKEN and GITHUB_REPOSITORY (GitHub Actions sets both; GITHUB_API_URL for GitHub Enterprise or the sandbox); see docs/github.md";
    let config = forge::Config::from_env().map_err(|e| CliError::failed(e.to_string(), hint))?;
    let _guard = rt.enter();
    forge::GitHub::new(config).map_err(|e| CliError::failed(e.to_string(), hint))
}
