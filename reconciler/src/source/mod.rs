//! Where a fleet comes from: a directory on disk ([`dir`]) or a revision of a git repository
//! read straight from its object database ([`git`]). Both hand the schema crate the same
//! [`SourceFile`]s, so a fleet validates the same way from either. [`remote`] keeps a local bare
//! mirror of a remote repository for [`git`] to read; [`publish`] moves a remote branch without
//! force; [`reflock`] clears ref lock files a killed process left; [`fleets`] keeps the daemon's
//! loaded fleets by git tree.

pub mod dir;
pub mod fleets;
pub mod git;
pub mod publish;
pub mod reflock;
pub mod remote;

use std::path::PathBuf;
pub use tether_schema::{Content, SourceFile};

/// Deepest folder nesting followed under `agents/`.
pub const MAX_DIR_DEPTH: usize = 16;

/// Why a source could not be read at all (as opposed to a file in it being bad, which is a
/// diagnostic).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The path does not exist or is not a directory.
    #[error("`{path}` is not a directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// A directory could not be listed.
    #[error("cannot list `{path}`: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The git repository could not be opened.
    #[error("cannot open git repository `{path}`: {message}")]
    GitOpen {
        /// The path given.
        path: PathBuf,
        /// libgit2's message.
        message: String,
    },
    /// The revision does not name a commit.
    #[error("revision `{rev}` not found in `{path}`: {message}")]
    GitRev {
        /// The repository.
        path: PathBuf,
        /// The revision given.
        rev: String,
        /// libgit2's message.
        message: String,
    },
    /// Reading the commit's tree failed.
    #[error("cannot read the tree of {commit} in `{path}`: {message}")]
    GitRead {
        /// The repository.
        path: PathBuf,
        /// The commit id.
        commit: String,
        /// libgit2's message.
        message: String,
    },
}

impl SourceError {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            SourceError::NotADirectory { .. } => "pass the folder holding fleet.yaml and agents/",
            SourceError::Io { .. } => "check that the folder exists and is readable",
            SourceError::GitOpen { .. } => {
                "pass the path of a git repository (bare or with a work tree)"
            }
            SourceError::GitRev { .. } => {
                "pass a branch, tag or commit that exists in the repository, e.g. `main`"
            }
            SourceError::GitRead { .. } => "the repository may be damaged; run `git fsck` on it",
        }
    }
}

/// A fleet's files plus a description of where they came from.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The files under `fleet.yaml` and `agents/`.
    pub files: Vec<SourceFile>,
    /// The commit id when read from git.
    pub commit: Option<String>,
}

impl Snapshot {
    /// The text of the file at `path`, when it was read and is UTF-8.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.path == path)
            .and_then(|f| match &f.content {
                Content::Bytes(b) => std::str::from_utf8(b).ok(),
                _ => None,
            })
    }
}
