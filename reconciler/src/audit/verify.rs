//! `tether audit verify`: walks the status branch and proves what it can. Every status commit
//! must be signed by a key the allowed signers allow for its committer
//! ([`super::signers`]), carry well-formed trailers, follow the one before it (one parent, a
//! fleet commit that only moves forward), and name each provider action id once. Each
//! departure is a [`Finding`] naming the commit and its author.

use super::signers::AllowedSigners;
use super::{TRAILER_PLAN, TRAILER_RUN, TRAILER_SOURCE};
use git2::{Oid, Repository};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// One thing the status branch cannot prove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The status commit.
    pub commit: String,
    /// Its author, `Name <email>`.
    pub author: String,
    /// Its subject line.
    pub summary: String,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a status commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "detail")]
pub enum Problem {
    /// It carries no signature.
    Unsigned,
    /// Its signature is not accepted: another key, another committer, outside the key's
    /// validity, or not over this content.
    BadSignature(String),
    /// A trailer is missing, repeated or malformed.
    Trailers(String),
    /// It does not follow the commit before it.
    Chain(String),
    /// A provider action id it names was named by an earlier status commit too.
    ActionTwice {
        /// The Hetzner action id.
        action: u64,
        /// The earlier commit naming it.
        first: String,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.problem {
            Problem::Unsigned => "unsigned".to_owned(),
            Problem::BadSignature(why) => format!("forged signature: {why}"),
            Problem::Trailers(why) => format!("trailers: {why}"),
            Problem::Chain(why) => format!("chain: {why}"),
            Problem::ActionTwice { action, first } => {
                format!("action {action} was already recorded by {}", short(first))
            }
        };
        write!(
            f,
            "{} by {}: {what} ({})",
            short(&self.commit),
            self.author,
            self.summary
        )
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Status commits checked.
    pub checked: usize,
    /// Of them, signed by an allowed key.
    pub signed: usize,
    /// Provider action ids accounted for, each by one commit.
    pub actions: usize,
    /// Everything that cannot be proved, oldest first.
    pub findings: Vec<Finding>,
}

/// The trailers of a commit message, read with git's rules ([`super::trailers::parse`]), by key.
pub fn trailers(message: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in super::trailers::parse(message) {
        out.entry(key).or_default().push(value);
    }
    out
}

/// The Hetzner action ids a status commit's body names (`[… actions 1,2 …]`).
pub fn action_ids(message: &str) -> Vec<u64> {
    message
        .lines()
        .filter_map(|l| l.rsplit_once(" [").map(|(_, ids)| ids))
        .flat_map(|ids| ids.trim_end_matches(']').split(", "))
        .filter_map(|part| part.strip_prefix("actions "))
        .flat_map(|list| list.split(','))
        .filter_map(|id| id.trim().parse().ok())
        .collect()
}

/// Verifies the status commits reachable from `status_ref` (first parents), those committed at
/// or after `since` (Unix seconds) when given, oldest first.
///
/// # Errors
/// The repository or the ref cannot be read.
pub fn verify(
    repo: &Repository,
    status_ref: &str,
    since: Option<i64>,
    signers: &AllowedSigners,
) -> Result<Verification, git2::Error> {
    let tip = repo.revparse_single(status_ref)?.peel_to_commit()?;
    let mut walk = repo.revwalk()?;
    walk.push(tip.id())?;
    walk.simplify_first_parent()?;
    let mut commits = Vec::new();
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        if since.is_some_and(|s| commit.committer().when().seconds() < s) {
            break;
        }
        commits.push(commit);
    }
    commits.reverse();
    let mut out = Verification::default();
    let mut previous_source: Option<Oid> = None;
    let mut seen_actions: BTreeMap<u64, String> = BTreeMap::new();
    for commit in &commits {
        out.checked += 1;
        let finding = |problem| Finding {
            commit: commit.id().to_string(),
            author: format!(
                "{} <{}>",
                commit.author().name().unwrap_or("?"),
                commit.author().email().unwrap_or("?")
            ),
            summary: commit.summary().unwrap_or("").to_owned(),
            problem,
        };
        match signature(repo, commit, signers) {
            Ok(()) => out.signed += 1,
            Err(problem) => out.findings.push(finding(problem)),
        }
        let message = commit.message().unwrap_or("");
        let source = match source_commit(repo, message) {
            Ok(source) => source,
            Err(why) => {
                out.findings.push(finding(Problem::Trailers(why)));
                None
            }
        };
        if commit.parent_count() > 1 {
            out.findings.push(finding(Problem::Chain(format!(
                "a merge of {} parents; tether writes one line of commits",
                commit.parent_count()
            ))));
        }
        if let (Some(before), Some(now)) = (previous_source, source)
            && before != now
            && !repo.graph_descendant_of(now, before)?
        {
            out.findings.push(finding(Problem::Chain(format!(
                "its fleet commit {} does not follow the previous status commit's {}",
                short(&now.to_string()),
                short(&before.to_string())
            ))));
        }
        previous_source = source.or(previous_source);
        for action in action_ids(message) {
            match seen_actions.get(&action) {
                Some(first) => out.findings.push(finding(Problem::ActionTwice {
                    action,
                    first: first.clone(),
                })),
                None => {
                    seen_actions.insert(action, commit.id().to_string());
                    out.actions += 1;
                }
            }
        }
    }
    Ok(out)
}

