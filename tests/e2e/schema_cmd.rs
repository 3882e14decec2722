//! `tether schema` and `tether --help`: what editors and people read.

use crate::common::{tether, workspace};

#[test]
fn schema_prints_json_schemas_for_agent_and_fleet() {
    let run = tether(&workspace(), &["schema"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("schema is JSON");
    let agent = &doc["Agent"];
    assert_eq!(agent["title"], "tether Agent");
    assert_eq!(agent["additionalProperties"], false);
    assert!(
        agent["required"]
            .as_array()
            .expect("required list")
            .contains(&"spec".into())
    );
    assert_eq!(doc["Fleet"]["title"], "tether Fleet");
}

#[test]
fn published_schema_files_match_the_binary() {
    for kind in ["agent", "fleet"] {
        let run = tether(&workspace(), &["schema", kind]);
        assert_eq!(run.code, 0);
        let file = workspace().join(format!("docs/schema/{kind}.schema.json"));
        let published = std::fs::read_to_string(&file).expect("published schema exists");
        assert_eq!(
            published,
            run.stdout,
            "{} is stale: run `cargo run -- schema {kind} > {}`",
            file.display(),
            file.display()
        );
    }
}

#[test]
fn help_lists_every_subcommand() {
    let run = tether(&workspace(), &["--help"]);
    assert_eq!(run.code, 0);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn unknown_flag_is_a_usage_error_with_exit_64() {
    let run = tether(&workspace(), &["validate", "--frobnicate"]);
    assert_eq!(run.code, 64);
    assert!(run.stderr.contains("--frobnicate"), "{}", run.stderr);
}
