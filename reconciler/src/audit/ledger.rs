//! What the status branch remembers between runs, read back before planning: the baseline of
//! the shrink circuit breaker, the fleet's device record (proof of device ownership), the
//! servers deleted recently (the hourly deletion budget), and the documents as last written, so
//! that a pass commits only what really changed.
//!
//! Start at [`Ledger::read`]; [`settle`] decides what a pass writes.

use crate::cloud::ServerId;
use crate::cloud::tailscale::DeviceId;
use git2::Oid;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use yaml_rust2::{Yaml, YamlLoader};

/// The file of the fleet-wide document.
pub const FLEET_FILE: &str = "fleet.yaml";
/// The file of the device record.
pub const DEVICES_FILE: &str = "devices.yaml";
/// The file of recent deletions.
pub const DELETIONS_FILE: &str = "deletions.yaml";
/// `status/runtime.yaml`: the runtime rollout and what each on-VM agent last reported
/// (written by [`super::runtime`]).
pub const RUNTIME_FILE: &str = "runtime.yaml";
/// How far back deletions count against `maxDeletionsPerHour`.
pub const DELETION_WINDOW: time::Duration = time::Duration::hours(1);
/// Keys whose value changes on every pass; a document differing only there is unchanged.
const VOLATILE_KEYS: [&str; 3] = ["lastTransitionTime", "lastReconcile", "run"];

/// The last accepted pass, as `status/fleet.yaml` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// Agents in the spec then: the base of the shrink circuit breaker.
    pub agents: usize,
    /// The fleet revision applied.
    pub revision: Option<String>,
    /// The plan applied.
    pub plan_hash: String,
}

/// One server deletion, as `status/deletions.yaml` records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deletion {
    /// When, RFC 3339.
    pub at: String,
    /// The agent the server served.
    pub agent: String,
    /// The server.
    pub server_id: ServerId,
}

/// What the status branch says, as read at the start of a pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// The last accepted pass; `None` when there is none or it cannot be read.
    pub baseline: Option<Baseline>,
    /// The fleet's name, as `status/fleet.yaml` last recorded it.
    pub fleet: Option<String>,
    /// Agents per phase, as `status/fleet.yaml` last recorded them.
    pub phases: BTreeMap<String, usize>,
    /// Devices this fleet enrolled or proved its own: id → agent.
    pub devices: BTreeMap<DeviceId, String>,
    /// Server deletions recorded (the last hour's, as of the last write).
    pub deletions: Vec<Deletion>,
    /// Each unhealthy agent's self-healing record (`heal:` in its document).
    pub heal: BTreeMap<String, crate::plan::heal::Record>,
    /// Every file of `status/`, as written.
    pub files: BTreeMap<String, String>,
}

/// The status branch exists but cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the status branch `{branch}` in {repo}: {message}")]
pub struct LedgerError {
    repo: String,
    branch: String,
    message: String,
}

impl LedgerError {
    /// The error for `branch` of `repo`.
    pub fn new(repo: &Path, branch: &str, message: &str) -> LedgerError {
        LedgerError {
            repo: repo.display().to_string(),
            branch: branch.to_owned(),
            message: message.to_owned(),
        }
    }
}

impl Baseline {
    /// What a pass that moves no baseline keeps recording: the revision, agent count and plan
    /// of the last accepted pass, or nothing when there was none.
    pub fn kept(baseline: Option<&Baseline>) -> (Option<String>, Option<usize>, String) {
        (
            baseline.and_then(|b| b.revision.clone()),
            baseline.map(|b| b.agents),
            baseline.map(|b| b.plan_hash.clone()).unwrap_or_default(),
        )
    }
}

