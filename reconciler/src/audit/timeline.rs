//! Each agent's phases over time, read from the status branch alone: every status commit that
//! changed `status/<agent>.yaml`'s phase, server or error, oldest first. Start at
//! [`phase_changes`]; [`super::log::history`] joins these with the spec changes of the fleet
//! branch, and `tether audit log` and the dashboard both show that one joined timeline.

use super::commit::STATUS_DIR;
use super::ledger::{DELETIONS_FILE, DEVICES_FILE, FLEET_FILE};
use git2::{Oid, Repository, Sort};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use yaml_rust2::YamlLoader;

/// The phase a removed status document is shown with.
pub const REMOVED: &str = "removed";

/// One change of an agent's recorded phase, server or error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseChange {
    /// The status commit that recorded it.
    pub status_commit: String,
    /// Its commit time, UNIX seconds.
    pub time: i64,
    /// The phase (`Ready`, `Failed`, …), or [`REMOVED`] when the document went away.
    pub phase: String,
    /// The server the document names.
    pub server_id: Option<u64>,
    /// The document's `lastError`.
    pub error: Option<String>,
    /// The status commits in a row that recorded it anew: a failure repeated pass after pass
    /// (each time with a new correlation id) is one entry with a count.
    pub count: u32,
}

/// What a status document says that the timeline follows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recorded {
    phase: String,
    server_id: Option<u64>,
    error: Option<String>,
}

fn recorded(text: &str) -> Option<Recorded> {
    let doc = YamlLoader::load_from_str(text).ok()?.into_iter().next()?;
    Some(Recorded {
        phase: doc["phase"].as_str()?.to_owned(),
        server_id: doc["server"]["id"]
            .as_i64()
            .and_then(|i| u64::try_from(i).ok()),
        error: doc["lastError"].as_str().map(str::to_owned),
    })
}

/// Whether `now` records the failure `before` recorded again: the same phase, server and error
/// but for the providers' correlation ids, which are new on every request.
fn same_failure(before: &Recorded, now: &Recorded) -> bool {
    let bare = |e: &str| -> String {
        let mut out = String::new();
        let mut rest = e;
        while let Some(i) = rest.find(" (correlation id ") {
            out.push_str(&rest[..i]);
            rest = rest[i..].find(')').map_or("", |j| &rest[i + j + 1..]);
        }
        out.push_str(rest);
        out
    };
    before.phase == now.phase
        && before.server_id == now.server_id
        && matches!((&before.error, &now.error), (Some(a), Some(b)) if bare(a) == bare(b))
}

/// The agent documents of `status/` in `tree`: agent name (file stem) → blob id.
fn agent_blobs(repo: &Repository, tree: &git2::Tree<'_>) -> BTreeMap<String, Oid> {
    let Ok(entry) = tree.get_path(Path::new(STATUS_DIR)) else {
        return BTreeMap::new();
    };
    let Ok(folder) = repo.find_tree(entry.id()) else {
        return BTreeMap::new();
    };
    folder
        .iter()
        .filter_map(|item| {
            let name = item.name()?;
            if [FLEET_FILE, DEVICES_FILE, DELETIONS_FILE].contains(&name) {
                return None;
            }
            Some((name.strip_suffix(".yaml")?.to_owned(), item.id()))
        })
        .collect()
}

