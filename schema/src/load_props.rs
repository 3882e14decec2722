//! Property tests: whatever bytes arrive, loading reports problems and never panics or hangs,
//! and no byte of a spec is ever silently ignored.

use crate::{Code, Content, SourceFile, Span, load_fleet, text};
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

/// A character [`text::forbidden`] refuses, from each class it names.
fn refused_char() -> impl Strategy<Value = char> {
    prop_oneof![
        (0u32..0x20).prop_filter("tab, LF, CR are allowed", |c| ![9, 10, 13].contains(c)),
        Just(0x7f),
        0x80u32..0xa0,
        prop::sample::select(vec![
            0x2028, 0x2029, 0x061c, 0x200b, 0x200c, 0x200d, 0x200e, 0x200f, 0x202a, 0x202e, 0x2066,
            0x2069, 0x2060, 0xfeff, 0xe0041, 0xfffe,
        ]),
    ]
    .prop_map(|c| char::from_u32(c).expect("a scalar value"))
}

/// Comments and blank lines (which keep the spec valid) mixed with refused characters.
fn quiet_with_refused() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just(" ".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("# note".to_owned()),
        refused_char().prop_map(String::from),
    ];
    prop::collection::vec(token, 0..12).prop_map(|t| t.concat())
}

/// The base agent without its last line (`protect: false`).
fn agent_head() -> &'static str {
    AGENT
        .strip_suffix("  protect: false\n")
        .expect("base ends with protect")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Whatever bytes come before it, a trailing `protect: true` is either read or the file is
    /// refused with located diagnostics: nothing (a NUL included) silently ends the file early.
    #[test]
    fn a_trailing_field_is_never_silently_dropped(
        junk in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            yamlish().prop_map(String::into_bytes),
            quiet_with_refused().prop_map(String::into_bytes),
        ],
        indent in any::<bool>(),
    ) {
        let mut bytes = agent_head().as_bytes().to_vec();
        if indent {
            bytes.extend_from_slice(b"  ");
        }
        bytes.extend_from_slice(&junk);
        bytes.extend_from_slice(b"\n  protect: true\n");
        match load_fleet(&files(bytes)) {
            Ok(fleet) => prop_assert!(fleet.agents.values().all(|a| a.protect), "protect lost after {junk:?}"),
            Err(e) => prop_assert!(e.diagnostics.iter().all(|d| d.hint.is_some())),
        }
    }

    /// A refused character anywhere in a valid spec is reported at its line and column, by name.
    #[test]
    fn a_refused_character_is_located_and_named(at in 0usize..AGENT.len(), c in refused_char()) {
        // U+FEFF first in the file is a byte order mark, which is accepted.
        prop_assume!(!(at == 0 && c == '\u{feff}'));
        let mut text = AGENT.to_owned();
        text.insert(at, c);
        let err = load_fleet(&files(text.into_bytes())).expect_err("refused");
        let line = AGENT[..at].matches('\n').count() + 1;
        let column = AGENT[..at].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let d = err.diagnostics.iter().find(|d| d.code == Code::ForbiddenCharacter).expect("a forbidden-character diagnostic");
        prop_assert_eq!(d.span, Some(Span { line, column }));
        prop_assert!(d.message.contains(&text::describe(c)), "{}", d.message);
    }
}

#[test]
fn a_nul_byte_hides_nothing() {
    let spec = format!("{}\0\n  protect: true\n", agent_head());
    let err = load_fleet(&files(spec.into_bytes())).expect_err("refused");
    assert_eq!(err.diagnostics.len(), 1);
    let d = &err.diagnostics[0];
    assert_eq!(
        (d.code, d.span),
        (
            Code::ForbiddenCharacter,
            Some(Span {
                line: 12,
                column: 1
            })
        )
    );
    assert!(d.message.contains("U+0000 NULL"), "{}", d.message);
}

#[test]
fn every_refused_character_is_reported_at_once() {
    let spec = AGENT
        .replace("name: a1", "name: a1\u{202e}")
        .replace("sub_1", "sub_\u{200b}1")
        .replace(
            "A: b",
            "A: \"x\\u2028bootcmd: [[sh, -c, 'echo PWNED']]\\u2028#\"",
        );
    let err = load_fleet(&files(spec.clone().into_bytes())).expect_err("refused");
    let got: Vec<(usize, usize)> = err
        .diagnostics
        .iter()
        .map(|d| d.span.map(|s| (s.line, s.column)).unwrap_or_default())
        .collect();
    assert_eq!(got, vec![(4, 11), (7, 21)], "{:?}", err.diagnostics);
    let without_file_chars = spec.replace(['\u{202e}', '\u{200b}'], "");
    let err = load_fleet(&files(without_file_chars.into_bytes())).expect_err("escape refused");
    let d = &err.diagnostics[0];
    assert_eq!(
        (d.code, d.path.as_str()),
        (Code::ForbiddenCharacter, "spec.runtime.env.A")
    );
    assert!(d.message.contains("U+2028 LINE SEPARATOR"), "{}", d.message);
}

#[test]
fn a_file_full_of_nul_bytes_gets_a_bounded_report() {
    let err = load_fleet(&files(vec![0; 60_000])).expect_err("refused");
    assert_eq!(
        err.diagnostics.len(),
        crate::load::MAX_FORBIDDEN_REPORTED + 1
    );
    let last = err.diagnostics.last().expect("a summary");
    assert_eq!(last.message, "59980 more refused characters from here on");
    assert_eq!(
        last.span,
        Some(Span {
            line: 1,
            column: 21
        })
    );
}

#[test]
fn a_leading_byte_order_mark_is_accepted_and_positions_stay_true() {
    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend_from_slice(AGENT.as_bytes());
    assert!(load_fleet(&files(bytes.clone())).is_ok());
    let broken = String::from_utf8(bytes)
        .expect("utf-8")
        .replace("power: on", "power: sideways");
    let err = load_fleet(&files(broken.into_bytes())).expect_err("bad power");
    assert_eq!(
        err.diagnostics[0].span,
        Some(Span {
            line: 11,
            column: 10
        })
    );
    let twice = format!("\u{feff}\u{feff}{AGENT}");
    let err = load_fleet(&files(twice.into_bytes())).expect_err("a second BOM is a character");
    assert_eq!(err.diagnostics[0].code, Code::ForbiddenCharacter);
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
