//! The module-order check (`tests/module_graph/`, binary `module-graph`): it fails on a loop
//! between sibling modules and names it, passes a one-way crate, and the workspace's crates
//! have no loop it does not know of.

use crate::common::workspace;
use std::process::Command;

fn module_graph(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_module-graph"))
        .current_dir(workspace())
        .args(args)
        .output()
        .expect("run module-graph");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_crate_whose_modules_loop_fails_naming_each_loop_and_its_edges() {
    let (code, stdout, stderr) =
        module_graph(&["loop=tests/fixtures/module_graph/loop/src/lib.rs"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("loop: 6 modules, 6 sibling edges, 2 loops"),
        "{stdout}"
    );
    assert!(
        stderr.contains("loop: module loop in `crate`: apply → audit → apply"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  apply → audit:\n    tests/fixtures/module_graph/loop/src/apply/mod.rs:8  crate::audit::record\n"),
        "the edge written as a path in code: {stderr}"
    );
    assert!(
        stderr.contains(
            "  audit → apply:\n    tests/fixtures/module_graph/loop/src/audit.rs:2  crate::Report\n"
        ),
        "the edge through the crate root's re-export: {stderr}"
    );
    assert!(
        stderr.contains("loop: module loop in `crate::apply`: report → steps → report"),
        "the loop one level down: {stderr}"
    );
    assert!(
        stderr
            .contains("    tests/fixtures/module_graph/loop/src/apply/steps.rs:4  super::Report\n"),
        "the edge through the parent's re-export: {stderr}"
    );
    assert!(
        stderr.contains("move the items it uses down"),
        "what to do: {stderr}"
    );
}

#[test]
fn a_crate_whose_modules_point_one_way_passes_whatever_its_tests_and_comments_name() {
    let (code, stdout, stderr) = module_graph(&[
        "--order",
        "one_way=tests/fixtures/module_graph/one_way/src/lib.rs",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "one_way: 6 modules, 3 sibling edges, 0 loops\n  0: plan\n  1: apply\n  2: audit\n"
    );
}

#[test]
fn a_declared_module_without_a_file_is_an_error_not_a_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("lib.rs"), "mod gone;\n").expect("write lib.rs");
    let root = format!("broken={}", dir.path().join("lib.rs").display());
    let (code, _, stderr) = module_graph(&[&root]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("lib.rs:1: `mod gone;` but neither"),
        "{stderr}"
    );
}

#[test]
fn the_workspace_crates_have_no_module_loop_beyond_the_known_ones() {
    let (code, stdout, stderr) = module_graph(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for (name, _) in module_graph::WORKSPACE_CRATES {
        assert!(
            stdout.contains(&format!("{name}: ")),
            "{name} checked: {stdout}"
        );
    }
}
