//! `tether run` as a real process: it converges at start, then reacts to a local edit (file
//! watch) and to a signed GitHub push webhook, and stops cleanly on SIGTERM.

use crate::common::{commit_all, example_fleet, tether_bin};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tether::sandbox::stack::{Stack, StackOptions};

/// A port nothing listens on at the moment, for the agent API (`runtime.rs`), whose address the
/// VMs are given before it starts; racy in principle, unlike the daemon's own HTTP address, which
/// the daemon binds as `127.0.0.1:0` and logs.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A `tether run` process against the emulators.
pub(crate) struct Daemon {
    pub child: tokio::process::Child,
    pub log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    async fn start(stack: &Stack, source: &str, extra_env: &[(&str, &str)]) -> Daemon {
        let webhook = if extra_env.iter().any(|(k, _)| *k == "TETHER_WEBHOOK_SECRET") {
            "webhook: {}\n"
        } else {
            ""
        };
        let daemon = Daemon::spawn(stack, source, webhook, extra_env);
        daemon.wait_ready().await;
        daemon
    }

    /// Starts `tether run` with `source` (indented YAML under `source:`), more top-level YAML
    /// in `extra`, and `env`; does not wait for it. It listens on a port the kernel picks
    /// (`127.0.0.1:0`) and logs its URL; [`Daemon::url`] reads it from there.
    pub(crate) fn spawn(stack: &Stack, source: &str, extra: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("config dir");
        let config = dir.path().join("tether.yaml");
        let log = dir.path().join("tether.log");
        // `interval: 5m` unless `extra` sets its own: a test that needs passes after the first
        // must ask for them, since the daemon's own writes do not wake it.
        let interval = if extra.lines().any(|l| l.starts_with("interval:")) {
            ""
        } else {
            "interval: 5m\n"
        };
        let yaml = format!(
            "fleet: aura-prod\nsource:\n{source}\n{interval}listen: 127.0.0.1:0\nhetzner:\n  endpoint: {}\ntailscale:\n  endpoint: {}\n{extra}",
            stack.hetzner.url(),
            stack.tailscale.url(),
        );
        std::fs::write(&config, yaml).expect("config");
        let mut cmd = tokio::process::Command::new(tether_bin());
        let stderr = std::fs::File::create(&log).expect("log file");
        cmd.args(["run", "--config", config.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .stderr(stderr)
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        for (k, v) in stack.env() {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start tether run");
        Daemon {
            child,
            log,
            _dir: dir,
        }
    }

    /// The URL of the endpoints, from the daemon's `endpoints up` log line (text, `url=http://…`,
    /// or JSON, `"url":"http://…"`); `None` before it.
    fn logged_url(&self) -> Option<String> {
        let log = self.log_text();
        let line = log.lines().find(|l| l.contains("endpoints up"))?;
        let from = &line[line.find("http://")?..];
        let end = from
            .find(|c: char| c.is_whitespace() || c == '"')
            .unwrap_or(from.len());
        Some(from[..end].to_owned())
    }

    /// The URL of the endpoints, once the daemon has logged it (within 30 s).
    pub(crate) async fn url(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(url) = self.logged_url() {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "tether run logged no `endpoints up` line within 30 s:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `/readyz`: the status code and body; `None` while the endpoints do not answer.
    pub(crate) async fn readyz(&self) -> Option<(u16, String)> {
        let url = self.logged_url()?;
        let r = reqwest::Client::new()
            .get(format!("{url}/readyz"))
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.unwrap_or_default()))
    }

    pub(crate) async fn wait_ready(&self) {
        for _ in 0..600 {
            if let Some((200, _)) = self.readyz().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "tether run did not become ready within 30 s:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) async fn stop(mut self) {
        let pid = self.child.id().expect("pid");
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .expect("wait");
        assert!(status.success(), "clean exit on SIGTERM: {status}");
    }
}

/// Waits until the Hetzner emulator has seen `method` on a route starting with `route`.
async fn first_request(stack: &Stack, method: &str, route: &str, since: Instant) -> Duration {
    let before = stack.hetzner.requests().count(method, route);
    for _ in 0..1000 {
        if stack.hetzner.requests().count(method, route) > before {
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no {method} {route} within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_reacts_to_a_local_edit_within_a_second() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    crate::common::without_quarantine(fleet.path());
    commit_all(fleet.path(), "main", "seed");
    let daemon = Daemon::start(&stack, &format!("  path: {}", fleet.path().display()), &[]).await;
    assert_eq!(stack.hetzner.servers().len(), 6, "converged at start");

    let edited = Instant::now();
    std::fs::remove_file(fleet.path().join("agents/globex/globex-ops.yaml"))
        .expect("edit the fleet");
    let reacted = first_request(&stack, "DELETE", "/v1/servers/", edited).await;
    assert!(
        reacted < Duration::from_secs(1),
        "the edit was acted on after {reacted:?}"
    );
    daemon.stop().await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_reacts_to_a_pushed_commit_via_the_webhook_within_a_second() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let work = example_fleet();
    commit_all(work.path(), "main", "seed");
    let remote = tempfile::tempdir().expect("remote");
    git2::Repository::init_bare(remote.path()).expect("bare");
    let push = |work: &Path| {
        let repo = git2::Repository::open(work).expect("work repo");
        let mut r = repo
            .remote_anonymous(remote.path().to_str().expect("utf-8"))
            .expect("remote");
        r.push(&["+refs/heads/main:refs/heads/main"], None)
            .expect("push");
        repo.revparse_single("main").expect("main").id().to_string()
    };
    push(work.path());
    let cache_parent = tempfile::tempdir().expect("cache");
    let cache = cache_parent.path().join("mirror");
    let secret = "It's a Secret to Everybody";
    let source = format!(
        "  remote: file://{}\n  branch: main\n  cacheDir: {}",
        remote.path().display(),
        cache.display()
    );
    let daemon = Daemon::start(&stack, &source, &[("TETHER_WEBHOOK_SECRET", secret)]).await;
    assert_eq!(stack.hetzner.servers().len(), 6, "converged at start");

    let spec = work.path().join("agents/acme/acme-new.yaml");
    std::fs::write(&spec, "apiVersion: tether/v1\nkind: Agent\nmetadata: {name: acme-new}\nspec: {subscription: sub_new, runtime: {version: '1.4.2'}}\n").expect("spec");
    commit_all(work.path(), "main", "billing: acme-new");
    let after = push(work.path());
    let body = format!(
        r#"{{"ref":"refs/heads/main","after":"{after}","repository":{{"full_name":"acme/fleet"}}}}"#
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac");
    mac.update(body.as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let pushed = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{}/webhook", daemon.url().await))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header("X-Hub-Signature-256", format!("sha256={signature}"))
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("deliver");
    assert_eq!(response.status().as_u16(), 202);
    let reacted = first_request(&stack, "POST", "/v1/servers", pushed).await;
    assert!(
        reacted < Duration::from_secs(1),
        "the push was acted on after {reacted:?}"
    );

    let forged = reqwest::Client::new()
        .post(format!("{}/webhook", daemon.url().await))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", "another-delivery")
        .header("X-Hub-Signature-256", "sha256=00")
        .body(body)
        .send()
        .await
        .expect("deliver forged");
    assert_eq!(forged.status().as_u16(), 401, "a bad signature is refused");
    daemon.stop().await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_folder_without_git_is_refused_because_it_cannot_hold_the_lease() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    let mut daemon = Daemon::spawn(
        &stack,
        &format!("  path: {}", fleet.path().display()),
        "",
        &[],
    );
    let status = tokio::time::timeout(Duration::from_secs(20), daemon.child.wait())
        .await
        .expect("exits at once")
        .expect("wait");
    assert_eq!(status.code(), Some(1));
    let log = daemon.log_text();
    assert!(
        log.contains("is not the top of a git repository") && log.contains("git init"),
        "{log}"
    );
    assert!(stack.hetzner.servers().is_empty(), "nothing was changed");
    stack.shutdown().await;
}

/// The `reconciling` lines the daemon has logged: one per pass it started.
fn passes(daemon: &Daemon) -> usize {
    daemon
        .log_text()
        .lines()
        .filter(|l| l.contains("reconciling"))
        .count()
}

/// The commit `refs/tether/locks/aura-prod` points at in `fleet`, if any.
fn lease_commit(fleet: &Path) -> Option<git2::Oid> {
    git2::Repository::open(fleet)
        .ok()?
        .refname_to_id("refs/tether/locks/aura-prod")
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_on_a_folder_is_not_woken_by_its_own_lease_renewals_and_status_commits() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    crate::common::without_quarantine(fleet.path());
    commit_all(fleet.path(), "main", "seed");
    // A 3 s lease is renewed every second, so the wait below spans several renewals.
    let daemon = Daemon::spawn(
        &stack,
        &format!("  path: {}", fleet.path().display()),
        "lock:\n  ttl: 3s\n",
        &[],
    );
    daemon.wait_ready().await;
    assert_eq!(stack.hetzner.servers().len(), 6, "converged at start");
    // Let the start pass's own status commit land before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = passes(&daemon);

    let mut leases = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while leases.len() < 5 {
        assert!(
            Instant::now() < deadline,
            "the lease was renewed only {} times in 30 s:\n{}",
            leases.len().saturating_sub(1),
            daemon.log_text()
        );
        leases.extend(lease_commit(fleet.path()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        passes(&daemon),
        settled,
        "4 lease renewals with interval 5m started passes:\n{}",
        daemon.log_text()
    );

    let edited = Instant::now();
    std::fs::remove_file(fleet.path().join("agents/globex/globex-ops.yaml"))
        .expect("edit the fleet");
    first_request(&stack, "DELETE", "/v1/servers/", edited).await;
    // The pass's status commit and the renewals after it must not start another.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        passes(&daemon),
        settled + 1,
        "a spec change starts exactly one pass:\n{}",
        daemon.log_text()
    );
    assert_eq!(stack.hetzner.servers().len(), 5);
    daemon.stop().await;
    stack.shutdown().await;
}
