//! Test support: a fleet folder's files read with `std::fs`, the way the product's
//! `source::dir` hands them to `tether_schema::load_fleet`, so the planner's tests load fixture
//! fleets without the product crate.

use std::fs;
use std::path::Path;
use tether_schema::{AGENTS_DIR, Content, FLEET_FILE, SourceFile};

/// `fleet.yaml` and every file under `agents/` in `root`, sorted by path.
///
/// # Panics
/// When a file or folder cannot be read: fixtures are part of the test.
pub fn fleet_files(root: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let fleet = root.join(FLEET_FILE);
    if fleet.is_file() {
        files.push(file(&fleet, FLEET_FILE.to_owned()));
    }
    let agents = AGENTS_DIR.trim_end_matches('/');
    if root.join(agents).is_dir() {
        walk(&root.join(agents), agents, &mut files);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

fn walk(dir: &Path, rel: &str, files: &mut Vec<SourceFile>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = format!("{rel}/{}", entry.file_name().to_string_lossy());
        if entry.path().is_dir() {
            walk(&entry.path(), &path, files);
        } else {
            files.push(file(&entry.path(), path));
        }
    }
}

fn file(path: &Path, rel: String) -> SourceFile {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    SourceFile {
        path: rel,
        content: Content::Bytes(bytes),
    }
}
