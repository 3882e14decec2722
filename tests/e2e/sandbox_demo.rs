//! `tether sandbox --demo`, the README's first command, run as a newcomer would.

use crate::common::{tether, workspace};
use std::process::Command;

fn summary_value(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("summary line `{label}` missing:\n{out}"))
}

#[test]
fn the_demo_runs_to_completion_and_its_summary_matches_the_emulators() {
    let run = tether(&workspace(), &["sandbox", "--demo"]);
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let out = &run.stdout;
    for step in [
        "Billing adds five subscriptions",
        "tether plan",
        "tether apply",
        "A subscription ends",
        "deletes acme-staging's VM by hand",
        "detects the drift and repairs it",
        "a cancellation overtakes a delayed update",
        "(nothing re-created)",
        "tether refuses",
        "Summary",
    ] {
        assert!(out.contains(step), "step `{step}` not narrated:\n{out}");
    }
    let agents: usize = summary_value(out, "agents in the last applied spec")
        .parse()
        .expect("number");
    let servers: usize = summary_value(out, "servers in the Hetzner project")
        .parse()
        .expect("number");
    let devices: usize = summary_value(out, "devices online in the tailnet")
        .parse()
        .expect("number");
    let commits: usize = summary_value(out, "status commits")
        .parse()
        .expect("number");
    assert_eq!(
        (agents, servers, devices),
        (4, 6, 4),
        "tether's view and the emulated cloud agree: four agents online, the two cancelled ones quarantined"
    );
    assert_eq!(
        commits, 6,
        "two of them for the Stripe sign-up and cancellation"
    );
    let log: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("$ git log --oneline tether/status"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(log.len(), commits, "{log:?}");
    assert!(
        log[0].contains("refused, nothing changed") && log[5].contains("+5 created"),
        "{log:?}"
    );
    assert!(
        out.contains("nothing was deleted: 6 servers before, 6 after"),
        "{out}"
    );
    assert!(
        !out.contains("tskey-auth-") && !out.contains("tskey-client-"),
        "no secret in the narration"
    );
    let ready = out
        .lines()
        .find(|l| l.starts_with("app received agent.ready acme-prod #2: server "))
        .unwrap_or_else(|| panic!("the app's signed agent.ready for acme-prod:\n{out}"));
    assert!(
        ready.contains("(cpx31 in fsn1), public ") && ready.contains(", tailnet 100."),
        "{ready}"
    );
    assert!(
        out.contains("app received agent.quarantined globex-ops"),
        "the cancellation reaches the app too:\n{out}"
    );
    the_printed_agent_add_lines_run_as_shown(out);
}

/// Runs each `$ tether agent add` line of the demo in a fleet repository holding only the
/// example fleet.yaml, as a reader copying them would: each commits its spec.
fn the_printed_agent_add_lines_run_as_shown(out: &str) {
    let adds: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("$ tether agent add "))
        .collect();
    assert_eq!(adds.len(), 5, "{out}");
    let repo = tempfile::tempdir().expect("repo");
    std::fs::copy(
        workspace().join("fleet/fleet.yaml"),
        repo.path().join("fleet.yaml"),
    )
    .expect("fleet.yaml");
    crate::common::commit_all(repo.path(), "main", "fleet.yaml");
    for add in adds {
        let mut args = vec!["agent", "add"];
        args.extend(add.split_whitespace());
        let run = tether(repo.path(), &args);
        assert_eq!(run.code, 0, "`tether agent add {add}`: {}", run.stderr);
    }
}

/// The README's first command exactly as written, up to `--`: `cargo run` from the workspace
/// root must pick the `tether` binary among the workspace's binaries (it did not once
/// `tether-agent` joined it). Run with `--version` instead of the demo, which the test above
/// runs, and in this test's build profile.
#[test]
fn the_readmes_cargo_run_picks_the_tether_binary() {
    let root = workspace();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let command = readme
        .lines()
        .find(|l| l.starts_with("cargo run"))
        .expect("the README's first command is a `cargo run`");
    let (cargo_args, demo_args) = command
        .split_once(" -- ")
        .expect("the command passes tether its arguments after `--`");
    assert_eq!(demo_args, "sandbox --demo", "{command}");
    let in_release = std::env::current_exe()
        .expect("current exe")
        .components()
        .any(|c| c.as_os_str() == "release");
    let args: Vec<&str> = cargo_args
        .split_whitespace()
        .skip(1)
        .filter(|a| in_release || *a != "--release")
        .collect();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .current_dir(&root)
        .args(&args)
        .args(["--quiet", "--", "--version"])
        .output()
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("tether "),
        "`{command}` does not run tether:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
