//! Property tests of the escapers: hostile strings built from the characters and sequences
//! that break each output, mixed with plain text.

use super::*;
use proptest::prelude::*;

/// Pieces a hostile string is made of: controls, ESC sequences, bidi, separators, invisible
/// characters, Markdown, HTML and Slack syntax, mentions and links.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 .,:/-]{0,8}",
        Just("\x1b[2J\x1b]0;title\x07".to_owned()),
        Just("\x1b]8;;https://evil\x1b\\link\x1b]8;;\x1b\\".to_owned()),
        Just("\u{9b}31m".to_owned()),
        Just("\u{7f}\u{0}\u{8}\r\n\t\u{b}\u{c}\u{85}".to_owned()),
        Just("\u{202e}\u{202d}\u{2066}\u{2067}\u{2068}\u{2069}\u{200f}\u{61c}".to_owned()),
        Just("\u{2028}\u{2029}\u{200b}\u{feff}\u{ad}\u{e0041}".to_owned()),
        Just("@channel @here @octocat ".to_owned()),
        Just("<!channel> <@U123> <https://x|y> &amp; ".to_owned()),
        Just("https://evil.example/x www.evil.example HTTP://A ".to_owned()),
        Just("<script>alert('x')</script> <img src=x onerror=y> \"q\" ".to_owned()),
        Just("| a | b |\n|---|---|\n# head\n> quote\n- item\n```\n".to_owned()),
        Just("[x](https://e) ![i](x) *b* _i_ ~s~ `c` \\".to_owned()),
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn no_hidden(out: &str) -> Result<(), TestCaseError> {
    for c in out.chars() {
        prop_assert!(!hidden(c), "{:?} left in {out:?}", c);
    }
    Ok(())
}

/// Every `&` in `out` starts one of `entities`.
fn only_entities(out: &str, entities: &[&str]) -> Result<(), TestCaseError> {
    for (at, _) in out.match_indices('&') {
        prop_assert!(
            entities.iter().any(|e| out[at..].starts_with(e)),
            "a bare & at {at} in {out:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn terminal_output_holds_no_control_bidi_or_line_break(text in hostile()) {
        let out = terminal(&text);
        no_hidden(&out)?;
        prop_assert!(!out.contains('\x1b') && !out.contains('\n'));
        if !text.chars().any(hidden) {
            prop_assert_eq!(out, text);
        }
    }

    #[test]
    fn markdown_output_has_no_structure_mention_autolink_or_line_break(text in hostile()) {
        let out = markdown(&text);
        no_hidden(&out)?;
        let without_breaks = out.replace(BREAK, "");
        let bytes = without_breaks.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if b"`*_[]<>#|~!&".contains(&b) {
                let escapes = bytes[..i].iter().rev().take_while(|&&p| p == b'\\').count();
                prop_assert!(escapes % 2 == 1, "unescaped {:?} at {i} in {without_breaks:?}", b as char);
            }
        }
        for (at, _) in out.match_indices('@') {
            prop_assert!(out[at + 1..].starts_with(BREAK), "a mention in {out:?}");
        }
        prop_assert!(!out.contains("://"), "an autolink in {out:?}");
        prop_assert!(!out.to_ascii_lowercase().contains("www."), "an autolink in {out:?}");
    }

    #[test]
    fn slack_output_cannot_mention_link_or_leave_a_quote(text in hostile()) {
        let out = slack(&text);
        no_hidden(&out)?;
        prop_assert!(!out.contains('<') && !out.contains('>') && !out.contains('\n'));
        only_entities(&out, &["&amp;", "&lt;", "&gt;"])?;
    }

    #[test]
    fn html_output_has_no_tag_attribute_break_or_bare_ampersand(text in hostile()) {
        let out = html(&text);
        no_hidden(&out)?;
        for c in ['<', '>', '"', '\''] {
            prop_assert!(!out.contains(c), "{:?} in {out:?}", c);
        }
        only_entities(&out, &["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"])?;
    }
}

#[test]
fn each_escaper_reads_as_expected_on_one_hostile_line() {
    let line = "ok \u{1b}[31mred\u{202e}txet\n@ops see https://evil <!channel> | x";
    assert_eq!(
        terminal(line),
        "ok \\u{1b}[31mred\\u{202e}txet\\u{a}@ops see https://evil <!channel> | x"
    );
    assert_eq!(
        markdown(line),
        "ok \\u{1b}\\[31mred\\u{202e}txet\\u{a}@&#8203;ops see https:&#8203;//evil \\<\\!channel\\> \\| x"
    );
    assert_eq!(
        slack(line),
        "ok \\u{1b}[31mred\\u{202e}txet\\u{a}@ops see https://evil &lt;!channel&gt; | x"
    );
}
