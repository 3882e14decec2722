//! A pull request's files computed from two branch snapshots, as `GET …/pulls/{n}/files`
//! lists them: added, removed and modified files with line counts and unified-diff hunks.
//! Renames are not detected (a move is a removal and an addition).

use serde::Serialize;
use sha2::{Digest, Sha256};
use similar::{ChangeTag, TextDiff};
use std::collections::BTreeMap;

/// One file of a pull request, as `GET …/pulls/{n}/files` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Path.
    pub filename: String,
    /// How it changed.
    pub status: FileStatus,
    /// Added lines.
    pub additions: u64,
    /// Deleted lines.
    pub deletions: u64,
    /// Blob sha of the new content (none for removed files).
    pub sha: Option<String>,
    /// Unified diff hunks.
    pub patch: Option<String>,
    /// Path before a rename or copy.
    pub previous_filename: Option<String>,
}

/// How a file changed, as GitHub's `status` of a pull request file names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// `added`.
    Added,
    /// `removed`.
    Removed,
    /// `modified`.
    Modified,
    /// `renamed`.
    Renamed,
    /// `copied`.
    Copied,
    /// `changed`: mode or metadata only.
    Changed,
    /// `unchanged`.
    Unchanged,
}

/// The files that differ between `base` and `head` (path → content), by path.
pub fn diff(base: &BTreeMap<String, String>, head: &BTreeMap<String, String>) -> Vec<FileChange> {
    let paths: std::collections::BTreeSet<&String> = base.keys().chain(head.keys()).collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let (old, new) = (base.get(path), head.get(path));
            let status = match (old, new) {
                (None, Some(_)) => FileStatus::Added,
                (Some(_), None) => FileStatus::Removed,
                (Some(a), Some(b)) if a != b => FileStatus::Modified,
                _ => return None,
            };
            let old = old.map_or("", String::as_str);
            let new_text = new.map_or("", String::as_str);
            let text_diff = TextDiff::from_lines(old, new_text);
            let count = |tag| {
                text_diff
                    .iter_all_changes()
                    .filter(|c| c.tag() == tag)
                    .count()
            };
            Some(FileChange {
                filename: path.clone(),
                status,
                additions: count(ChangeTag::Insert) as u64,
                deletions: count(ChangeTag::Delete) as u64,
                sha: new.map(|content| blob_sha(content)),
                patch: Some(text_diff.unified_diff().to_string()),
                previous_filename: None,
            })
        })
        .collect()
}

/// A stable 40-hex id for a file's content.
fn blob_sha(content: &str) -> String {
    format!("{:x}", Sha256::digest(content.as_bytes()))[..40].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
            .collect()
    }

    #[test]
    fn files_are_added_removed_or_modified_with_line_counts() {
        let base = tree(&[
            ("fleet.yaml", "a\nb\n"),
            ("old.yaml", "x\n"),
            ("same", "s\n"),
        ]);
        let head = tree(&[
            ("fleet.yaml", "a\nc\nd\n"),
            ("new.yaml", "n\n"),
            ("same", "s\n"),
        ]);
        let got: Vec<_> = diff(&base, &head)
            .into_iter()
            .map(|f| (f.filename, f.status, f.additions, f.deletions))
            .collect();
        assert_eq!(
            got,
            [
                ("fleet.yaml".to_owned(), FileStatus::Modified, 2, 1),
                ("new.yaml".to_owned(), FileStatus::Added, 1, 0),
                ("old.yaml".to_owned(), FileStatus::Removed, 0, 1),
            ]
        );
    }
}
