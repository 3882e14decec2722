//! The agent API over real HTTP: an agent reads only its own runtime, with its own credential;
//! reports land; rotation replaces the credential without ever locking the agent out; no
//! response carries a credential.

use super::wire::{Desired, Report};
use super::{Config, Service, api, credential};
use crate::agent_client::Client;
use crate::secret::Secret;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn desired(version: &str) -> Desired {
    Desired {
        version: version.to_owned(),
        env: BTreeMap::from([("API_TOKEN".to_owned(), "tok-123".to_owned())]),
        poll_seconds: 1,
    }
}

/// A served API with agents `a1` and `a2` enrolled; their credentials.
async fn served() -> (Service, String, Secret<String>, Secret<String>) {
    let service = Service::new(Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        url: String::new(),
        binary_url: String::new(),
        poll: Duration::from_secs(1),
        wave_timeout: Duration::from_secs(5),
    });
    let (c1, c2) = (credential::mint(), credential::mint());
    for (name, c) in [("a1", &c1), ("a2", &c2)] {
        labelled(&service, name, c);
        service.serve(name, Some(desired(&format!("1.0-{name}"))));
    }
    let server = api::serve(service.clone(), std::future::pending())
        .await
        .expect("serve");
    (service, format!("http://{}", server.addr), c1, c2)
}

/// What a pass does when it reads `agent`'s server labelled with `credential`'s hash.
fn labelled(service: &Service, agent: &str, credential: &Secret<String>) {
    service
        .lock()
        .agents
        .entry(agent.to_owned())
        .or_default()
        .follow_label(Some(&credential::hash(credential)));
}

