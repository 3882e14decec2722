//! Command-line rough edges a newcomer hit, each checked as they would: the exit code and the
//! message of a bad `--since`, `reconcile --url` in the `listen` form, every missing credential
//! in one run, `tether man | head`, the man page's closing sections, bash completion of
//! `--phase`, and `--print-config` output that loads back.

use crate::common::{example_fleet, tether, tether_bin, workspace};
use std::process::Command;

/// Runs `tether ARGS` in `dir` with every provider variable removed.
fn tether_without_credentials(dir: &std::path::Path, args: &[&str]) -> crate::common::Run {
    let mut cmd = Command::new(tether_bin());
    cmd.current_dir(dir).args(args).env_remove("RUST_LOG");
    for (name, _) in std::env::vars() {
        if name.starts_with("HCLOUD_") || name.starts_with("TS_") || name.starts_with("GITHUB_") {
            cmd.env_remove(name);
        }
    }
    cmd.output().expect("run tether").into()
}

#[test]
fn audit_log_since_a_word_is_a_usage_error_that_says_which_dates_work() {
    let run = tether(&workspace(), &["audit", "log", "--since", "yesterday"]);
    assert_eq!(run.code, 64, "{}", run.stderr);
    assert!(
        run.stderr.contains("--since `yesterday` is not a date")
            && run.stderr.contains("YYYY-MM-DD"),
        "{}",
        run.stderr
    );
}

#[test]
fn reconcile_takes_the_listen_form_of_the_daemon_address() {
    let port = crate::daemon::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(tether_bin());
    cmd.args(["reconcile", "--url", &listen])
        .env("TETHER_RECONCILE_TOKEN", "t0ken")
        .env_remove("TETHER_URL");
    let run: crate::common::Run = cmd.output().expect("run tether").into();
    assert_eq!(run.code, 4, "nothing listens there: {}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "cannot reach the daemon at http://{listen}/reconcile"
        )) && !run.stderr.contains("relative URL"),
        "{}",
        run.stderr
    );
    let bad = Command::new(tether_bin())
        .args(["reconcile", "--url", "ftp://host"])
        .env("TETHER_RECONCILE_TOKEN", "t0ken")
        .output()
        .expect("run tether");
    assert_eq!(bad.status.code(), Some(64));
}

#[test]
fn every_missing_credential_is_named_in_one_run() {
    let fleet = example_fleet();
    let run = tether_without_credentials(fleet.path(), &["plan"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("HCLOUD_TOKEN is not set") && run.stderr.contains("TS_API_KEY"),
        "both the Hetzner token and the Tailscale credentials: {}",
        run.stderr
    );
}

#[test]
fn man_piped_into_head_stops_quietly_and_the_page_has_its_closing_sections() {
    let piped = Command::new("bash")
        .args(["-c", "set -o pipefail; \"$0\" man | head -n 1 >/dev/null"])
        .arg(tether_bin())
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        piped.status.success() && stderr.is_empty(),
        "{}: {stderr}",
        piped.status
    );

    let page = tether(&workspace(), &["man"]);
    assert_eq!(page.code, 0, "{}", page.stderr);
    for section in [
        ".SH \"EXIT STATUS\"",
        ".SH ENVIRONMENT",
        ".SH FILES",
        ".SH EXAMPLES",
    ] {
        assert!(page.stdout.contains(section), "`{section}` missing");
    }
    assert!(page.stdout.contains("\\fB64\\fR") && page.stdout.contains("HCLOUD_TOKEN"));
}

