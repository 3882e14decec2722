//! `tether sandbox`: the emulated cloud (Hetzner, Tailscale, GitHub), a fleet repository seeded
//! from the example fleet, and the reconciler daemon running against them until Ctrl-C. It
//! prints how to talk to each piece; everything it made lives in one temporary folder that is
//! removed when it stops.

use super::stack::{CLIENT_ID, Stack, StackOptions};
use crate::daemon::config::{DaemonConfig, FleetSource, LogFormat, TailscaleAuth};
use crate::daemon::run::{self, Handles};
use crate::daemon::trigger::Schedule;
use crate::process::shutdown::ShutdownTrigger;
use crate::secret::Secret;
use git2::{IndexAddOption, Repository, Signature};
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use tether_emulators::github::{self, GitHubEmulator};

/// The repository the sandbox's GitHub emulator serves, backed by the fleet remote.
const GITHUB_REPOSITORY: &str = "acme/fleet";
/// The token the sandbox's GitHub emulator accepts (a sandbox value, printed on purpose).
pub const GITHUB_TOKEN: &str = "ghs_sandbox_token_for_tether";
/// The bearer token of the sandbox daemon's `POST /reconcile` (a sandbox value, printed on
/// purpose so `tether reconcile` works there).
pub const RECONCILE_TOKEN: &str = "sandbox-reconcile-token";

/// The agent API on loopback port 0: the daemon binds it and gives the VMs the bound address
/// ([`crate::runtime::Config::bound_at`]). The sandbox's VMs run tether-agent in-process
/// ([`super::agents`]), so runtime bumps roll out in waves here too; nothing downloads the binary.
fn agent_api() -> crate::runtime::Config {
    crate::runtime::Config {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        url: String::new(),
        binary_url: String::new(),
        poll: Duration::from_secs(1),
        wave_timeout: Duration::from_secs(60),
    }
}

/// Why the sandbox could not run.
#[derive(Debug, thiserror::Error)]
#[error("sandbox: {0}")]
pub struct LiveError(String);

fn err<E: std::fmt::Display>(e: E) -> LiveError {
    LiveError(e.to_string())
}