impl Ledger {
    /// Reads `status/` at the tip of `branch` (or, when there is no such local branch, of
    /// `origin/<branch>`); an empty ledger when neither exists yet. A file that does not parse contributes nothing (so a damaged `fleet.yaml` means no
    /// baseline: deletions are then refused without `--allow-shrink`).
    ///
    /// # Errors
    /// The repository cannot be opened, or the branch's tip cannot be read.
    pub fn read(repo: &Path, branch: &str) -> Result<Ledger, LedgerError> {
        let err = |e: git2::Error| LedgerError::new(repo, branch, e.message());
        let r = git2::Repository::open(repo).map_err(err)?;
        let Some(refname) = status_ref(&r, branch) else {
            return Ok(Ledger::default());
        };
        status_files(&r, &refname)
            .map(Ledger::from_files)
            .map_err(err)
    }

    /// The ledger the given `status/` files describe.
    pub fn from_files(files: BTreeMap<String, String>) -> Ledger {
        let doc = |name: &str| files.get(name).and_then(|t| parse(t));
        let fleet_doc = doc(FLEET_FILE);
        let baseline = fleet_doc.as_ref().and_then(|y| {
            Some(Baseline {
                agents: usize::try_from(y["agents"].as_i64()?).ok()?,
                revision: y["revision"].as_str().map(str::to_owned),
                plan_hash: y["planHash"].as_str()?.to_owned(),
            })
        });
        let fleet = fleet_doc
            .as_ref()
            .and_then(|y| y["fleet"].as_str().map(str::to_owned));
        let phases = fleet_doc
            .as_ref()
            .and_then(|y| {
                y["phases"].as_hash().map(|h| {
                    h.iter()
                        .filter_map(|(k, v)| {
                            Some((k.as_str()?.to_owned(), usize::try_from(v.as_i64()?).ok()?))
                        })
                        .collect()
                })
            })
            .unwrap_or_default();
        let devices = doc(DEVICES_FILE)
            .and_then(|y| {
                y["devices"].as_hash().map(|h| {
                    h.iter()
                        .filter_map(|(k, v)| {
                            Some((DeviceId(k.as_str()?.to_owned()), v.as_str()?.to_owned()))
                        })
                        .collect()
                })
            })
            .unwrap_or_default();
        let deletions = doc(DELETIONS_FILE)
            .and_then(|y| {
                y["deletions"].as_vec().map(|items| {
                    items
                        .iter()
                        .filter_map(|d| {
                            Some(Deletion {
                                at: d["at"].as_str()?.to_owned(),
                                agent: d["agent"].as_str()?.to_owned(),
                                server_id: ServerId(u64::try_from(d["serverId"].as_i64()?).ok()?),
                            })
                        })
                        .collect()
                })
            })
            .unwrap_or_default();
        Ledger {
            baseline,
            fleet,
            phases,
            devices,
            deletions,
            heal: super::heal::records(&files),
            files,
        }
    }

    /// Deletions within [`DELETION_WINDOW`] before `now`. An entry whose time does not parse
    /// counts (fail closed).
    pub fn recent_deletions(&self, now: OffsetDateTime) -> Vec<Deletion> {
        self.deletions
            .iter()
            .filter(|d| {
                OffsetDateTime::parse(&d.at, &Rfc3339).map_or(true, |at| now - at < DELETION_WINDOW)
            })
            .cloned()
            .collect()
    }
}

fn parse(text: &str) -> Option<Yaml> {
    YamlLoader::load_from_str(text).ok()?.into_iter().next()
}

/// The document without its volatile keys, for comparison.
fn material(text: &str) -> Option<Yaml> {
    let mut doc = parse(text)?;
    if let Yaml::Hash(h) = &mut doc {
        for key in VOLATILE_KEYS {
            h.remove(&Yaml::String(key.to_owned()));
        }
    }
    Some(doc)
}

/// The lines of `text` without its volatile top-level keys, when each of those is one whole
/// line (`lastReconcile: ...` at the start of a line, the next line not indented); `None` when
/// a volatile value may go on past its line, which only a parse can tell.
fn material_lines(text: &str) -> Option<Vec<&str>> {
    let mut lines = Vec::new();
    let mut after_volatile = false;
    for line in text.lines() {
        if after_volatile && line.starts_with([' ', '\t']) {
            return None;
        }
        after_volatile = VOLATILE_KEYS.iter().any(|k| {
            line.strip_prefix(k)
                .is_some_and(|rest| rest.starts_with(':'))
        });
        if !after_volatile {
            lines.push(line);
        }
    }
    Some(lines)
}

