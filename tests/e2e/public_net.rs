//! `publicNet`: an agent whose spec turns IPv4 off is created without a primary IPv4 and
//! still joins the tailnet; turning it off on a running agent is planned as a replacement
//! with the field shown, and applied.

use crate::common::{apply, commit_all, example_fleet, without_quarantine};
use std::path::Path;
use std::time::Duration;
use tether::cloud::Compute;
use tether::sandbox::stack::{Stack, StackOptions};

const STAGING: &str = "agents/acme/acme-staging.yaml";

fn turn_ipv4_off(repo: &Path) {
    let path = repo.join(STAGING);
    let text = std::fs::read_to_string(&path).expect("read spec");
    let changed = text.replace(
        "server: {type: cpx11, location: nbg1}",
        "server: {type: cpx11, location: nbg1, publicNet: {ipv4: false}}",
    );
    assert_ne!(text, changed, "the example spec's server line moved");
    std::fs::write(&path, changed).expect("write spec");
}

/// `(id, has IPv4, has IPv6)` of the server named `name`, as the API reports it.
async fn addresses(stack: &Stack, name: &str) -> (u64, bool, bool) {
    let client = stack
        .hetzner_client(Duration::from_millis(10))
        .expect("client");
    let servers = client.list_servers(None).await.expect("list");
    let server = servers
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no server {name}"));
    (server.id.0, server.ipv4.is_some(), server.ipv6.is_some())
}

fn online(stack: &Stack, name: &str) -> bool {
    stack
        .tailscale
        .devices()
        .iter()
        .any(|d| d.hostname == name && d.connected_to_control)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_ipv4_is_created_ipv6_only_and_joins_the_tailnet() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = example_fleet();
    without_quarantine(repo.path());
    turn_ipv4_off(repo.path());
    commit_all(repo.path(), "main", "acme-staging without IPv4");
    let (code, out, err) = apply(&stack, repo.path(), &[]).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let (_, ipv4, ipv6) = addresses(&stack, "acme-staging").await;
    assert_eq!((ipv4, ipv6), (false, true), "acme-staging is IPv6-only");
    let (_, ipv4, _) = addresses(&stack, "acme-prod").await;
    assert!(ipv4, "agents that leave publicNet out keep their IPv4");
    assert!(online(&stack, "acme-staging"), "it joined the tailnet");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_ipv4_off_on_a_running_agent_replaces_it_naming_the_field() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let repo = example_fleet();
    without_quarantine(repo.path());
    commit_all(repo.path(), "main", "seed the example fleet");
    let (code, out, err) = apply(&stack, repo.path(), &[]).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let (before, ipv4, _) = addresses(&stack, "acme-staging").await;
    assert!(ipv4);
    turn_ipv4_off(repo.path());
    commit_all(repo.path(), "main", "acme-staging without IPv4");
    let (code, out, err) = apply(&stack, repo.path(), &[]).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("REPLACE server acme-staging")
            && out.contains("public net: ipv4, ipv6 → ipv6 only"),
        "{out}"
    );
    let (after, ipv4, ipv6) = addresses(&stack, "acme-staging").await;
    assert_ne!(before, after, "a new server");
    assert_eq!((ipv4, ipv6), (false, true));
    assert!(online(&stack, "acme-staging"));
    let (code, out, _) = apply(&stack, repo.path(), &[]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("Apply: 0 done, 0 failed, 0 skipped."),
        "converged: {out}"
    );
    stack.shutdown().await;
}
