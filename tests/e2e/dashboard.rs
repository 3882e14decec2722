//! The dashboard in a real headless browser: `tether run` converges the example fleet against
//! the emulators, Debian's Chromium loads `/` with the read token, and the table it renders
//! (after the page's script has refreshed it from `/api/status`) lists every server the emulator
//! holds, Ready; an agent's page shows its timeline; no token (the emulators', the read token)
//! and nothing shaped like an auth key (`tskey-`) is in any page. A screenshot is kept as
//! `target/e2e-artifacts/dashboard.png`. Without Chromium the test fails when `CI` is set and is
//! skipped (with a message) otherwise.

use crate::common::{commit_all, example_fleet, workspace};
use crate::daemon::Daemon;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tether::sandbox::stack::{Stack, StackOptions};

const READ_TOKEN: &str = "dashboard-read-token-5e1f";

/// `chromium` on the PATH, or `None` after failing (under CI) or saying it is skipped.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let message = "chromium is not on the PATH: install Debian's `chromium` (`.ci/run` does) to run the dashboard's browser test";
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("skipped: {message}");
    }
    found
}

/// Runs headless Chromium with `args` then `url`; returns stdout.
fn browse(chromium: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let out = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `/api/status` lists `n` agents, all Ready.
async fn wait_all_ready(url: &str, n: usize) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        let status = client
            .get(format!("{url}/api/status"))
            .bearer_auth(READ_TOKEN)
            .send()
            .await;
        if let Ok(r) = status
            && let Ok(doc) = r.json::<serde_json::Value>().await
            && let Some(agents) = doc["agents"].as_array()
            && agents.len() == n
            && agents.iter().all(|a| a["phase"] == "Ready")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the status branch did not record {n} Ready agents within 30 s");
}

/// The `<tr>` of `agent` in `dom`.
fn row<'a>(dom: &'a str, agent: &str) -> &'a str {
    let start = dom
        .find(&format!("data-agent=\"{agent}\""))
        .unwrap_or_else(|| panic!("no row for {agent} in the page:\n{dom}"));
    let end = dom[start..].find("</tr>").map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_browser_shows_every_emulated_server_ready_and_no_secret() {
    let Some(chromium) = chromium() else {
        return;
    };
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    commit_all(fleet.path(), "main", "the example fleet");
    let daemon = Daemon::spawn(
        &stack,
        &format!("  path: {}", fleet.path().display()),
        "",
        &[("TETHER_DASHBOARD_TOKEN", READ_TOKEN)],
    );
    daemon.wait_ready().await;
    let base = daemon.url().await;
    let servers = stack.hetzner.servers();
    assert_eq!(servers.len(), 6, "the example fleet has six agents");
    wait_all_ready(&base, servers.len()).await;

    let profile = tempfile::tempdir().expect("browser profile");
    let url = format!("{base}/?token={READ_TOKEN}");
    // Virtual time lets the page's poll of /api/status run (and re-render) before the dump.
    let dom = browse(
        &chromium,
        profile.path(),
        &["--virtual-time-budget=5000", "--dump-dom"],
        &url,
    );
    assert!(dom.contains("<h1>"), "a page was rendered:\n{dom}");
    assert!(
        dom.contains("id=\"updated\" class=\"faint\">updated "),
        "the page's script refreshed the table from /api/status:\n{dom}"
    );
    for s in &servers {
        let tr = row(&dom, &s.name);
        assert!(tr.contains(&format!("<td>{}</td>", s.id)), "{tr}");
        assert!(tr.contains(&format!("<td>{}</td>", s.location)), "{tr}");
        assert!(
            tr.contains("<span class=\"phase phase-ready\">Ready</span>"),
            "{tr}"
        );
    }
    assert_eq!(
        dom.matches("<tr class=").count(),
        servers.len(),
        "one row per server"
    );

    let html = reqwest::Client::new()
        .get(format!("{base}/"))
        .bearer_auth(READ_TOKEN)
        .send()
        .await
        .expect("the page")
        .text()
        .await
        .expect("body");
    let first = &servers[0];
    let agent_page = reqwest::Client::new()
        .get(format!("{base}/agents/{}", first.name))
        .bearer_auth(READ_TOKEN)
        .send()
        .await
        .expect("the agent page")
        .text()
        .await
        .expect("body");
    for line in [
        "spec added by Billing Bot".to_owned(),
        format!("phase Ready (server {})", first.id),
        format!("<dd id=\"server-id\">{}</dd>", first.id),
    ] {
        assert!(
            agent_page.contains(&line),
            "`{line}` missing:\n{agent_page}"
        );
    }

    let mut secrets: Vec<String> = stack.env().into_iter().map(|(_, v)| v).collect();
    secrets.retain(|v| !v.starts_with("http"));
    secrets.push(READ_TOKEN.to_owned());
    secrets.push("tskey-".to_owned());
    for page in [&dom, &html, &agent_page] {
        for secret in &secrets {
            assert!(!page.contains(secret.as_str()), "a secret in the page");
        }
    }

    let artifacts = workspace().join("target/e2e-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts folder");
    let shot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &chromium,
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
            "--virtual-time-budget=1000",
        ],
        &url,
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");

    daemon.stop().await;
    stack.shutdown().await;
}