#[test]
fn bash_completes_the_phase_of_status_with_the_phases() {
    let script = tether(&workspace(), &["completions", "bash"]);
    assert_eq!(script.code, 0, "{}", script.stderr);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tether.bash");
    std::fs::write(&file, &script.stdout).expect("write the script");
    // What bash does on `tether status --phase <TAB>` in a folder full of files.
    std::fs::write(dir.path().join("notes.txt"), "").expect("a file");
    let complete = |word: &str| {
        let out = Command::new("bash")
            .current_dir(dir.path())
            .args([
                "-c",
                "source \"$0\"; COMP_WORDS=(tether status --phase \"$1\"); COMP_CWORD=3; COMP_LINE=\"tether status --phase $1\"; COMP_POINT=${#COMP_LINE}; _tether tether \"$1\" --phase; printf '%s\\n' \"${COMPREPLY[@]}\"",
            ])
            .arg(&file)
            .arg(word)
            .output()
            .expect("run bash");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        complete(""),
        [
            "pending",
            "provisioning",
            "ready",
            "degraded",
            "deleting",
            "failed",
            "orphaned",
            "quarantined"
        ]
    );
    assert_eq!(complete("pr"), ["provisioning"]);
}

#[test]
fn the_printed_configuration_loads_back_with_a_tailnet_named_dash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tether.yaml");
    std::fs::write(
        &config,
        "fleet: \"yes\"\nsource:\n  path: \"/srv/fleet #1\"\ntailscale:\n  tailnet: \"-\"\nlock:\n  holder: \"host: a\"\n",
    )
    .expect("write");
    let print = |file: &std::path::Path| {
        let out = Command::new(tether_bin())
            .args(["run", "--print-config", "--config"])
            .arg(file)
            .env("HCLOUD_TOKEN", "hc-secret")
            .env("TS_API_KEY", "tskey-api-secret")
            .env_remove("TS_OAUTH_CLIENT_ID")
            .env_remove("TS_OAUTH_CLIENT_SECRET")
            .output()
            .expect("run tether");
        let run: crate::common::Run = out.into();
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    };
    let first = print(&config);
    assert!(
        !first.contains("hc-secret") && !first.contains("tskey-api-secret"),
        "{first}"
    );
    let printed = dir.path().join("printed.yaml");
    std::fs::write(&printed, &first).expect("write");
    let second = print(&printed);
    let body = |text: &str| text.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(
        body(&second),
        body(&first),
        "the printed file prints the same"
    );
    assert!(
        first.contains("tailnet: \"-\"") || first.contains("tailnet: '-'"),
        "{first}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_for_a_running_daemon_as_a_container_health_check_would_ask() {
    use tether::sandbox::stack::{Stack, StackOptions};
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    crate::common::commit_all(fleet.path(), "main", "seed");
    let daemon = crate::daemon::Daemon::spawn(
        &stack,
        &format!("  path: {}", fleet.path().display()),
        "",
        &[],
    );
    daemon.wait_ready().await;
    let listen = daemon.url().await.trim_start_matches("http://").to_owned();
    let health = |args: &[&str]| -> crate::common::Run {
        Command::new(tether_bin())
            .arg("health")
            .args(args)
            .env_remove("TETHER_URL")
            .output()
            .expect("run tether")
            .into()
    };
    let alive = health(&["--url", &listen]);
    assert_eq!(
        (alive.code, alive.stdout.trim()),
        (0, r#"{"status":"ok"}"#),
        "{}",
        alive.stderr
    );
    let ready = health(&["--url", &listen, "--ready"]);
    assert_eq!(ready.code, 0, "{}", ready.stderr);
    assert!(ready.stdout.contains("ready"), "{}", ready.stdout);
    daemon.stop().await;
    let gone = health(&["--url", &listen]);
    assert_eq!(
        gone.code, 4,
        "a stopped daemon cannot be reached: {}",
        gone.stderr
    );
    stack.shutdown().await;
}

#[test]
fn agent_remove_says_it_removed_the_spec() {
    let repo = example_fleet();
    crate::common::commit_all(repo.path(), "main", "seed");
    let run = tether(
        repo.path(),
        &["agent", "remove", "--subscription", "sub_1OaBcAcmeStage"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("removed agents/acme/acme-staging.yaml: committed "),
        "{}",
        run.stdout
    );
    let git = git2::Repository::open(repo.path()).expect("repo");
    let tree = git
        .revparse_single("main")
        .and_then(|c| c.peel_to_tree())
        .expect("main's tree");
    assert!(
        tree.get_path(std::path::Path::new("agents/acme/acme-staging.yaml"))
            .is_err(),
        "the commit removes the spec"
    );
}
