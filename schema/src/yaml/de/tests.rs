//! Deserializer tests: positions, unknown fields with suggestions, errors with paths, no
//! coercion of quoted numbers or `yes`.

use super::*;
use crate::spanned::Spanned;
use crate::yaml::node::parse;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Inner {
    size: u32,
    name: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Outer {
    inner: Inner,
    #[serde(default)]
    #[allow(dead_code, reason = "read only to check that `yes` is refused")]
    flag: Option<bool>,
    list: Vec<Spanned<String>>,
}

fn read(text: &str) -> (Result<Outer, Error>, Vec<UnknownField>) {
    from_node(&parse(text).expect("parses"))
}

#[test]
fn reads_values_with_their_positions() {
    let (r, unknown) = read("inner:\n  size: 3\n  name: on\nlist: [a, 'b']\n");
    let outer = r.expect("valid");
    assert!(unknown.is_empty());
    assert_eq!(outer.inner.size, 3);
    assert_eq!(outer.inner.name.value, "on");
    assert_eq!(outer.inner.name.span, Span { line: 3, column: 9 });
    assert_eq!(
        outer.list[1].span,
        Span {
            line: 4,
            column: 11
        }
    );
}

#[test]
fn collects_every_unknown_field_with_a_suggestion() {
    let (r, unknown) = read("inner: {size: 1, name: x, nmae: y}\nlsit: []\nlist: []\nzzz: 1\n");
    assert!(r.is_ok());
    let found: Vec<_> = unknown
        .iter()
        .map(|u| (u.path.as_str(), u.suggestion))
        .collect();
    assert_eq!(
        found,
        [
            ("inner.nmae", Some("name")),
            ("lsit", Some("list")),
            ("zzz", None)
        ]
    );
}

#[test]
fn errors_carry_path_and_position() {
    let (r, _) = read("inner:\n  size: big\n  name: x\nlist: []\n");
    let e = r.expect_err("size is not a number");
    assert_eq!(e.path.as_deref(), Some("inner.size"));
    assert_eq!(e.span, Some(Span { line: 2, column: 9 }));
    assert_eq!(e.code, Code::InvalidType);

    let (r, _) = read("inner:\n  size: 1\nlist: []\n");
    let e = r.expect_err("name is missing");
    assert_eq!(e.path.as_deref(), Some("inner.name"));
    assert_eq!(e.span, Some(Span { line: 2, column: 3 }));
    assert_eq!(e.code, Code::MissingField);
}

#[test]
fn quoted_numbers_and_yes_are_not_coerced() {
    let (r, _) = read("inner: {size: '3', name: x}\nlist: []\n");
    assert_eq!(r.expect_err("quoted").code, Code::InvalidType);
    let (r, _) = read("inner: {size: 3, name: x}\nlist: []\nflag: yes\n");
    assert_eq!(r.expect_err("yes").path.as_deref(), Some("flag"));
}