/// Checks the commit's signature against the allowed signers for its committer.
fn signature(
    repo: &Repository,
    commit: &git2::Commit<'_>,
    signers: &AllowedSigners,
) -> Result<(), Problem> {
    let Ok((armored, data)) = repo.extract_signature(&commit.id(), None) else {
        return Err(Problem::Unsigned);
    };
    let armored = armored.as_str().unwrap_or("");
    let committer = commit.committer();
    signers
        .check(
            committer.email().unwrap_or(""),
            committer.when().seconds(),
            armored,
            &data,
        )
        .map(|_| ())
        .map_err(|r| Problem::BadSignature(r.to_string()))
}

/// The fleet commit a status commit names, checking its trailers: one source commit (a commit
/// of this repository, or `none`), one run, at most one plan hash.
fn source_commit(repo: &Repository, message: &str) -> Result<Option<Oid>, String> {
    let trailers = trailers(message);
    let one = |key: &str| match trailers.get(key).map(Vec::as_slice) {
        None | Some([]) => Err(format!("no {key}")),
        Some([value]) if !value.is_empty() => Ok(Some(value.clone())),
        Some([_]) => Err(format!("an empty {key}")),
        Some(_) => Err(format!("{key} more than once")),
    };
    one(TRAILER_RUN)?;
    if trailers.get(TRAILER_PLAN).is_some_and(|v| v.len() > 1) {
        return Err(format!("{TRAILER_PLAN} more than once"));
    }
    let source = one(TRAILER_SOURCE)?.unwrap_or_default();
    if source == "none" {
        return Ok(None);
    }
    let oid = Oid::from_str(&source)
        .map_err(|_| format!("{TRAILER_SOURCE} `{source}` is not a commit id"))?;
    repo.find_commit(oid)
        .map(|c| Some(c.id()))
        .map_err(|_| format!("{TRAILER_SOURCE} {source} is not a commit of this repository"))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::commit::{self, Identity, Target};
    use crate::audit::signing::tests::signer;
    use std::sync::Arc;

    fn message(source: &str, run: &str, body: &str) -> String {
        format!(
            "apply x: +1 created\n\n{body}\n\n{TRAILER_SOURCE}: {source}\n{TRAILER_PLAN}: abc\n{TRAILER_RUN}: {run}\n"
        )
    }

    fn write(repo: &std::path::Path, identity: &Identity, n: &str, message: &str) {
        let target = Target {
            repo,
            remote: None,
            branch: "tether/status",
            source_branch: "main",
            identity,
        };
        let files = BTreeMap::from([("fleet.yaml".to_owned(), format!("n: {n}\n"))]);
        commit::write(&target, &files, message).expect("write");
    }

    #[test]
    fn trailers_are_read_from_the_last_paragraph_only() {
        let t = trailers("s\n\nNote: not a trailer\n\nTether-Run: r1\nTether-Plan-Hash: h\n");
        assert_eq!(t.get("Tether-Run"), Some(&vec!["r1".to_owned()]));
        assert_eq!(t.get("Note"), None);
    }

    #[test]
    fn action_ids_come_from_each_lines_provider_ids() {
        let body = "create a done [server 7, actions 11,12, devices d1]\ndelete b done [server 8, actions 13]";
        assert_eq!(action_ids(body), [11, 12, 13]);
    }

    #[test]
    fn a_forged_and_an_unsigned_commit_are_named_with_their_authors() {
        let dir = tempfile::tempdir().expect("tmp");
        Repository::init_bare(dir.path()).expect("init");
        let tether = Identity {
            signer: Some(Arc::new(signer(1))),
            ..Identity::default()
        };
        let intruder = Identity {
            name: "Mallory".into(),
            email: "tether@localhost".into(),
            signer: Some(Arc::new(signer(9))),
        };
        let careless = Identity {
            name: "Eve".into(),
            ..Identity::default()
        };
        let body = "create a done [server 1, actions 5]";
        write(dir.path(), &tether, "1", &message("none", "r1", body));
        write(dir.path(), &intruder, "2", &message("none", "r2", body));
        write(dir.path(), &careless, "3", &message("none", "r3", ""));
        let allowed = AllowedSigners::parse(
            &format!("tether@localhost {}\n", signer(1).public_key()),
            "signers",
        )
        .expect("signers");
        let repo = Repository::open(dir.path()).expect("open");
        let result = verify(&repo, "refs/heads/tether/status", None, &allowed).expect("verify");
        assert_eq!((result.checked, result.signed), (3, 1));
        let named: Vec<(&str, &Problem)> = result
            .findings
            .iter()
            .map(|f| (f.author.as_str(), &f.problem))
            .collect();
        assert!(
            matches!(
                named.as_slice(),
                [
                    ("Mallory <tether@localhost>", Problem::BadSignature(_)),
                    (
                        "Mallory <tether@localhost>",
                        Problem::ActionTwice { action: 5, .. }
                    ),
                    ("Eve <tether@localhost>", Problem::Unsigned),
                ]
            ),
            "{named:?}"
        );
    }

    #[test]
    fn a_missing_run_or_an_unknown_source_commit_is_a_trailer_finding() {
        let dir = tempfile::tempdir().expect("tmp");
        Repository::init_bare(dir.path()).expect("init");
        let tether = Identity {
            signer: Some(Arc::new(signer(1))),
            ..Identity::default()
        };
        write(
            dir.path(),
            &tether,
            "1",
            "apply x\n\nTether-Source-Commit: none\n",
        );
        write(
            dir.path(),
            &tether,
            "2",
            &message(&"ab".repeat(20), "r2", ""),
        );
        let allowed = AllowedSigners::parse(&format!("* {}\n", signer(1).public_key()), "signers")
            .expect("signers");
        let repo = Repository::open(dir.path()).expect("open");
        let result = verify(&repo, "refs/heads/tether/status", None, &allowed).expect("verify");
        let problems: Vec<&Problem> = result.findings.iter().map(|f| &f.problem).collect();
        assert_eq!(
            problems,
            [
                &Problem::Trailers("no Tether-Run".to_owned()),
                &Problem::Trailers(format!(
                    "Tether-Source-Commit {} is not a commit of this repository",
                    "ab".repeat(20)
                )),
            ]
        );
    }
}