/// Runs the sandbox until `shutdown` is triggered, narrating into `out`. `options` sets how
/// fast the emulated cloud moves ([`StackOptions::with_latency`]); `None`: quick actions and a
/// half-second boot.
///
/// # Errors
/// An emulator, the repository or the daemon cannot start.
pub async fn run(
    fleet_dir: &Path,
    out: &mut impl Write,
    shutdown: ShutdownTrigger,
    options: Option<StackOptions>,
) -> Result<(), LiveError> {
    let dir = tempfile::tempdir().map_err(err)?;
    let options = options.unwrap_or_else(|| StackOptions {
        boot_delay: Duration::from_millis(500),
        ..StackOptions::default()
    });
    let stack = Stack::start(options).await.map_err(err)?;
    let github =
        GitHubEmulator::start(github::Config::default().user(GITHUB_TOKEN, "tether-sandbox"))
            .await
            .map_err(err)?;
    let app = super::app::App::start().await.map_err(err)?;
    let bare = dir.path().join("fleet.git");
    let work = dir.path().join("fleet");
    let fleet_name = seed(fleet_dir, &bare, &work)?;
    github.create_repo(GITHUB_REPOSITORY).map_err(err)?;
    github.link_git(GITHUB_REPOSITORY, &bare).map_err(err)?;
    let token = |name: &str| {
        stack
            .env()
            .into_iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .unwrap_or_default()
    };
    let config = DaemonConfig {
        fleet: fleet_name,
        source: FleetSource::Remote {
            url: format!("file://{}", bare.display()),
            branch: "main".into(),
            cache_dir: dir.path().join("cache"),
        },
        schedule: Schedule {
            every: Duration::from_secs(5),
            jitter: 0.1,
        },
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        webhook_secret: None,
        lock_ttl: Duration::from_secs(120),
        lock_holder: format!("sandbox/{}", std::process::id()),
        hetzner_endpoint: stack.hetzner.url(),
        hetzner_token: stack.hetzner_token(),
        tailscale_endpoint: stack.tailscale.url(),
        tailnet: "-".into(),
        tailscale_auth: TailscaleAuth::OAuth {
            client_id: CLIENT_ID.to_owned(),
            client_secret: Secret::new(token("TS_OAUTH_CLIENT_SECRET")),
        },
        github_token: None,
        concurrency: 8,
        log_format: LogFormat::Text,
        shutdown_grace: crate::daemon::config::DEFAULT_SHUTDOWN_GRACE,
        degraded_after: crate::daemon::config::DEFAULT_DEGRADED_AFTER,
        action_timeout: crate::cloud::hetzner::DEFAULT_ACTION_TIMEOUT,
        reconcile_token: Some(Secret::new(RECONCILE_TOKEN.to_owned())),
        notify: crate::daemon::config::NotifyConfig::default(),
        events: crate::daemon::config::EventsConfig {
            endpoint: Some(app.endpoint()),
        },
        agent_api: Some(agent_api()),
        dashboard: crate::daemon::config::DashboardConfig::default(),
        rate_budget: crate::daemon::budget::RateBudget::default(),
        signer: None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<Handles>();
    let narrate = async {
        let Ok(handles) = rx.await else {
            return;
        };
        let mut lines = vec![
            "tether sandbox is running: emulated Hetzner, Tailscale and GitHub on 127.0.0.1, and the".to_owned(),
            "reconciler daemon following a local fleet repository. Nothing leaves this machine.".to_owned(),
            String::new(),
            format!("fleet work tree   {}   (a clone of the remote, `main` tracking origin/main)", work.display()),
            format!("fleet remote      {}   (the daemon reconciles its `main` within 5 s)", bare.display()),
            format!("daemon            {}/metrics  {0}/readyz  {0}/healthz", handles.http_url),
            format!("dashboard:        {}/   (the fleet, live; open it in a browser)", handles.http_url),
            format!("the app           {}   (receives the agents' signed lifecycle events; `tether events list --repo {}`)", app.url(), bare.display()),
            String::new(),
            "Point clients at the emulated cloud:".to_owned(),
            format!("  export HCLOUD_ENDPOINT={} HCLOUD_TOKEN={}   # hcloud server list", stack.hetzner.url(), stack.hetzner.token().expose()),
            format!("  export TS_API_URL={} TS_OAUTH_CLIENT_ID={CLIENT_ID} TS_OAUTH_CLIENT_SECRET={}", stack.tailscale.url(), token("TS_OAUTH_CLIENT_SECRET")),
            format!("  export GITHUB_API_URL={} GITHUB_TOKEN={GITHUB_TOKEN} GITHUB_REPOSITORY={GITHUB_REPOSITORY}", github.url()),
            format!("  export TETHER_URL={} TETHER_RECONCILE_TOKEN={RECONCILE_TOKEN}   # tether reconcile: the daemon's listen address", handles.http_url.trim_start_matches("http://")),
            format!("  curl {}/_emulator/servers   # the cloud's state, no token needed", stack.hetzner.url().trim_end_matches("/v1")),
            String::new(),
            "Try it, after the exports above (every `$` line runs as pasted, in order; tether is".to_owned(),
            "named by its path, so the lines work after `cargo run` too):".to_owned(),
        ];
        lines.extend(try_lines(&tether_command(), &work, &bare, &github.url()));
        lines.push("Press Ctrl-C to stop; the temporary folder is removed.".to_owned());
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    };
    let (result, ()) = tokio::join!(run::run(config, shutdown, Some(tx)), narrate);
    let result = result.map_err(err);
    github.shutdown().await;
    stack.shutdown().await;
    let _ = writeln!(out, "sandbox stopped; removed {}", dir.path().display());
    result
}

/// This very binary as a shell word: its path, so a pasted line runs it whether or not
/// `tether` is on the PATH (after `cargo run` it is not); `tether` when the path is unknown.
fn tether_command() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(shell_word))
        .unwrap_or_else(|| "tether".to_owned())
}

