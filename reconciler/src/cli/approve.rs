//! How a `tether apply` is approved: a saved plan file, `--plan-hash`, `--auto-approve`, or the
//! question on a terminal. Every way but `--auto-approve` shows a fresh plan first and pins the
//! apply to its hash, so what is applied is exactly what was approved.

use super::CliError;
use crate::plan::{PLAN_VERSION, Plan};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// What approves this apply.
#[derive(Debug)]
pub enum Approval {
    /// A plan saved with `tether plan --out`: apply only a fresh plan of the same hash.
    Saved(SavedPlan),
    /// `--plan-hash`: apply only a fresh plan of this hash.
    Hash(String),
    /// `--auto-approve`: apply whatever the pass plans (shown before it acts).
    Auto,
    /// Ask on the terminal after showing the plan.
    Ask,
}

/// A plan file written by `tether plan --out`.
#[derive(Debug)]
pub struct SavedPlan {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its hash.
    pub hash: String,
    /// Its actions, in the plan's JSON form.
    actions: Vec<Value>,
}

impl Approval {
    /// The approval the flags give.
    ///
    /// # Errors
    /// The plan file cannot be read or is not a saved plan; or nothing approves the apply and
    /// stdin is not a terminal to ask on.
    pub fn from_args(
        plan_file: Option<&Path>,
        plan_hash: Option<&str>,
        auto_approve: bool,
    ) -> Result<Approval, CliError> {
        Ok(match (plan_file, plan_hash) {
            (Some(path), _) => Approval::Saved(SavedPlan::read(path)?),
            (None, Some(hash)) => Approval::Hash(hash.to_owned()),
            (None, None) if auto_approve => Approval::Auto,
            (None, None) if std::io::stdin().is_terminal() => Approval::Ask,
            (None, None) => {
                return Err(CliError::usage(
                    "`tether apply` shows the plan and asks before acting, but stdin is not a terminal to ask on",
                    "pass --auto-approve to apply without asking (automation), or apply an approved plan with --plan-hash HASH or a plan file from `tether plan --out FILE`",
                ));
            }
        })
    }

    /// The hash the fresh plan must have, if any.
    pub fn expected(&self) -> Option<&str> {
        match self {
            Approval::Saved(saved) => Some(&saved.hash),
            Approval::Hash(hash) => Some(hash),
            Approval::Auto | Approval::Ask => None,
        }
    }
}

impl SavedPlan {
    /// Reads a plan file written by `tether plan --out`.
    ///
    /// # Errors
    /// The file cannot be read, is not JSON, has no plan hash, or is of another plan version.
    pub fn read(path: &Path) -> Result<SavedPlan, CliError> {
        let bad = |what: String| {
            CliError::usage(
                format!("{}: {what}", path.display()),
                "give a file written by `tether plan --out FILE`",
            )
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let doc: Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a saved plan: {e}")))?;
        let hash = doc["planHash"]
            .as_str()
            .ok_or_else(|| bad("not a saved plan: no `planHash`".to_owned()))?;
        if doc["version"].as_u64() != Some(u64::from(PLAN_VERSION)) {
            return Err(bad(format!(
                "plan version {} is not this tether's ({PLAN_VERSION})",
                doc["version"]
            )));
        }
        Ok(SavedPlan {
            path: path.to_owned(),
            hash: hash.to_owned(),
            actions: doc["actions"].as_array().cloned().unwrap_or_default(),
        })
    }

    /// The refusal when `fresh` is not the saved plan: both hashes and the actions that are in
    /// only one of them or differ between them.
    pub fn mismatch(&self, fresh: &Plan) -> CliError {
        let by_key = |actions: &[Value]| -> BTreeMap<String, Value> {
            actions.iter().map(|a| (describe(a), a.clone())).collect()
        };
        let now: Vec<Value> = fresh
            .actions
            .iter()
            .filter_map(|a| serde_json::to_value(a).ok())
            .collect();
        let (saved, current) = (by_key(&self.actions), by_key(&now));
        let mut differs = Vec::new();
        for (key, action) in &saved {
            match current.get(key) {
                None => differs.push(format!("saved only: {key}")),
                Some(other) if other != action => differs.push(format!("changed: {key}")),
                Some(_) => {}
            }
        }
        differs.extend(
            current
                .keys()
                .filter(|k| !saved.contains_key(*k))
                .map(|k| format!("now also: {k}")),
        );
        let what = if differs.is_empty() {
            "the same actions, but the inventory or the policy they act on changed".to_owned()
        } else {
            differs.join("; ")
        };
        CliError::refused(
            format!(
                "the saved plan {} is not what applying would do now: saved plan hash {}, fresh plan hash {}; nothing was changed. What differs: {what}",
                self.path.display(),
                self.hash,
                fresh.plan_hash
            ),
            "run `tether plan --out FILE` again, review it, and apply the new file",
        )
    }
}

/// `create alpha` for an action in the plan's JSON form, with the server or device it acts
/// on when it has one (`delete alpha (server 7)`), as an agent can have several.
fn describe(action: &Value) -> String {
    let mut key = format!(
        "{} {}",
        action["kind"].as_str().unwrap_or("?"),
        action["agent"].as_str().unwrap_or("?")
    );
    if let Some(server) = action["serverId"].as_u64() {
        key.push_str(&format!(" (server {server})"));
    }
    if let Some(device) = action["deviceId"].as_str() {
        key.push_str(&format!(" (device {device})"));
    }
    key
}

/// Asks whether to apply `plan`'s actions; `true` only for the answer `yes`.
///
/// # Errors
/// The terminal cannot be written or read.
pub fn ask(plan: &Plan) -> Result<bool, CliError> {
    let io = |e: std::io::Error| {
        CliError::failed(
            format!("cannot ask on the terminal: {e}"),
            "pass --auto-approve to apply without asking",
        )
    };
    let mut out = std::io::stdout().lock();
    write!(
        out,
        "\nApply these {} actions? Only 'yes' will be accepted: ",
        plan.actions.len()
    )
    .map_err(io)?;
    out.flush().map_err(io)?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(io)?;
    Ok(answer.trim() == "yes")
}

/// Whether a shown plan needs a yes: it changes something, and it is neither refused (the
/// pass records the refusal) nor suspended (nothing of it is applied).
pub fn needs_question(plan: &Plan) -> bool {
    plan.accepted() && !plan.suspended && !plan.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(text: &str) -> Result<SavedPlan, CliError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.json");
        std::fs::write(&path, text).expect("write");
        SavedPlan::read(&path)
    }

    #[test]
    fn a_saved_plan_is_read_back_with_its_hash_and_actions() {
        let plan = saved(&format!(
            r#"{{"version": {PLAN_VERSION}, "planHash": "abc", "actions": [{{"kind": "create", "agent": "a"}}]}}"#
        ))
        .expect("saved plan");
        assert_eq!(plan.hash, "abc");
        assert_eq!(describe(&plan.actions[0]), "create a");
    }

    #[test]
    fn files_that_are_not_saved_plans_of_this_version_are_usage_errors_naming_the_file() {
        for (text, says) in [
            ("not json", "not a saved plan"),
            (r#"{"version": 2}"#, "no `planHash`"),
            (r#"{"version": 1, "planHash": "abc"}"#, "plan version 1"),
        ] {
            let err = saved(text).expect_err(text).to_string();
            assert!(err.contains("plan.json") && err.contains(says), "{err}");
        }
    }
}
