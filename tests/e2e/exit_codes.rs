//! The CLI contract of docs/operations.md ("Exit codes"): one test per exit code, each running
//! the real binary against the emulators, plus the error shapes that go with them (one clear
//! line for an unreachable endpoint, JSON with `--format json`), colour control, `--version`,
//! completions and the man page. Exit 130 (interrupted) is shown by `apply_interrupt`.

use crate::common::{Run, commit_all, example_fleet, tether, tether_bin, workspace};
use std::path::Path;
use std::time::{Duration, Instant};
use tether::sandbox::stack::{Stack, StackOptions};

/// Runs `tether ARGS` in `dir` with `env` (and no `RUST_LOG`), without blocking the emulators.
async fn run(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
    let mut cmd = tokio::process::Command::new(tether_bin());
    cmd.current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("HCLOUD_POLL_INTERVAL_MS", "25")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run tether").into()
}

/// A committed copy of the example fleet and the emulators it is applied to.
async fn bed() -> (Stack, tempfile::TempDir, Vec<(&'static str, String)>) {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = example_fleet();
    commit_all(repo.path(), "main", "seed the example fleet");
    let env = stack.env();
    (stack, repo, env)
}

const GIT_MAIN: [&str; 4] = ["--git", ".", "--rev", "main"];

fn args<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(tail).copied().collect()
}

