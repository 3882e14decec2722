//! Signed status commits: after real applies against the emulators with `--signing-key`, real
//! `git verify-commit` accepts every status commit against `gpg.ssh.allowedSignersFile`, and
//! `tether audit verify` names the commits someone with push access forged on the branch.

use crate::common::{commit_all, example_fleet, tether};
use std::path::Path;
use std::process::Command;
use tether::sandbox::stack::{Stack, StackOptions};

/// A fresh ed25519 key `name` in `dir` made by ssh-keygen; returns its public line.
fn keygen(dir: &Path, name: &str) -> String {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(dir.join(name))
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen failed");
    std::fs::read_to_string(dir.join(format!("{name}.pub"))).expect("public key")
}

/// Runs git in `repo` with the allowed signers configured: (exit code, stdout + stderr).
fn git(repo: &Path, signers: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("git")
        .current_dir(repo)
        .arg("-c")
        .arg(format!("gpg.ssh.allowedSignersFile={}", signers.display()))
        .args(args)
        .env("GIT_AUTHOR_NAME", "Mallory")
        .env("GIT_AUTHOR_EMAIL", "tether@localhost")
        .env("GIT_COMMITTER_NAME", "Mallory")
        .env("GIT_COMMITTER_EMAIL", "tether@localhost")
        .output()
        .expect("run git");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Puts a copy of the status tip (same tree, same message, so the same trailers) on top of the
/// status branch, as someone with push access could; `key` signs it when given.
fn forge(repo: &Path, signers: &Path, key: Option<&Path>) -> String {
    let (_, message) = git(
        repo,
        signers,
        &["log", "-1", "--format=%B", "tether/status"],
    );
    let mut args = vec![
        "-c".to_owned(),
        "gpg.format=ssh".to_owned(),
        "commit-tree".to_owned(),
        "tether/status^{tree}".to_owned(),
        "-p".to_owned(),
        "tether/status".to_owned(),
        "-m".to_owned(),
        message.trim_end().to_owned(),
    ];
    if let Some(key) = key {
        args.insert(2, "-c".to_owned());
        args.insert(3, format!("user.signingKey={}", key.display()));
        args.push("-S".to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = git(repo, signers, &args);
    assert_eq!(code, 0, "{out}");
    let forged = out.trim().to_owned();
    let (code, out) = git(
        repo,
        signers,
        &["update-ref", "refs/heads/tether/status", &forged],
    );
    assert_eq!(code, 0, "{out}");
    forged
}

#[tokio::test(flavor = "multi_thread")]
async fn git_verifies_every_signed_status_commit_and_audit_verify_names_the_forged_ones() {
    let keys = tempfile::tempdir().expect("keys");
    let public = keygen(keys.path(), "tether");
    keygen(keys.path(), "intruder");
    let signers = keys.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!("tether@localhost namespaces=\"git\" {public}"),
    )
    .expect("write allowed signers");
    let key = keys.path().join("tether");
    let key_arg = key.to_str().expect("utf-8 path");

    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    commit_all(fleet.path(), "main", "the example fleet");
    let (code, _, err) =
        crate::common::apply(&stack, fleet.path(), &["--signing-key", key_arg]).await;
    assert_eq!(code, 0, "{err}");
    std::fs::remove_file(fleet.path().join("agents/globex/globex-ops.yaml")).expect("remove");
    commit_all(fleet.path(), "main", "billing: cancel globex-ops");
    let (code, _, err) = crate::common::apply(
        &stack,
        fleet.path(),
        &["--signing-key", key_arg, "--allow-shrink"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        stack.hetzner.servers().len() >= 2,
        "the run created servers"
    );
    stack.shutdown().await;

    let repo = fleet.path();
    let (_, list) = git(repo, &signers, &["rev-list", "tether/status"]);
    let commits: Vec<&str> = list.lines().collect();
    assert!(commits.len() >= 2, "status commits: {list}");
    for commit in &commits {
        let (code, out) = git(repo, &signers, &["verify-commit", commit]);
        assert_eq!(code, 0, "git verify-commit {commit}: {out}");
        assert!(
            out.contains("Good \"git\" signature for tether@localhost"),
            "{out}"
        );
    }
    let (_, shown) = git(
        repo,
        &signers,
        &["log", "--show-signature", "-1", "tether/status"],
    );
    assert!(shown.contains("Good \"git\" signature"), "{shown}");

    let signers_arg = signers.to_str().expect("utf-8 path");
    let repo_arg = repo.to_str().expect("utf-8 path");
    let verify = [
        "audit",
        "verify",
        "--repo",
        repo_arg,
        "--allowed-signers",
        signers_arg,
    ];
    let clean = tether(repo, &verify);
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
    let n = commits.len();
    assert!(
        clean.stdout.contains(&format!(
            "{n} status commits checked: {n} signed by an allowed key"
        )),
        "{}",
        clean.stdout
    );

    let unsigned = forge(repo, &signers, None);
    let (code, out) = git(repo, &signers, &["verify-commit", &unsigned]);
    assert_ne!(code, 0, "git accepts an unsigned commit: {out}");
    let signed_by_other = forge(repo, &signers, Some(&keys.path().join("intruder")));
    let (code, out) = git(repo, &signers, &["verify-commit", &signed_by_other]);
    assert_ne!(code, 0, "git accepts the intruder's key: {out}");

    let found = tether(repo, &verify);
    assert_eq!(found.code, 1, "{}{}", found.stdout, found.stderr);
    let line = |id: &str| {
        found
            .stdout
            .lines()
            .find(|l| l.starts_with(&id[..10]))
            .unwrap_or_else(|| panic!("{id} not named in\n{}", found.stdout))
            .to_owned()
    };
    assert!(
        line(&unsigned).contains("by Mallory <tether@localhost>: unsigned"),
        "{}",
        found.stdout
    );
    let forged = line(&signed_by_other);
    assert!(
        forged.contains("by Mallory <tether@localhost>: forged signature: key SHA256:")
            && forged.contains("is not in the allowed signers"),
        "{}",
        found.stdout
    );
    assert!(
        found.stdout.contains(&format!(
            "{} status commits checked: {n} signed by an allowed key",
            n + 2
        )),
        "{}",
        found.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_signs_its_status_commits_with_the_key_from_the_environment() {
    let keys = tempfile::tempdir().expect("keys");
    let public = keygen(keys.path(), "daemon");
    let signers = keys.path().join("allowed_signers");
    std::fs::write(&signers, format!("tether@aura-prod {public}")).expect("allowed signers");
    let key = keys.path().join("daemon");

    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    commit_all(fleet.path(), "main", "the example fleet");
    let daemon = crate::daemon::Daemon::spawn(
        &stack,
        &format!("  path: {}", fleet.path().display()),
        "",
        &[("TETHER_SIGNING_KEY_FILE", key.to_str().expect("utf-8 path"))],
    );
    daemon.wait_ready().await;
    let log = daemon.log_text();
    daemon.stop().await;
    stack.shutdown().await;
    assert!(!log.contains("PRIVATE KEY"), "{log}");

    let repo = fleet.path();
    let (_, list) = git(repo, &signers, &["rev-list", "tether/status"]);
    assert!(!list.trim().is_empty(), "the daemon wrote no status commit");
    for commit in list.lines() {
        let (code, out) = git(repo, &signers, &["verify-commit", commit]);
        assert_eq!(code, 0, "git verify-commit {commit}: {out}");
    }
    let repo_arg = repo.to_str().expect("utf-8 path");
    let signers_arg = signers.to_str().expect("utf-8 path");
    let verify = tether(
        repo,
        &[
            "audit",
            "verify",
            "--repo",
            repo_arg,
            "--allowed-signers",
            signers_arg,
        ],
    );
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
}
