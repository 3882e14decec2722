//! What `tether plan --github-pr` and `tether apply --github-status` tell GitHub: the
//! `tether/<fleet>` commit status (pending while working, then the verdict) and, for pull
//! requests, the one plan comment tether keeps up to date.

use super::CliError;
use super::common;
use crate::forge::{self, CommitStatus, PrNumber, StatusState};
use crate::plan::render::markdown::MARKER;
use crate::source::Snapshot;
use tether_schema::{LoadError, load_fleet, render};

/// A GitHub client and the commit whose `tether/<fleet>` status it sets.
pub struct Reporter<'rt> {
    rt: &'rt tokio::runtime::Runtime,
    gh: forge::GitHub,
    /// The commit statuses go on.
    sha: String,
    fleet: Option<String>,
    target_url: Option<String>,
}

impl<'rt> Reporter<'rt> {
    /// A reporter for the applied commit: `sha` when given, else the commit the fleet was read
    /// from, else `$GITHUB_SHA`.
    ///
    /// # Errors
    /// No commit is known, or the GitHub configuration is missing or malformed.
    pub fn new(
        rt: &'rt tokio::runtime::Runtime,
        snapshot: &Snapshot,
        sha: Option<String>,
    ) -> Result<Self, CliError> {
        let sha = sha
            .or_else(|| snapshot.commit.clone())
            .or_else(|| std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()))
            .ok_or_else(|| {
            CliError::usage(
                "no commit to report on: the fleet was read from a folder and GITHUB_SHA is unset",
                "pass --github-sha SHA, or read the fleet with --git REPO --rev REV",
            )
        })?;
        Reporter::connect(rt, snapshot, |_| Ok(sha))
    }

    /// A reporter for the head commit of pull request `pr`.
    ///
    /// # Errors
    /// The GitHub configuration is missing, or the pull request cannot be read.
    pub fn for_pull_request(
        rt: &'rt tokio::runtime::Runtime,
        snapshot: &Snapshot,
        pr: PrNumber,
    ) -> Result<Self, CliError> {
        Reporter::connect(rt, snapshot, |gh| {
            rt.block_on(gh.pr_head(pr))
                .map(|head| head.sha)
                .map_err(|e| {
                    CliError::failed(e.to_string(), "check --github-pr and GITHUB_REPOSITORY")
                })
        })
    }

    fn connect(
        rt: &'rt tokio::runtime::Runtime,
        snapshot: &Snapshot,
        sha: impl FnOnce(&forge::GitHub) -> Result<String, CliError>,
    ) -> Result<Self, CliError> {
        let gh = common::github(rt)?;
        let sha = sha(&gh)?;
        Ok(Reporter {
            rt,
            gh,
            sha,
            fleet: fleet_name(snapshot),
            target_url: run_url(),
        })
    }

    /// Sets the `tether/<fleet>` status on the commit. Without a readable fleet name there is
    /// no context to set: a required `tether/<fleet>` check then stays missing, which blocks
    /// the merge, as a failure would.
    ///
    /// # Errors
    /// GitHub refused or could not be reached.
    pub fn status(&self, state: StatusState, description: &str) -> Result<(), CliError> {
        let Some(fleet) = &self.fleet else {
            eprintln!(
                "warning: fleet.yaml names no fleet; no commit status was set (the `tether/<fleet>` check stays missing)"
            );
            return Ok(());
        };
        let mut status = CommitStatus {
            sha: self.sha.clone(),
            state,
            fleet: fleet.clone(),
            description: description.to_owned(),
            target_url: self.target_url.clone(),
        };
        let mut sent = self.rt.block_on(self.gh.set_status(&status));
        if let Err(forge::Error::SecretRefused { .. }) = &sent {
            status.description = generic_description(state).to_owned();
            sent = self.rt.block_on(self.gh.set_status(&status));
        }
        sent.map_err(|e| {
            CliError::failed(
                e.to_string(),
                "check the token's `statuses: write` permission",
            )
        })
    }

    /// The commit the statuses go on (for a pull request, its head).
    pub fn sha(&self) -> &str {
        &self.sha
    }

    /// Creates or edits tether's one comment on `pr`.
    ///
    /// # Errors
    /// GitHub refused or could not be reached.
    pub fn comment(&self, pr: PrNumber, markdown: &str) -> Result<(), CliError> {
        self.rt
            .block_on(self.gh.upsert_plan_comment(pr, markdown))
            .map(|_| ())
            .map_err(|e| {
                CliError::failed(
                    e.to_string(),
                    "check the token's `pull-requests: write` permission",
                )
            })
    }
}

/// The description a status falls back to when its reason held secret-looking material
/// (the guard refused it): the verdict must still end the status, without the reason.
fn generic_description(state: StatusState) -> &'static str {
    match state {
        StatusState::Pending => "tether is working",
        StatusState::Success => "tether: done",
        StatusState::Failure => "tether refused the change; see the run log",
        StatusState::Error => "tether failed; see the run log",
    }
}

/// The comment for a fleet that does not load: every problem with its location, the summary
/// Markdown-escaped and each line of the code block escaped for a terminal (file names and
/// messages come from the pull request).
pub fn invalid_fleet_comment(error: &LoadError, snapshot: &Snapshot) -> String {
    let problems: Vec<String> = render::human(&error.diagnostics, |path| snapshot.text(path))
        .trim_end()
        .lines()
        .map(tether_core::escape::terminal)
        .collect();
    format!(
        "{MARKER}\n### tether plan: 🛑 the fleet does not load\n\n{}; nothing can be planned or applied until every problem is fixed.\n\n```text\n{}\n```\n\nRun `tether validate` locally to check a fix before pushing.\n",
        tether_core::escape::markdown(&error.to_string()),
        problems.join("\n").replace("```", "'''")
    )
}

/// The fleet's name: from fleet.yaml validated on its own (the agents are loaded once, by the
/// pass), or, when fleet.yaml itself is invalid, from its `metadata.name` as written, so the
/// status context stays `tether/<fleet>`.
fn fleet_name(snapshot: &Snapshot) -> Option<String> {
    let file = snapshot
        .files
        .iter()
        .find(|f| f.path == tether_schema::FLEET_FILE)?;
    if let Ok(fleet) = load_fleet(std::slice::from_ref(file)) {
        return Some(fleet.settings.name.to_string());
    }
    let text = snapshot.text(tether_schema::FLEET_FILE)?;
    let after = &text[text.find("metadata")?..];
    let value = after[after.find("name:")? + "name:".len()..]
        .split([',', '}', '\n', '#'])
        .next()?
        .trim()
        .trim_matches(|c| c == '"' || c == '\'');
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then(|| value.to_owned())
}

/// The Actions run page, when running in GitHub Actions.
fn run_url() -> Option<String> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    Some(format!(
        "{}/{}/actions/runs/{}",
        var("GITHUB_SERVER_URL")?,
        var("GITHUB_REPOSITORY")?,
        var("GITHUB_RUN_ID")?
    ))
}