/// A port on 127.0.0.1 that refuses connections for as long as the returned socket lives: it
/// is bound (so no other process can take the port) but never listens (so the kernel answers
/// every connection with a reset).
fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("bind 127.0.0.1:0");
    let port = socket.local_addr().expect("addr").port();
    (socket, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_0_when_apply_converges_and_then_when_the_plan_has_nothing_to_do() {
    let (stack, repo, env) = bed().await;
    let apply = run(
        repo.path(),
        &args(
            &["apply", "--auto-approve"],
            &args(&GIT_MAIN, &["--device-poll-ms", "50"]),
        ),
        &env,
    )
    .await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert_eq!(stack.hetzner.servers().len(), 6);
    let plan = run(
        repo.path(),
        &args(&["plan", "--detailed-exitcode"], &GIT_MAIN),
        &env,
    )
    .await;
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_1_for_an_invalid_fleet_with_the_error_and_its_diagnostics_as_json() {
    let (stack, repo, env) = bed().await;
    let fleet_yaml = repo.path().join("fleet.yaml");
    let text = std::fs::read_to_string(&fleet_yaml).expect("fleet.yaml");
    std::fs::write(&fleet_yaml, format!("{text}bogus: 1\n")).expect("write");
    let plan = run(
        repo.path(),
        &["plan", "--fleet", ".", "--format", "json"],
        &env,
    )
    .await;
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    let doc: serde_json::Value =
        serde_json::from_str(&plan.stdout).expect("one JSON document on stdout");
    let error = &doc["error"];
    assert_eq!(
        (&error["kind"], &error["exit_code"]),
        (&"failed".into(), &1.into())
    );
    assert!(
        error["hint"]
            .as_str()
            .is_some_and(|h| h.contains("tether validate")),
        "{doc}"
    );
    let diagnostic = &error["diagnostics"][0];
    assert_eq!(
        (&diagnostic["file"], &diagnostic["path"]),
        (&"fleet.yaml".into(), &"bogus".into()),
        "{doc}"
    );
    assert!(diagnostic["line"].as_u64().is_some_and(|l| l > 1), "{doc}");
    assert!(stack.hetzner.servers().is_empty());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_1_not_4_when_the_api_refuses_the_token() {
    let (stack, repo, mut env) = bed().await;
    env.retain(|(k, _)| *k != "HCLOUD_TOKEN");
    env.push(("HCLOUD_TOKEN", "not-the-project-token".to_owned()));
    let plan = run(repo.path(), &args(&["plan"], &GIT_MAIN), &env).await;
    assert_eq!(
        plan.code, 1,
        "a 401 does not pass by waiting: {}",
        plan.stderr
    );
    assert!(plan.stderr.contains("HTTP 401"), "{}", plan.stderr);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_2_when_the_plan_has_changes_only_with_detailed_exitcode() {
    let (stack, repo, env) = bed().await;
    let detailed = run(
        repo.path(),
        &args(&["plan", "--detailed-exitcode"], &GIT_MAIN),
        &env,
    )
    .await;
    assert_eq!(detailed.code, 2, "{}", detailed.stderr);
    assert!(detailed.stdout.contains("create"), "{}", detailed.stdout);
    let plain = run(repo.path(), &args(&["plan"], &GIT_MAIN), &env).await;
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_3_when_the_approved_plan_hash_no_longer_matches_and_nothing_changes() {
    let (stack, repo, env) = bed().await;
    let apply = run(
        repo.path(),
        &args(&["apply", "--plan-hash", "0000"], &GIT_MAIN),
        &env,
    )
    .await;
    assert_eq!(apply.code, 3, "{}", apply.stderr);
    assert!(apply.stderr.contains("plan changed"), "{}", apply.stderr);
    assert!(stack.hetzner.servers().is_empty(), "nothing was created");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_3_when_a_suspended_fleet_has_changes() {
    let (stack, repo, env) = bed().await;
    let fleet_yaml = repo.path().join("fleet.yaml");
    let text = std::fs::read_to_string(&fleet_yaml).expect("fleet.yaml");
    std::fs::write(
        &fleet_yaml,
        text.replace("spec:\n", "spec:\n  suspend: true\n"),
    )
    .expect("write");
    commit_all(repo.path(), "main", "suspend the fleet");
    let apply = run(
        repo.path(),
        &args(&["apply", "--auto-approve"], &GIT_MAIN),
        &env,
    )
    .await;
    assert_eq!(apply.code, 3, "{}\n{}", apply.stdout, apply.stderr);
    assert!(apply.stdout.contains("suspended"), "{}", apply.stdout);
    assert!(stack.hetzner.servers().is_empty(), "nothing was created");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_4_within_seconds_with_one_clear_line_when_the_endpoint_refuses_connections() {
    let (stack, repo, mut env) = bed().await;
    let (_held, port) = refusing_port();
    let endpoint = format!("http://127.0.0.1:{port}/v1");
    env.retain(|(k, _)| *k != "HCLOUD_ENDPOINT");
    env.push(("HCLOUD_ENDPOINT", endpoint.clone()));
    tether_bin(); // built before the clock starts
    let started = Instant::now();
    let plan = run(repo.path(), &args(&["plan"], &GIT_MAIN), &env).await;
    let took = started.elapsed();
    assert_eq!(plan.code, 4, "{}", plan.stderr);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let first = plan.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ")
            && first.contains("connection refused")
            && first.contains(&endpoint),
        "{}",
        plan.stderr
    );
    assert_eq!(
        plan.stderr.lines().count(),
        2,
        "the error and its hint, no retry noise: {}",
        plan.stderr
    );

    let json = run(
        repo.path(),
        &args(&["plan", "--format", "json"], &GIT_MAIN),
        &env,
    )
    .await;
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON error");
    assert_eq!(
        (json.code, &doc["error"]["kind"], &doc["error"]["exit_code"]),
        (4, &"transient".into(), &4.into())
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_endpoint_is_refused_up_front_naming_the_variable() {
    let (stack, repo, mut env) = bed().await;
    env.retain(|(k, _)| *k != "HCLOUD_ENDPOINT");
    env.push(("HCLOUD_ENDPOINT", "htp://api.example/v1".to_owned()));
    tether_bin(); // built before the clock starts
    let started = Instant::now();
    let plan = run(repo.path(), &args(&["plan"], &GIT_MAIN), &env).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    assert!(
        plan.stderr
            .contains("HCLOUD_ENDPOINT `htp://api.example/v1`")
            && !plan.stderr.contains("builder error"),
        "{}",
        plan.stderr
    );
    stack.shutdown().await;
}

#[test]
fn exit_64_for_command_lines_that_make_no_sense_and_0_for_help() {
    let fleet = workspace().join("fleet");
    for bad in [
        &["plan", "--no-such-flag"][..],
        &["plan", "--git", "."],
        &["validate", "--color", "sometimes"],
        &["completions", "tcsh"],
        &["man", "no-such-command"],
    ] {
        let run = tether(&fleet, bad);
        assert_eq!(run.code, 64, "{bad:?}: {}", run.stderr);
        assert!(!run.stderr.is_empty(), "{bad:?} says why");
    }
    let help = tether(&fleet, &["plan", "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);

    let json = tether(&fleet, &["plan", "--format", "json", "--no-such-flag"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("a JSON usage error");
    assert_eq!(
        (json.code, &doc["error"]["kind"], &doc["error"]["exit_code"]),
        (64, &"usage".into(), &64.into())
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--no-such-flag")),
        "{doc}"
    );
}

#[test]
fn exit_64_when_push_names_a_remote_the_repository_does_not_have() {
    let repo = example_fleet();
    commit_all(repo.path(), "main", "seed");
    let dir = repo.path().to_str().expect("utf-8 path");
    let run = tether(
        repo.path(),
        &[
            "agent",
            "add",
            "--repo",
            dir,
            "--subscription",
            "sub_Push1",
            "--customer",
            "cus_push",
            "--push",
            "origin",
        ],
    );
    assert_eq!(run.code, 64, "{}", run.stderr);
    assert!(
        run.stderr.contains("no remote `origin`") && run.stderr.contains("no remotes"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("unsupported URL protocol"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_color_and_color_flags_decide_whether_output_is_coloured() {
    let fleet = example_fleet();
    let error_with = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(tether_bin());
        cmd.args(args)
            .current_dir(fleet.path())
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("HCLOUD_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run tether");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let escape = '\x1b';
    assert!(
        !error_with(&["plan"], &[]).contains(escape),
        "a pipe is plain"
    );
    assert!(error_with(&["plan", "--color", "always"], &[]).contains(escape));
    assert!(error_with(&["plan"], &[("CLICOLOR_FORCE", "1")]).contains(escape));
    assert!(
        !error_with(&["plan"], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains(escape),
        "NO_COLOR wins over CLICOLOR_FORCE"
    );
    assert!(
        !error_with(&["plan", "--color", "never"], &[("CLICOLOR_FORCE", "1")]).contains(escape)
    );
    // clap's own usage errors follow --color too.
    assert!(error_with(&["plan", "--color", "always", "--bogus"], &[]).contains(escape));
    assert!(
        !error_with(
            &["plan", "--color=never", "--bogus"],
            &[("CLICOLOR_FORCE", "1")]
        )
        .contains(escape)
    );
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let run = tether(&workspace(), &["--version"]);
    assert_eq!(run.code, 0);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=7", "HEAD"])
        .current_dir(workspace())
        .output()
        .expect("git");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert!(
        run.stdout
            .starts_with(&format!("tether {} ({head} ", env!("CARGO_PKG_VERSION"))),
        "{}",
        run.stdout
    );
}

#[test]
fn completions_and_the_man_page_name_every_subcommand() {
    let subcommands = [
        "validate", "plan", "apply", "run", "agent", "audit", "status", "billing", "sandbox",
    ];
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = tether(&workspace(), &["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        for sub in subcommands {
            assert!(run.stdout.contains(sub), "{shell} completes `{sub}`");
        }
    }
    let man = tether(&workspace(), &["man"]);
    assert_eq!(man.code, 0, "{}", man.stderr);
    assert!(man.stdout.starts_with(".ie") && man.stdout.contains(".TH tether 1"));
    for sub in subcommands {
        assert!(
            man.stdout.contains(&format!("tether\\-{sub}")),
            "man lists `{sub}`"
        );
    }
    let plan = tether(&workspace(), &["man", "plan"]);
    assert!(
        plan.stdout.contains(".TH tether-plan 1") && plan.stdout.contains("detailed\\-exitcode")
    );
}