/// `text` as one POSIX shell word: as is when it holds only safe characters, else in single
/// quotes.
fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The "Try it" lines of the banner: `$ ` lines are commands that run as pasted, in order,
/// after the exports (tests/e2e/sandbox_live.rs runs each of them). `tether` is how to run
/// tether ([`tether_command`]).
pub fn try_lines(tether: &str, work: &Path, bare: &Path, github_url: &str) -> Vec<String> {
    let work = shell_word(&work.display().to_string());
    let bare = shell_word(&bare.display().to_string());
    vec![
        "  billing adds an agent straight to main (the work tree follows):".to_owned(),
        format!(
            "  $ {tether} agent add --repo {work} --push origin --runtime-version 1.4.2 --subscription sub_try1 --customer cus_try"
        ),
        "  or edit a spec under agents/ yourself, then commit and push it:".to_owned(),
        format!("  $ git -C {work} commit -am 'Change a spec' && git -C {work} push"),
        "  or have the change reviewed: a pull request with tether's plan on it:".to_owned(),
        format!(
            "  $ {tether} agent add --repo {work} --push origin --open-pr --runtime-version 1.4.2 --subscription sub_try2 --customer cus_try"
        ),
        format!("  $ {tether} plan --git {bare} --rev tether/agent-sub_try2 --github-pr 1"),
        format!("  $ curl {github_url}/_emulator/comments"),
        "  the operator's view: check the fleet, ask the daemon for a pass now:".to_owned(),
        format!("  $ {tether} validate {work}"),
        format!("  $ {tether} reconcile"),
        "  an apply by hand (what CI runs) takes the fleet's lease, which the sandbox's daemon holds,"
            .to_owned(),
        format!(
            "  so here it exits 4 naming the holder: {tether} apply --git {bare} --rev main --auto-approve"
        ),
    ]
}

/// Creates the bare remote with the example fleet on `main` and a work clone of it, whose
/// `main` tracks `origin/main` (so a plain `git push` works); returns the fleet's name.
fn seed(fleet_dir: &Path, bare: &Path, work: &Path) -> Result<String, LiveError> {
    let snapshot = crate::source::dir::read(fleet_dir).map_err(err)?;
    let fleet = tether_schema::load_fleet(&snapshot.files).map_err(err)?;
    let repo = Repository::init(work).map_err(err)?;
    copy(fleet_dir, work)?;
    let mut index = repo.index().map_err(err)?;
    index
        .add_all(["*"], IndexAddOption::DEFAULT, None)
        .map_err(err)?;
    index.write().map_err(err)?;
    let tree = repo
        .find_tree(index.write_tree().map_err(err)?)
        .map_err(err)?;
    let sig = Signature::now("Platform Team", "platform@example.com").map_err(err)?;
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "The example fleet",
        &tree,
        &[],
    )
    .map_err(err)?;
    repo.set_head("refs/heads/main").map_err(err)?;
    Repository::init_bare(bare)
        .and_then(|b| b.set_head("refs/heads/main"))
        .map_err(err)?;
    let mut origin = repo
        .remote("origin", &format!("file://{}", bare.display()))
        .map_err(err)?;
    origin
        .push(&["refs/heads/main:refs/heads/main"], None)
        .map_err(err)?;
    let head = repo.refname_to_id("refs/heads/main").map_err(err)?;
    repo.reference("refs/remotes/origin/main", head, true, "sandbox seed")
        .map_err(err)?;
    repo.find_branch("main", git2::BranchType::Local)
        .and_then(|mut main| main.set_upstream(Some("origin/main")))
        .map_err(err)?;
    Ok(fleet.settings.name.to_string())
}

fn copy(from: &Path, to: &Path) -> Result<(), LiveError> {
    for entry in std::fs::read_dir(from).map_err(err)? {
        let entry = entry.map_err(err)?;
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(err)?.is_dir() {
            std::fs::create_dir_all(&target).map_err(err)?;
            copy(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn a_path_with_shell_characters_is_one_quoted_word() {
        assert_eq!(
            shell_word("/home/a/target/debug/tether"),
            "/home/a/target/debug/tether"
        );
        assert_eq!(shell_word("/home/my dir/tether"), "'/home/my dir/tether'");
        assert_eq!(shell_word("/tmp/it's/$x"), r"'/tmp/it'\''s/$x'");
        assert_eq!(shell_word(""), "''");
    }
}
