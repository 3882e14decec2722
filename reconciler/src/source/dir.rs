//! Reading a fleet from a directory: `fleet.yaml` and every entry under `agents/`.
//!
//! Symbolic links are reported, never followed, so nothing outside the repository is read.
//! Files larger than the spec limit are reported by size without being read.

use super::{Content, MAX_DIR_DEPTH, Snapshot, SourceError, SourceFile};
use std::fs;
use std::path::Path;
use tether_schema::{AGENTS_DIR, FLEET_FILE, MAX_SPEC_BYTES};

/// Reads the fleet files under `root`.
///
/// # Errors
/// [`SourceError::NotADirectory`] when `root` is not a directory, [`SourceError::Io`] when a
/// folder cannot be listed. Problems with single files become [`Content`] variants.
pub fn read(root: &Path) -> Result<Snapshot, SourceError> {
    if !root.is_dir() {
        return Err(SourceError::NotADirectory {
            path: root.to_owned(),
        });
    }
    let mut files = Vec::new();
    let fleet = root.join(FLEET_FILE);
    if fs::symlink_metadata(&fleet).is_ok() {
        files.push(entry(&fleet, FLEET_FILE.to_owned()));
    }
    let agents = root.join(AGENTS_DIR.trim_end_matches('/'));
    match fs::symlink_metadata(&agents) {
        Ok(meta) if meta.is_dir() => {
            walk(&agents, AGENTS_DIR.trim_end_matches('/'), 0, &mut files)?
        }
        Ok(_) => files.push(entry(&agents, AGENTS_DIR.to_owned())),
        Err(_) => {}
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Snapshot {
        files,
        commit: None,
    })
}

fn walk(
    dir: &Path,
    rel: &str,
    depth: usize,
    files: &mut Vec<SourceFile>,
) -> Result<(), SourceError> {
    let io = |source| SourceError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = format!("{rel}/{name}");
        let file_type = e.file_type().map_err(io)?;
        if file_type.is_dir() && depth < MAX_DIR_DEPTH {
            walk(&e.path(), &path, depth + 1, files)?;
        } else if file_type.is_dir() {
            files.push(SourceFile {
                path,
                content: Content::Unreadable {
                    reason: format!(
                        "folders nested deeper than {MAX_DIR_DEPTH} levels are not read"
                    ),
                },
            });
        } else {
            files.push(entry(&e.path(), path));
        }
    }
    Ok(())
}

fn entry(path: &Path, rel: String) -> SourceFile {
    let content = match fs::symlink_metadata(path) {
        Err(e) => Content::Unreadable {
            reason: e.to_string(),
        },
        Ok(meta) if meta.file_type().is_symlink() => Content::Symlink {
            target: fs::read_link(path).map_or_else(|e| e.to_string(), |t| t.display().to_string()),
        },
        Ok(meta) if meta.is_dir() => Content::Unreadable {
            reason: "a folder where a file was expected".into(),
        },
        Ok(meta) if !meta.is_file() => Content::Unreadable {
            reason: "not a regular file".into(),
        },
        Ok(meta) if meta.len() > MAX_SPEC_BYTES => Content::TooLarge { size: meta.len() },
        Ok(_) => match fs::read(path) {
            Ok(bytes) if bytes.len() as u64 > MAX_SPEC_BYTES => Content::TooLarge {
                size: bytes.len() as u64,
            },
            Ok(bytes) => Content::Bytes(bytes),
            Err(e) => Content::Unreadable {
                reason: e.to_string(),
            },
        },
    };
    SourceFile { path: rel, content }
}
