//! `tether validate`: load a fleet from a directory or a git revision and report every problem.

use super::{CliError, Format, Outcome};
use crate::source::{self, Snapshot};
use serde_json::json;
use std::path::PathBuf;
use tether_schema::{load_fleet, render};

/// Check a fleet repository and report every problem with file, line and column.
///
/// Exit status: 0 when the fleet is valid, 1 when it is not (or cannot be read), 64 on a usage
/// error.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Folder holding fleet.yaml and agents/ (default: the current directory).
    #[arg(conflicts_with_all = ["git", "rev"])]
    path: Option<PathBuf>,
    /// Read the fleet from this git repository instead of a folder (no checkout needed).
    #[arg(long, value_name = "REPO", requires = "rev")]
    git: Option<PathBuf>,
    /// The branch, tag or commit to read with --git.
    #[arg(long, value_name = "REV", requires = "git")]
    rev: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// Runs `tether validate`.
///
/// # Errors
/// The source (folder or git repository) cannot be read at all.
pub fn cmd_validate(args: &ValidateArgs) -> Result<Outcome, CliError> {
    let (snapshot, origin) = match (&args.git, &args.rev) {
        (Some(repo), Some(rev)) => (
            source::git::read(repo, rev)?,
            format!("{}@{rev}", repo.display()),
        ),
        _ => {
            let path = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
            (source::dir::read(&path)?, path.display().to_string())
        }
    };
    let result = load_fleet(&snapshot.files);
    match args.format {
        Format::Json => print_json(&snapshot, &origin, &result),
        Format::Text => print_text(&snapshot, &origin, &result),
    }
    Ok(if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Problems
    })
}

fn print_text(
    snapshot: &Snapshot,
    origin: &str,
    result: &Result<tether_schema::Fleet, tether_schema::LoadError>,
) {
    match result {
        Ok(fleet) => {
            let n = fleet.agents.len();
            println!(
                "fleet `{}` at {origin} is valid: {n} agent{}",
                fleet.settings.name,
                if n == 1 { "" } else { "s" }
            );
        }
        Err(e) => {
            eprint!(
                "{}",
                render::human(&e.diagnostics, |path| snapshot.text(path))
            );
            let files = e
                .diagnostics
                .iter()
                .map(|d| d.file.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            let n = e.diagnostics.len();
            eprintln!(
                "error: the fleet at {origin} is invalid: {n} problem{} in {files} file{}",
                if n == 1 { "" } else { "s" },
                if files == 1 { "" } else { "s" }
            );
        }
    }
}

fn print_json(
    snapshot: &Snapshot,
    origin: &str,
    result: &Result<tether_schema::Fleet, tether_schema::LoadError>,
) {
    let doc = match result {
        Ok(fleet) => json!({
            "valid": true,
            "source": origin,
            "commit": snapshot.commit,
            "fleet": fleet.settings.name,
            "agents": fleet.agents.len(),
            "diagnostics": [],
        }),
        Err(e) => json!({
            "valid": false,
            "source": origin,
            "commit": snapshot.commit,
            "fleet": null,
            "agents": null,
            "diagnostics": e.diagnostics,
        }),
    };
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

impl ValidateArgs {
    /// Whether output (and so an error) is JSON.
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }
}