/// Every agent's (or only `agent`'s) phase changes recorded on `status_ref`, oldest first. A
/// pass that rewrote a document without changing its phase, server or error adds nothing; a
/// document that does not parse is skipped.
///
/// # Errors
/// The ref or a commit on it cannot be read.
pub fn phase_changes(
    repo: &Repository,
    status_ref: &str,
    agent: Option<&str>,
) -> Result<BTreeMap<String, Vec<PhaseChange>>, git2::Error> {
    let tip = repo.revparse_single(status_ref)?.peel_to_commit()?;
    let mut walk = repo.revwalk()?;
    walk.push(tip.id())?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
    let mut out: BTreeMap<String, Vec<PhaseChange>> = BTreeMap::new();
    let mut before: BTreeMap<String, Oid> = BTreeMap::new();
    let mut last: BTreeMap<String, Recorded> = BTreeMap::new();
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        let now = agent_blobs(repo, &commit.tree()?);
        let wanted = |name: &str| agent.is_none_or(|a| a == name);
        let mut seen: Vec<(String, Recorded)> = Vec::new();
        for (name, blob) in &now {
            if !wanted(name) || before.get(name) == Some(blob) {
                continue;
            }
            let parsed = repo
                .find_blob(*blob)
                .ok()
                .and_then(|b| std::str::from_utf8(b.content()).ok().and_then(recorded));
            if let Some(r) = parsed {
                seen.push((name.clone(), r));
            }
        }
        for name in before.keys().filter(|n| wanted(n) && !now.contains_key(*n)) {
            let gone = Recorded {
                phase: REMOVED.to_owned(),
                server_id: None,
                error: None,
            };
            seen.push((name.clone(), gone));
        }
        for (name, r) in seen {
            if last.get(&name).is_some_and(|l| same_failure(l, &r)) {
                if let Some(entry) = out.get_mut(&name).and_then(|list| list.last_mut()) {
                    entry.count += 1;
                }
                continue;
            }
            if last.get(&name) == Some(&r) {
                continue;
            }
            out.entry(name.clone()).or_default().push(PhaseChange {
                status_commit: commit.id().to_string(),
                time: commit.time().seconds(),
                phase: r.phase.clone(),
                server_id: r.server_id,
                error: r.error.clone(),
                count: 1,
            });
            last.insert(name, r);
        }
        before = now;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits `files` (name → text, under `status/`) on `refs/heads/tether/status` at `time`.
    fn commit(repo: &Repository, time: i64, files: &[(&str, &str)]) {
        let mut status = repo.treebuilder(None).expect("treebuilder");
        for (name, text) in files {
            let blob = repo.blob(text.as_bytes()).expect("blob");
            status.insert(name, blob, 0o100_644).expect("insert");
        }
        let status = status.write().expect("write");
        let mut root = repo.treebuilder(None).expect("treebuilder");
        root.insert(STATUS_DIR, status, 0o040_000).expect("insert");
        let tree = repo.find_tree(root.write().expect("write")).expect("tree");
        let sig = git2::Signature::new("tether", "tether@t", &git2::Time::new(time, 0))
            .expect("signature");
        let parent = repo
            .find_reference("refs/heads/tether/status")
            .ok()
            .and_then(|r| r.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(
            Some("refs/heads/tether/status"),
            &sig,
            &sig,
            "apply",
            &tree,
            &parents,
        )
        .expect("commit");
    }

    fn doc(phase: &str, id: Option<u64>, time: &str, error: Option<&str>) -> String {
        let server = id.map_or("null".to_owned(), |i| format!("\n  id: {i}"));
        let error = error.map_or("null".to_owned(), |e| format!("\"{e}\""));
        format!(
            "agent: a\nphase: {phase}\nserver: {server}\nlastTransitionTime: \"{time}\"\nlastError: {error}\n"
        )
    }

    #[test]
    fn phases_are_read_from_the_status_history_once_per_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init(dir.path()).expect("init");
        let fleet = ("fleet.yaml", "fleet: f\n");
        commit(
            &repo,
            100,
            &[fleet, ("a.yaml", &doc("Provisioning", Some(7), "t1", None))],
        );
        commit(
            &repo,
            200,
            &[fleet, ("a.yaml", &doc("Ready", Some(7), "t2", None))],
        );
        // Only the observation time moved: nothing to show.
        commit(
            &repo,
            300,
            &[fleet, ("a.yaml", &doc("Ready", Some(7), "t3", None))],
        );
        commit(
            &repo,
            400,
            &[
                fleet,
                (
                    "a.yaml",
                    &doc("Failed", Some(7), "t4", Some("rebuild failed")),
                ),
            ],
        );
        commit(&repo, 500, &[fleet]);

        let changes = phase_changes(&repo, "refs/heads/tether/status", None).expect("read");
        assert_eq!(changes.keys().collect::<Vec<_>>(), ["a"]);
        let seen: Vec<(i64, &str, Option<u64>, Option<&str>)> = changes["a"]
            .iter()
            .map(|c| (c.time, c.phase.as_str(), c.server_id, c.error.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (100, "Provisioning", Some(7), None),
                (200, "Ready", Some(7), None),
                (400, "Failed", Some(7), Some("rebuild failed")),
                (500, REMOVED, None, None),
            ]
        );
        assert!(
            phase_changes(&repo, "refs/heads/tether/status", Some("b"))
                .expect("read")
                .is_empty()
        );
    }

    #[test]
    fn a_failure_repeated_with_new_correlation_ids_is_one_entry_with_a_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init(dir.path()).expect("init");
        let failed = |n: i64| {
            let error = format!("hetzner create: HTTP 503 unavailable: down (correlation id c{n})");
            doc("Failed", None, &format!("t{n}"), Some(&error))
        };
        for n in 1..=3 {
            commit(&repo, n * 100, &[("a.yaml", &failed(n))]);
        }
        commit(
            &repo,
            400,
            &[("a.yaml", &doc("Ready", Some(7), "t4", None))],
        );

        let changes = phase_changes(&repo, "refs/heads/tether/status", None).expect("read");
        let seen: Vec<(i64, &str, u32)> = changes["a"]
            .iter()
            .map(|c| (c.time, c.phase.as_str(), c.count))
            .collect();
        assert_eq!(seen, [(100, "Failed", 3), (400, "Ready", 1)]);
    }
}
