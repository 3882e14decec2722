//! Property tests: whatever bytes arrive, loading reports problems and never panics or hangs.

use crate::{Content, SourceFile, load_fleet};
use proptest::prelude::*;

const FLEET: &str = "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: f}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  catalog: {serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}\n";
const AGENT: &str = "apiVersion: tether/v1\nkind: Agent\nmetadata:\n  name: a1\n  labels: {customer: c}\nspec:\n  subscription: sub_1\n  server: {type: cpx21}\n  tailscale: {tags: [\"tag:agent\"]}\n  runtime: {version: \"1.0\", env: {A: b}}\n  power: on\n  protect: false\n";

fn files(agent: Vec<u8>) -> Vec<SourceFile> {
    vec![
        SourceFile {
            path: "fleet.yaml".into(),
            content: Content::Bytes(FLEET.as_bytes().to_vec()),
        },
        SourceFile {
            path: "agents/a1.yaml".into(),
            content: Content::Bytes(agent),
        },
    ]
}

/// YAML-flavoured fragments, so generated input reaches deep into the parser and validator.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just(": ".to_owned()),
        Just("- ".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(", ".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("!!str ".to_owned()),
        Just("---\n".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("|\n".to_owned()),
        Just("? ".to_owned()),
        Just("#".to_owned()),
        Just("apiVersion".to_owned()),
        Just("kind: Agent".to_owned()),
        Just("metadata".to_owned()),
        Just("spec".to_owned()),
        Just("name".to_owned()),
        Just("~".to_owned()),
        "[a-z0-9_:./-]{0,12}",
    ];
    prop::collection::vec(token, 0..80).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = load_fleet(&files(bytes));
    }

    #[test]
    fn yaml_like_text_never_panics_and_errors_are_located(text in yamlish()) {
        if let Err(e) = load_fleet(&files(text.into_bytes())) {
            prop_assert!(!e.diagnostics.is_empty());
            for d in &e.diagnostics {
                prop_assert!(d.hint.is_some(), "no hint: {d}");
            }
        }
    }

    #[test]
    fn mutating_a_valid_spec_never_panics(pos in 0usize..AGENT.len(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut bytes = AGENT.as_bytes().to_vec();
        if cut { bytes.truncate(pos) } else { bytes[pos] = byte }
        let _ = load_fleet(&files(bytes));
    }
}

#[test]
fn the_property_base_files_are_valid() {
    let fleet = load_fleet(&files(AGENT.as_bytes().to_vec())).expect("valid base");
    assert_eq!(fleet.agents.len(), 1);
}

#[test]
fn a_fleet_with_problems_is_never_empty() {
    let err = load_fleet(&[]).expect_err("no fleet.yaml");
    assert_eq!(err.diagnostics[0].code, crate::Code::MissingFleet);
}