async fn status_of(url: &str, bearer: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(b) = bearer {
        request = request.bearer_auth(b);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn an_agent_reads_its_own_runtime_and_no_other() {
    let (_service, base, c1, c2) = served().await;
    let own = Client::new(&base, "a1", c1.clone());
    assert_eq!(
        own.desired().await.expect("own runtime"),
        Some(desired("1.0-a1"))
    );

    let (status, body) =
        status_of(&format!("{base}/v1/agents/a2/runtime"), Some(c1.expose())).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not agent `a2`'s"), "{body}");
    assert!(
        !body.contains("1.0-a2") && !body.contains("tok-123"),
        "{body}"
    );

    let (status, body) = status_of(&format!("{base}/v1/agents/a1/runtime"), Some("wrong")).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = status_of(&format!("{base}/v1/agents/a1/runtime"), None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = status_of(&format!("{base}/v1/agents/a1/runtime"), Some(c2.expose())).await;
    assert_eq!(status, 403);
    assert!(!body.contains(c1.expose().as_str()) && !body.contains(c2.expose().as_str()));
}

#[tokio::test]
async fn reports_are_recorded_as_heartbeats_of_their_agent() {
    let (service, base, c1, _) = served().await;
    let report = Report {
        version: Some("1.0-a1".into()),
        healthy: true,
        error: None,
    };
    Client::new(&base, "a1", c1)
        .report(&report)
        .await
        .expect("report");
    assert_eq!(service.reported("a1").map(|r| r.report), Some(report));
    assert_eq!(service.reported("a2"), None);
}

#[tokio::test]
async fn rotation_replaces_the_credential_once_used_and_labelled_and_never_locks_the_agent_out() {
    let (service, base, c1, _) = served().await;
    let url = format!("{base}/v1/agents/a1/runtime");
    let fresh = Client::new(&base, "a1", c1.clone())
        .rotate()
        .await
        .expect("rotate");
    assert_ne!(fresh.expose(), c1.expose());
    assert!(
        service.pending_keys().is_empty(),
        "an unused new credential is not labelled: its answer may never have arrived"
    );
    assert_eq!(status_of(&url, Some(c1.expose())).await.0, 200);

    let again = Client::new(&base, "a1", fresh.clone());
    assert_eq!(
        again.desired().await.expect("runtime"),
        Some(desired("1.0-a1"))
    );
    assert_eq!(
        service.pending_keys(),
        [("a1".to_owned(), credential::hash(&fresh))],
        "once used, the new hash waits for the server's label"
    );

    // A daemon restarted before the relabel knows only the label: the old credential works,
    // the new one is refused, and the agent rotates again.
    let restarted = Service::new(service.config().clone());
    labelled(&restarted, "a1", &c1);
    assert!(restarted.authenticates("a1", &c1));
    assert!(!restarted.authenticates("a1", &fresh));

    // The pass labels the server: from then on only the new credential works.
    labelled(&service, "a1", &fresh);
    assert!(service.pending_keys().is_empty());
    assert_eq!(status_of(&url, Some(c1.expose())).await.0, 401);
    assert_eq!(status_of(&url, Some(fresh.expose())).await.0, 200);
}

#[test]
fn a_port_0_api_gives_the_vms_its_bound_address_and_a_fixed_port_keeps_its_urls() {
    let config = |listen: &str, url: &str| Config {
        listen: listen.parse().expect("addr"),
        url: url.to_owned(),
        binary_url: format!("{url}/bin"),
        poll: Duration::from_secs(1),
        wave_timeout: Duration::from_secs(5),
    };
    let bound = "127.0.0.1:40123".parse().expect("addr");
    let picked = config("127.0.0.1:0", "").bound_at(bound);
    assert_eq!(
        (
            picked.listen,
            picked.url.as_str(),
            picked.binary_url.as_str()
        ),
        (
            bound,
            "http://127.0.0.1:40123",
            "http://127.0.0.1:40123/tether-agent"
        )
    );
    let fixed = config("100.64.0.1:9190", "http://daemon.tail1.ts.net:9190")
        .bound_at("100.64.0.1:9190".parse().expect("addr"));
    assert_eq!(
        (fixed.url.as_str(), fixed.binary_url.as_str()),
        (
            "http://daemon.tail1.ts.net:9190",
            "http://daemon.tail1.ts.net:9190/bin"
        )
    );
}

/// A fleet named `aura` whose agents `a1` and `a2` run `version`.
fn fleet_at(version: &str) -> tether_schema::Fleet {
    let mut files = vec![tether_schema::SourceFile {
        path: "fleet.yaml".into(),
        content: tether_schema::Content::Bytes(
            "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: aura}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  catalog: {serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}\n".as_bytes().to_vec(),
        ),
    }];
    for name in ["a1", "a2"] {
        files.push(tether_schema::SourceFile {
            path: format!("agents/{name}.yaml"),
            content: tether_schema::Content::Bytes(
                format!("apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {name}}}\nspec:\n  subscription: sub_{name}\n  runtime: {{version: \"{version}\", env: {{API_TOKEN: tok-{name}}}}}\n").into_bytes(),
            ),
        });
    }
    tether_schema::load_fleet(&files).expect("valid fleet")
}

/// `agent`'s server as `created_from` labelled it, with `credential`'s hash.
fn server_of(
    created_from: &tether_schema::Fleet,
    agent: &str,
    id: u64,
    credential: &Secret<String>,
) -> crate::cloud::Server {
    let spec = created_from.agents.get(agent).expect("agent");
    let mut labels = tether_schema::labels::server_labels(spec, &created_from.settings);
    labels.insert(
        tether_schema::labels::AGENT_KEY.to_owned(),
        credential::hash(credential),
    );
    crate::cloud::Server {
        id: crate::cloud::ServerId(id),
        name: agent.to_owned(),
        status: crate::cloud::ServerStatus::Running,
        server_type: "cpx21".into(),
        location: "fsn1".into(),
        image: Some("ubuntu-24.04".into()),
        labels,
        ipv4: None,
        ipv6: None,
        created: "2026-12-01T10:00:00Z".into(),
        delete_protected: false,
        rebuild_protected: false,
        disk_gb: Some(80),
        project: None,
    }
}

fn config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        url: String::new(),
        binary_url: String::new(),
        poll: Duration::from_secs(1),
        wave_timeout: Duration::from_secs(5),
    }
}

#[test]
fn a_restarted_service_knows_its_agents_from_their_servers_labels_before_any_pass() {
    let fleet = fleet_at("1.4.0");
    let (c1, c2) = (credential::mint(), credential::mint());
    let mut other = server_of(&fleet, "a2", 2, &c2);
    other
        .labels
        .insert(tether_schema::labels::FLEET.to_owned(), "elsewhere".into());
    let restarted = Service::new(config());
    let seeded = restarted.seed("aura", &[server_of(&fleet, "a1", 1, &c1), other]);
    assert_eq!(seeded, 1, "only this fleet's servers");
    assert!(restarted.authenticates("a1", &c1));
    assert!(
        !restarted.authenticates("a2", &c2),
        "another fleet's server"
    );
    assert_eq!(
        restarted.desired("a1"),
        None,
        "what to serve comes with the pass"
    );
}

#[test]
fn a_restarted_service_serves_each_agent_the_runtime_its_label_shows() {
    let (old, new) = (fleet_at("1.4.0"), fleet_at("2.0.0"));
    let (c1, c2) = (credential::mint(), credential::mint());
    // a1 is still on 1.4.0 (a halted rollout never reached it, or rolled it back); a2 is done.
    let servers = [server_of(&old, "a1", 1, &c1), server_of(&new, "a2", 2, &c2)];
    let restarted = Service::new(config());
    restarted.sync(&new, &servers);
    let version = |agent: &str| restarted.desired(agent).map(|d| d.version);
    assert_eq!(version("a2").as_deref(), Some("2.0.0"));
    assert_eq!(version("a1"), None);
    let mut lagging = restarted.lagging(&new, &servers);
    assert_eq!(lagging, BTreeSet::from(["a1".to_owned()]));
    restarted.serve_as_labelled(&new, &servers, &mut lagging);
    assert_eq!(
        lagging.len(),
        1,
        "the current spec does not explain a1's label"
    );
    restarted.serve_as_labelled(&old, &servers, &mut lagging);
    assert!(lagging.is_empty());
    assert_eq!(version("a1").as_deref(), Some("1.4.0"));
    assert_eq!(
        restarted.desired("a1").map(|d| d.env["API_TOKEN"].clone()),
        Some("tok-a1".to_owned()),
        "its own env, from the fleet commit it ran"
    );
    // A label looked for once is not looked for again on every pass.
    let blind = Service::new(config());
    assert_eq!(blind.lagging(&new, &servers).len(), 2);
    assert!(blind.lagging(&new, &servers).is_empty());
}

async fn post_report(
    url: &str,
    bearer: &str,
    body: &serde_json::Value,
) -> (u16, String, Option<String>) {
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, response.text().await.expect("body"), retry)
}