/// Whether `old` and `new` differ in volatile keys at most. The line comparison settles the
/// usual case, documents written the same way, without parsing; anything else is compared as
/// parsed YAML ([`material`]).
fn materially_same(old: &str, new: &str) -> bool {
    if let (Some(a), Some(b)) = (material_lines(old), material_lines(new))
        && a == b
    {
        return true;
    }
    material(old).is_some() && material(old) == material(new)
}

/// What a pass writes, given the files on the branch (`old`) and the files it derived (`new`):
/// `None` when nothing but volatile fields (times, run ids) changed; otherwise the files to
/// commit, where every document that did not materially change keeps its old text (and so its
/// old times).
pub fn settle(
    old: &BTreeMap<String, String>,
    new: BTreeMap<String, String>,
) -> Option<BTreeMap<String, String>> {
    let same = |name: &str, text: &str| old.get(name).is_some_and(|o| materially_same(o, text));
    let changed = old.keys().any(|k| !new.contains_key(k))
        || new.iter().any(|(name, text)| !same(name, text));
    if !changed {
        return None;
    }
    Some(
        new.into_iter()
            .map(|(name, text)| {
                let keep = name != FLEET_FILE && same(&name, &text);
                let text = match (keep, old.get(&name)) {
                    (true, Some(o)) => o.clone(),
                    _ => text,
                };
                (name, text)
            })
            .collect(),
    )
}

/// The ref [`Ledger::read`] reads `branch` from: the local branch, else `origin/<branch>`;
/// `None` when neither exists yet.
pub fn status_ref(repo: &git2::Repository, branch: &str) -> Option<String> {
    [
        format!("refs/heads/{branch}"),
        format!("refs/remotes/origin/{branch}"),
    ]
    .into_iter()
    .find(|refname| repo.find_reference(refname).is_ok())
}

/// The files of `status/` at the tip of `refname`, name → text (files that are not UTF-8 are
/// left out; no `status/` folder reads as none).
///
/// # Errors
/// The ref, its commit or a tree cannot be read.
pub fn status_files(
    repo: &git2::Repository,
    refname: &str,
) -> Result<BTreeMap<String, String>, git2::Error> {
    match status_tree(repo, refname)? {
        Some(tree) => tree_files(repo, tree),
        None => Ok(BTreeMap::new()),
    }
}

/// The id of the `status/` tree at the tip of `refname`; `None` when it has no `status/`.
///
/// # Errors
/// The ref, its commit or its tree cannot be read.
pub fn status_tree(repo: &git2::Repository, refname: &str) -> Result<Option<Oid>, git2::Error> {
    let tree = repo.find_reference(refname)?.peel_to_commit()?.tree()?;
    Ok(tree
        .get_path(Path::new(super::commit::STATUS_DIR))
        .ok()
        .map(|entry| entry.id()))
}

