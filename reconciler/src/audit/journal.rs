//! The local journal of applies that had no status branch (`tether apply --fleet`): each one's
//! account, as its status commit would have said it, appended to a file on this machine; the
//! next `tether apply --git` of the same fleet imports them as one status commit
//! ([`import`]) and empties the journal.

use super::commit::{self, CommitError, Target};
use super::{TRAILER_RUN, TRAILER_SOURCE};
use git2::Oid;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Overrides where journals are kept.
pub const DIR_ENV: &str = "TETHER_STATE_DIR";
/// The line between two entries.
const SEPARATOR: &str = "\n-- end of tether journal entry --\n";

/// The journal file of `fleet`: in `$TETHER_STATE_DIR`, else `$XDG_STATE_HOME/tether`, else
/// `~/.local/state/tether`. `None` when none of them is set.
pub fn path(fleet: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let dir = env(DIR_ENV)
        .map(PathBuf::from)
        .or_else(|| env("XDG_STATE_HOME").map(|d| Path::new(&d).join("tether")))
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".local/state/tether")))?;
    Some(dir.join(format!("journal-{fleet}.txt")))
}

/// Appends `message` (a status commit message) to the journal at `path`.
///
/// # Errors
/// The folder or the file cannot be written.
pub fn append(path: &Path, message: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    write!(file, "{}{SEPARATOR}", message.trim_end())?;
    file.sync_all()
}

/// The journal's entries, oldest first; none when it does not exist.
///
/// # Errors
/// The file exists but cannot be read.
pub fn entries(path: &Path) -> std::io::Result<Vec<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .split(SEPARATOR)
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Why the journal could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The journal could not be read or emptied.
    #[error("the journal `{path}`: {message}")]
    File {
        /// The journal.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// The status commit could not be written; the journal is kept.
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// Imports the journal at `path` into the status branch as one commit holding every entry's
/// summary and action lines, then removes the journal. `None` when it was empty.
///
/// # Guarantees
/// The journal is removed only after the commit landed; a crash in between imports the same
/// entries twice, which `tether audit verify` shows (the same action ids in two commits).
///
/// # Errors
/// The journal cannot be read or removed, or the commit cannot be written.
pub fn import(target: &Target<'_>, path: &Path, run: &str) -> Result<Option<Oid>, JournalError> {
    let file = |e: std::io::Error| JournalError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let entries = entries(path).map_err(file)?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut message = format!(
        "import {} applies made without a status branch\n\n",
        entries.len()
    );
    for entry in &entries {
        let body = entry.rsplit_once("\n\n").map_or(entry.as_str(), |(b, _)| b);
        message.push_str(body.trim_end());
        message.push_str("\n\n");
    }
    message.push_str(&format!("{TRAILER_SOURCE}: none\n{TRAILER_RUN}: {run}\n"));
    let oid = commit::note(target, &message)?;
    std::fs::remove_file(path).map_err(file)?;
    Ok(Some(oid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::commit::Identity;
    use git2::Repository;

    #[test]
    fn journaled_applies_are_imported_once_as_one_status_commit() {
        let state = tempfile::tempdir().expect("state");
        let repo = tempfile::tempdir().expect("repo");
        Repository::init_bare(repo.path()).expect("init");
        let env = |k: &str| (k == DIR_ENV).then(|| state.path().display().to_string());
        let journal = path("aura", &env).expect("a path");
        for n in 1..=2 {
            let message = format!(
                "apply working-tree: ~1 updated\n\npower-off      a{n}                       done [server {n}, actions {n}0]\nApply: 1 done, 0 failed, 0 skipped.\n\n{TRAILER_SOURCE}: none\n{TRAILER_RUN}: r{n}\n"
            );
            append(&journal, &message).expect("append");
        }
        assert_eq!(entries(&journal).expect("entries").len(), 2);
        let identity = Identity::default();
        let target = Target {
            repo: repo.path(),
            remote: None,
            branch: "tether/status",
            source_branch: "main",
            identity: &identity,
        };
        let oid = import(&target, &journal, "import-1")
            .expect("import")
            .expect("a commit");
        let r = Repository::open(repo.path()).expect("open");
        let text = r
            .find_commit(oid)
            .expect("commit")
            .message()
            .unwrap_or("")
            .to_owned();
        assert!(
            text.starts_with("import 2 applies made without a status branch\n"),
            "{text}"
        );
        assert_eq!(crate::audit::verify::action_ids(&text), [10, 20]);
        assert!(text.ends_with("Tether-Run: import-1\n"), "{text}");
        assert!(!journal.exists());
        assert_eq!(import(&target, &journal, "import-2").expect("again"), None);
    }
}