#[tokio::test]
async fn a_hostile_report_is_refused_or_kept_as_one_bounded_line() {
    let (service, base, c1, _) = served().await;
    let url = format!("{base}/v1/agents/a1/report");
    let huge =
        serde_json::json!({"version": "1.0-a1", "healthy": false, "error": "x".repeat(2 << 20)});
    let (status, body, _) = post_report(&url, c1.expose(), &huge).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("at most 8192 bytes"), "{body}");

    let long =
        serde_json::json!({"version": "1.0-a1", "healthy": false, "error": "y".repeat(5000)});
    let (status, body, _) = post_report(&url, c1.expose(), &long).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("report field `error`"), "{body}");

    let bad_version = serde_json::json!({"version": "1.0\nTether-Run: x", "healthy": true});
    let (status, body, _) = post_report(&url, c1.expose(), &bad_version).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("report field `version`") && !body.contains('\n'),
        "{body}"
    );
    assert_eq!(service.reported("a1"), None, "nothing refused is kept");

    let hostile = format!(
        "boom\n\nTether-Source-Commit: {}\n\napply 3f2a1c9: +0 created\ndelete a1 done [server 1]\u{202e}\u{1b}[2J{}",
        "0".repeat(40),
        "z".repeat(1000)
    );
    let report = serde_json::json!({"version": "1.0-a1", "healthy": false, "error": hostile});
    let (status, body, _) = post_report(&url, c1.expose(), &report).await;
    assert_eq!(status, 204, "{body}");
    let kept = service
        .reported("a1")
        .and_then(|r| r.report.error)
        .expect("the error is kept");
    assert_eq!(kept.lines().count(), 1, "{kept}");
    assert!(
        kept.chars().count() <= super::wire::KEPT_ERROR_CHARS + 1,
        "{kept}"
    );
    assert!(!kept.contains(['\u{202e}', '\u{1b}']), "{kept}");
    assert!(kept.starts_with("boom Tether-Source-Commit: 000"), "{kept}");
    assert!(kept.ends_with('…'), "{kept}");

    let mut throttled = None;
    for _ in 0..12 {
        let (status, _, retry) = post_report(&url, c1.expose(), &report).await;
        if status == 429 {
            throttled = retry;
            break;
        }
    }
    let retry: u64 = throttled
        .expect("a VM reporting many times a second is throttled")
        .parse()
        .expect("Retry-After is whole seconds");
    assert!((1..=2).contains(&retry), "{retry}");
}
