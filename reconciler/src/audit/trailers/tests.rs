use super::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io::Write as _;
use std::process::{Command, Stdio};

/// What `git interpret-trailers --parse` reads in `message`.
fn git_parse(message: &str) -> Vec<String> {
    let mut child = Command::new("git")
        .args(["-c", "core.commentChar=#", "interpret-trailers", "--parse"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("git ends");
    assert!(out.status.success(), "git failed on {message:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn ours(message: &str) -> Vec<String> {
    parse(message)
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect()
}

const LINES: &[&str] = &[
    "Tether-Source-Commit: 3f2a1c9",
    "Tether-Run: apply-1",
    "Key: value",
    "Key : spaced token",
    "Key:",
    "Key:\ttabbed",
    "x-y-z:tight",
    "Ke y: not a token",
    ":no token",
    "a:b:c",
    "Signed-off-by: A <a@example.com>",
    "(cherry picked from commit 0123abc)",
    "  continued",
    "\tcontinued by a tab",
    "  trailing spaces  ",
    "# a comment",
    "#Key: in a comment",
    "",
    "",
    "",
    "   ",
    "plain prose line",
    "create web-1 failed: boom",
    "---",
    "--- a/file",
    "---x",
    "Carriage: return\r",
    "Ünïcode: value",
    "https://example.com/x",
    "Tether-Source-Commit: forged",
];

fn generated(rng: &mut SmallRng) -> String {
    let mut message = String::from("subject line");
    if rng.random_bool(0.2) {
        message.push_str("\nstill the subject");
    }
    for _ in 0..rng.random_range(0..12) {
        message.push('\n');
        message.push_str(LINES[rng.random_range(0..LINES.len())]);
    }
    if rng.random_bool(0.7) {
        message.push('\n');
    }
    message
}

#[test]
fn parse_reads_what_git_interpret_trailers_reads_over_many_generated_messages() {
    let mut rng = SmallRng::seed_from_u64(28);
    for _ in 0..400 {
        let message = generated(&mut rng);
        assert_eq!(ours(&message), git_parse(&message), "message: {message:?}");
    }
}

#[test]
fn only_the_last_paragraph_is_the_trailer_block() {
    let message = "apply 3f2a1c9: +1 created\n\nTether-Source-Commit: forged\n\n  create web-1 done\n\nTether-Source-Commit: real\nTether-Run: r\n";
    let block = block(message);
    assert_eq!(block.get("Tether-Source-Commit"), Some("real"));
    assert!(block.conflicts().is_empty());
}

#[test]
fn a_block_with_two_different_values_for_one_token_is_a_conflict() {
    let block = block("subject\n\nTether-Source-Commit: a\nTether-Source-Commit: b\n");
    assert_eq!(block.get("Tether-Source-Commit"), None);
    assert_eq!(block.conflicts(), vec!["Tether-Source-Commit"]);
    assert_eq!(block.all("Tether-Source-Commit").len(), 2);
}

#[test]
fn a_subject_is_never_a_trailer() {
    assert!(parse("Tether-Source-Commit: forged\n").is_empty());
}

#[test]
fn a_body_line_of_hostile_text_is_one_indented_line_that_git_reads_as_no_trailer() {
    let hostile = "boom\n\nTether-Source-Commit: forged\r\ndelete web-1 done\u{202e}\u{1b}[31m";
    let line = body_line(hostile);
    assert_eq!(line.lines().count(), 1);
    assert!(line.starts_with("  "));
    assert!(
        !line
            .chars()
            .any(|c| c.is_control() || tether_schema::text::forbidden(c).is_some())
    );
    let message = format!("subject\n\n{line}\n");
    assert!(parse(&message).is_empty());
    assert!(git_parse(&message).is_empty());
}
