//! `tether validate`: the example fleet is valid; every broken fleet under
//! `tests/fixtures/invalid/` fails with exit 1 and located, snapshot-tested messages.

use crate::common::{commit_all, example_fleet, tether, workspace};
use std::path::Path;

fn fixtures() -> Vec<(String, std::path::PathBuf)> {
    let root = workspace().join("tests/fixtures/invalid");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .expect("fixture folder")
        .map(|e| {
            let e = e.expect("entry");
            (e.file_name().to_string_lossy().into_owned(), e.path())
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn the_example_fleet_is_valid() {
    let run = tether(&workspace(), &["validate", "fleet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "fleet `aura-prod` at fleet is valid: 6 agents\n"
    );
}

#[test]
fn validate_defaults_to_the_current_directory() {
    let run = tether(&workspace().join("fleet"), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn every_broken_fixture_fails_with_located_messages() {
    let cases = fixtures();
    assert!(
        cases.len() >= 20,
        "expected at least 20 broken fleets, found {}",
        cases.len()
    );
    for (name, dir) in cases {
        let run = tether(&dir, &["validate", "."]);
        assert_eq!(
            run.code, 1,
            "{name} must be invalid; stdout: {}",
            run.stdout
        );
        assert!(run.stdout.is_empty(), "{name}: human errors go to stderr");
        insta::assert_snapshot!(format!("invalid__{name}"), run.stderr);

        let json = tether(&dir, &["validate", ".", "--format", "json"]);
        assert_eq!(json.code, 1, "{name}");
        let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("json output");
        assert_eq!(doc["valid"], false);
        let diags = doc["diagnostics"].as_array().expect("diagnostics");
        assert!(
            !diags.is_empty(),
            "{name}: an invalid fleet reports its problems"
        );
        for d in diags {
            assert!(
                d["file"].is_string() && d["message"].is_string() && d["code"].is_string(),
                "{name}: {d}"
            );
            assert!(
                d["hint"].is_string(),
                "{name}: every problem says what to do: {d}"
            );
        }
    }
}

#[test]
fn every_fixture_problem_that_has_a_position_names_line_and_column() {
    // Whole-file problems (missing, empty, not YAML, unreadable) have no position; all others do.
    let whole_file = [
        "missing-fleet",
        "empty",
        "not-yaml",
        "too-large",
        "symlink",
        "unreadable",
    ];
    for (name, dir) in fixtures() {
        let json = tether(&dir, &["validate", ".", "--format", "json"]);
        let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("json output");
        for d in doc["diagnostics"].as_array().expect("diagnostics") {
            let code = d["code"].as_str().expect("code");
            if !whole_file.contains(&code) {
                assert!(d["line"].as_u64().is_some_and(|l| l > 0), "{name}: {d}");
                assert!(d["column"].as_u64().is_some_and(|c| c > 0), "{name}: {d}");
            }
        }
    }
}

#[test]
fn a_leading_byte_order_mark_is_accepted_and_positions_stay_true() {
    let fleet = example_fleet();
    for file in ["fleet.yaml", "agents/acme/acme-prod.yaml"] {
        let path = fleet.path().join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, format!("\u{feff}{text}")).expect("write with a BOM");
    }
    let run = tether(fleet.path(), &["validate", "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("is valid: 6 agents"), "{}", run.stdout);

    let agent = fleet.path().join("agents/acme/acme-prod.yaml");
    let text = std::fs::read_to_string(&agent).expect("read");
    std::fs::write(&agent, text.replace("power: on", "power: sideways")).expect("break");
    let run = tether(fleet.path(), &["validate", "."]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("--> agents/acme/acme-prod.yaml:14:10"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\u{feff}'), "{}", run.stderr);
}

#[test]
fn symlinks_are_reported_and_never_followed() {
    let fleet = example_fleet();
    let outside = tempfile::NamedTempFile::new().expect("outside file");
    std::fs::write(outside.path(), "apiVersion: tether/v1\n").expect("write");
    std::os::unix::fs::symlink(outside.path(), fleet.path().join("agents/escape.yaml"))
        .expect("symlink");
    let run = tether(fleet.path(), &["validate", "."]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error[symlink]: a symbolic link (to `"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--> agents/escape.yaml"),
        "{}",
        run.stderr
    );
}

#[test]
fn oversized_files_are_refused_without_being_parsed() {
    let fleet = example_fleet();
    let big = format!("# {}\n", "x".repeat(70_000));
    std::fs::write(fleet.path().join("agents/huge.yaml"), big).expect("write");
    let run = tether(fleet.path(), &["validate", "."]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "error[too-large]: the file is 70003 bytes; spec files are limited to 65536 bytes"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_folder_is_an_error_not_an_empty_fleet() {
    let run = tether(&workspace(), &["validate", "no/such/folder"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("`no/such/folder` is not a directory"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
}

#[test]
fn validate_reads_a_git_revision_without_a_checkout() {
    let repo = example_fleet();
    let good = commit_all(repo.path(), "main", "add fleet");
    std::fs::write(
        repo.path().join("agents/acme/acme-prod.yaml"),
        "apiVersion: tether/v1\nkind: Agent\nmetadata: {name: acme-prod}\nspec: {subscription: sub_x, runtime: {version: '1'}, power: sideways}\n",
    )
    .expect("break a spec");
    let bad = commit_all(repo.path(), "main", "break acme-prod");
    // Restore the work tree so only git history holds the broken spec.
    let restore = tempfile::tempdir().expect("tmp");
    crate::common::copy_dir(&workspace().join("fleet"), restore.path());
    std::fs::copy(
        restore.path().join("agents/acme/acme-prod.yaml"),
        repo.path().join("agents/acme/acme-prod.yaml"),
    )
    .expect("restore");

    let dir = repo.path().to_str().expect("utf-8 path");
    let run = tether(&workspace(), &["validate", "--git", dir, "--rev", &good]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("is valid: 6 agents"), "{}", run.stdout);

    let run = tether(
        &workspace(),
        &[
            "validate", "--git", dir, "--rev", "main", "--format", "json",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(doc["commit"], bad.as_str());
    assert_eq!(doc["diagnostics"][0]["file"], "agents/acme/acme-prod.yaml");
    assert_eq!(doc["diagnostics"][0]["path"], "spec.power");
    assert_eq!(doc["diagnostics"][0]["line"], 4);

    let run = tether(&workspace(), &["validate", "--git", dir, "--rev", "nope"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("revision `nope` not found"),
        "{}",
        run.stderr
    );
}

#[test]
fn git_symlinks_are_reported_not_followed() {
    let repo = example_fleet();
    std::os::unix::fs::symlink("/etc/passwd", repo.path().join("agents/passwd.yaml"))
        .expect("symlink");
    commit_all(repo.path(), "main", "sneaky link");
    let dir = repo.path().to_str().expect("utf-8 path");
    let run = tether(Path::new("/"), &["validate", "--git", dir, "--rev", "main"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("a symbolic link (to `/etc/passwd`)"),
        "{}",
        run.stderr
    );
}

#[test]
fn git_and_path_together_is_a_usage_error() {
    let run = tether(
        &workspace(),
        &["validate", "fleet", "--git", ".", "--rev", "main"],
    );
    assert_eq!(run.code, 64, "{}", run.stderr);
    let run = tether(&workspace(), &["validate", "--git", "."]);
    assert_eq!(run.code, 64, "{}", run.stderr);
}