/// The files of the tree `id`, name → text (files that are not UTF-8 are left out).
///
/// # Errors
/// The tree cannot be read.
pub fn tree_files(
    repo: &git2::Repository,
    id: Oid,
) -> Result<BTreeMap<String, String>, git2::Error> {
    let mut files = BTreeMap::new();
    for item in repo.find_tree(id)?.iter() {
        let (Some(name), Ok(blob)) = (item.name(), repo.find_blob(item.id())) else {
            continue;
        };
        if let Ok(text) = std::str::from_utf8(blob.content()) {
            files.insert(name.to_owned(), text.to_owned());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_pass_that_changes_only_times_writes_nothing() {
        let old = files(&[
            (
                "a.yaml",
                "agent: a\nphase: Ready\nlastTransitionTime: \"t1\"\n",
            ),
            (
                "fleet.yaml",
                "agents: 1\nplanHash: h\nlastReconcile: t1\nrun: r1\n",
            ),
        ]);
        let new = files(&[
            (
                "a.yaml",
                "agent: a\nphase: Ready\nlastTransitionTime: \"t2\"\n",
            ),
            (
                "fleet.yaml",
                "agents: 1\nplanHash: h\nlastReconcile: t2\nrun: r2\n",
            ),
        ]);
        assert_eq!(settle(&old, new), None);
    }

    #[test]
    fn a_changed_document_is_written_and_unchanged_ones_keep_their_times() {
        let old = files(&[
            ("a.yaml", "agent: a\nphase: Ready\nlastTransitionTime: t1\n"),
            (
                "b.yaml",
                "agent: b\nphase: Pending\nlastTransitionTime: t1\n",
            ),
            ("fleet.yaml", "agents: 2\nplanHash: h\nlastReconcile: t1\n"),
        ]);
        let new = files(&[
            ("a.yaml", "agent: a\nphase: Ready\nlastTransitionTime: t2\n"),
            ("b.yaml", "agent: b\nphase: Ready\nlastTransitionTime: t2\n"),
            ("fleet.yaml", "agents: 2\nplanHash: h\nlastReconcile: t2\n"),
        ]);
        let written = settle(&old, new).expect("b changed");
        assert_eq!(written["a.yaml"], old["a.yaml"]);
        assert!(written["b.yaml"].contains("t2"));
        assert!(written["fleet.yaml"].contains("t2"));
    }

    #[test]
    fn documents_written_alike_compare_by_line_and_others_by_their_parse() {
        let old = "agent: a\nphase: Ready\nlastTransitionTime: \"t1\"\n";
        assert!(materially_same(
            old,
            "agent: a\nphase: Ready\nlastTransitionTime: \"t2\"\n"
        ));
        assert!(!materially_same(
            old,
            "agent: a\nphase: Degraded\nlastTransitionTime: \"t2\"\n"
        ));
        assert!(
            materially_same(old, "{agent: a, phase: Ready, lastTransitionTime: t3}\n"),
            "another layout is compared as YAML"
        );
        assert_eq!(
            material_lines("run: a\n  b\nphase: Ready\n"),
            None,
            "a volatile value that goes on past its line needs a parse"
        );
        assert!(!materially_same(
            "run: a\n  b\nphase: Ready\n",
            "run: a\nphase: Degraded\n"
        ));
    }

    #[test]
    fn a_removed_document_is_a_change() {
        let old = files(&[("a.yaml", "agent: a\n"), ("fleet.yaml", "agents: 1\n")]);
        let new = files(&[("fleet.yaml", "agents: 1\n")]);
        assert!(settle(&old, new).is_some());
    }

    #[test]
    fn the_ledger_reads_baseline_devices_and_deletions_and_fails_closed_on_damage() {
        let ledger = Ledger::from_files(files(&[
            ("fleet.yaml", "agents: 3\nrevision: abc\nplanHash: h1\n"),
            ("devices.yaml", "devices:\n  n1CNTRL: a\n  n2CNTRL: b\n"),
            (
                "deletions.yaml",
                "deletions:\n  - at: \"2026-11-29T10:00:00Z\"\n    agent: a\n    serverId: 7\n  - at: not-a-time\n    agent: b\n    serverId: 8\n  - at: \"2026-11-29T08:00:00Z\"\n    agent: c\n    serverId: 9\n",
            ),
        ]));
        assert_eq!(
            ledger.baseline,
            Some(Baseline {
                agents: 3,
                revision: Some("abc".into()),
                plan_hash: "h1".into()
            })
        );
        assert_eq!(ledger.devices.len(), 2);
        let now = OffsetDateTime::parse("2026-11-29T10:30:00Z", &Rfc3339).expect("time");
        let recent: Vec<u64> = ledger
            .recent_deletions(now)
            .iter()
            .map(|d| d.server_id.0)
            .collect();
        assert_eq!(
            recent,
            vec![7, 8],
            "the unparsable time counts; the old one does not"
        );
        let damaged = Ledger::from_files(files(&[("fleet.yaml", "agents: [\n")]));
        assert_eq!(damaged.baseline, None);
    }
}
