//! `tether sandbox`: every command its banner prints runs as pasted, in order, after its
//! exports and without `tether` on the PATH (as after `cargo run`): billing's `agent add`
//! leaves the work tree clean, a plain `git push` works, the pull request gets tether's plan,
//! and the operator's `validate` and `reconcile` work.

use crate::common::{tether_bin, workspace};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `command` in bash after `exports`, with no `tether` on the PATH; returns (exit code,
/// output).
fn paste(exports: &str, command: &str) -> (i32, String) {
    let bin = tether_bin().parent().expect("bin folder");
    let path: Vec<_> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .filter(|dir| dir != bin && !dir.join("tether").exists())
        .collect();
    let out = Command::new("bash")
        .args(["-c", &format!("set -e\n{exports}\n{command}")])
        .env("PATH", std::env::join_paths(path).expect("PATH"))
        .env("GIT_AUTHOR_NAME", "Sandbox User")
        .env("GIT_AUTHOR_EMAIL", "user@example.com")
        .env("GIT_COMMITTER_NAME", "Sandbox User")
        .env("GIT_COMMITTER_EMAIL", "user@example.com")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run bash");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn status(work: &Path) -> String {
    let out = Command::new("git")
        .args(["-C"])
        .arg(work)
        .args(["status", "--porcelain"])
        .output()
        .expect("git status");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_command_the_sandbox_banner_prints_works_as_pasted() {
    let mut child = Command::new(tether_bin())
        .args(["sandbox", "--fleet"])
        .arg(workspace().join("fleet"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the sandbox");
    let banner: Vec<String> = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.starts_with("Press Ctrl-C"))
        .collect();
    let exports: String = banner
        .iter()
        .filter_map(|l| l.trim_start().strip_prefix("export "))
        .map(|l| format!("export {}\n", l.split("  #").next().unwrap_or(l).trim_end()))
        .collect();
    let work = banner
        .iter()
        .find_map(|l| l.strip_prefix("fleet work tree"))
        .and_then(|l| l.split_whitespace().next())
        .map(std::path::PathBuf::from)
        .expect("the banner names the work tree");
    let commands: Vec<&str> = banner
        .iter()
        .filter_map(|l| l.trim_start().strip_prefix("$ "))
        .collect();
    assert_eq!(commands.len(), 7, "{banner:#?}");
    assert!(
        commands.iter().all(|c| !c.starts_with("tether ")),
        "tether is named by its path: {commands:#?}"
    );

    for command in &commands {
        if command.starts_with("git ") {
            let spec = work.join("agents/acme/acme-prod.yaml");
            let text = std::fs::read_to_string(&spec).expect("a spec to edit");
            std::fs::write(&spec, text.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
                .expect("edit the spec");
        }
        let (code, out) = paste(&exports, command);
        assert_eq!(code, 0, "`{command}` failed as pasted:\n{out}");
        if command.contains("agent add") && !command.contains("--open-pr") {
            assert_eq!(status(&work), "", "`{command}` leaves the work tree clean");
            assert!(
                work.join("agents/cus-try/sub-try1.yaml").is_file(),
                "the new spec is in the work tree"
            );
        }
        if command.starts_with("git ") {
            assert_eq!(status(&work), "");
            assert!(out.contains("main -> main"), "{out}");
        }
        if command.starts_with("curl ") {
            assert!(out.contains("tether:plan"), "the plan comment: {out}");
        }
        if command.contains(" validate ") {
            assert!(out.contains("is valid"), "{out}");
        }
        if command.ends_with(" reconcile") {
            assert!(out.contains("reconcile requested"), "{out}");
        }
    }
    let apply = banner
        .iter()
        .find_map(|l| l.split_once("exits 4 naming the holder: "))
        .map(|(_, command)| command)
        .expect("the banner shows apply");
    let (code, out) = paste(&exports, apply);
    assert_eq!(
        code, 4,
        "`{apply}` while the daemon holds the lease:\n{out}"
    );
    assert!(out.contains("lease"), "says the lease is held: {out}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = child.wait().expect("wait for the sandbox");
    assert!(status.success(), "exit status {status}");
}
