//! The dashboard over real HTTP on 127.0.0.1, reading a real git repository: pages, the JSON
//! poll, the read token, the security headers, and hostile values.

use super::*;
use crate::audit::status::{AgentStatus, DeviceStatusDoc, Phase, ServerStatusDoc, to_yaml};
use crate::cloud::ServerStatus;
use crate::cloud::retry::ManualClock;
use crate::daemon::http::{HttpServer, HttpState, serve};
use crate::daemon::metrics::Metrics;
use crate::process::shutdown;
use git2::{Repository, Signature, Time};
use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

const HOSTILE: &str = "<script>alert('x')</script>";
const TOKEN: &str = "read-token-9f3c";

fn agent(name: &str, phase: Phase, id: u64, error: Option<&str>) -> String {
    to_yaml(&AgentStatus {
        agent: name.to_owned(),
        phase,
        spec_revision: None,
        server: Some(ServerStatusDoc {
            id,
            status: ServerStatus::Running,
            server_type: "cpx21".to_owned(),
            location: "fsn1".to_owned(),
            public_ips: vec!["203.0.113.9".to_owned()],
        }),
        device: Some(DeviceStatusDoc {
            id: format!("n{id}"),
            tailnet_ips: vec!["100.64.0.9".to_owned()],
            online: phase == Phase::Ready,
        }),
        quarantine: None,
        last_transition_time: "2026-11-29T12:00:00Z".to_owned(),
        last_error: error.map(str::to_owned),
        last_error_kind: None,
    })
}

/// Commits `files` under `folder/` on `refname` at `time` with `message`.
fn commit(repo: &Repository, refname: &str, time: i64, folder: &str, files: &[(&str, String)]) {
    let mut inner = repo.treebuilder(None).expect("treebuilder");
    for (name, text) in files {
        let blob = repo.blob(text.as_bytes()).expect("blob");
        inner.insert(name, blob, 0o100_644).expect("insert");
    }
    let inner = inner.write().expect("write");
    let mut root = repo.treebuilder(None).expect("treebuilder");
    root.insert(folder, inner, 0o040_000).expect("insert");
    let tree = repo.find_tree(root.write().expect("write")).expect("tree");
    let sig = Signature::new("tether", "tether@aura-prod", &Time::new(time, 0)).expect("sig");
    let parent = repo
        .find_reference(refname)
        .ok()
        .and_then(|r| r.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let message = format!(
        "apply 0000000: +1 created, -0 deleted\n\ncreate acme-prod done server 4242\n\nTether-Run: t{time}\n"
    );
    repo.commit(Some(refname), &sig, &sig, &message, &tree, &parents)
        .expect("commit");
}

/// A repository with a fleet branch and a status branch: `acme-prod` went from Provisioning to
/// Ready; `evil` failed with a hostile error.
fn fleet_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init(dir.path()).expect("init");
    let spec = "kind: Agent\n".to_owned();
    commit(
        &repo,
        "refs/heads/main",
        1_000,
        "agents",
        &[("acme-prod.yaml", spec)],
    );
    let fleet = (
        "fleet.yaml",
        "fleet: aura-prod\nlastReconcile: \"2026-11-29T12:00:00Z\"\nsuspended: false\n".to_owned(),
    );
    let status = "refs/heads/tether/status";
    commit(
        &repo,
        status,
        1_100,
        "status",
        &[
            fleet.clone(),
            (
                "acme-prod.yaml",
                agent("acme-prod", Phase::Provisioning, 4242, None),
            ),
        ],
    );
    commit(
        &repo,
        status,
        1_200,
        "status",
        &[
            fleet,
            (
                "acme-prod.yaml",
                agent("acme-prod", Phase::Ready, 4242, None),
            ),
            ("evil.yaml", agent("evil", Phase::Failed, 7, Some(HOSTILE))),
        ],
    );
    dir
}

async fn start(
    repo: &std::path::Path,
    token: Option<&str>,
) -> (HttpServer, shutdown::ShutdownTrigger) {
    let readiness = Readiness::default();
    readiness.set_ready();
    let sources = Sources {
        repo: repo.to_owned(),
        status_ref: "refs/heads/tether/status".to_owned(),
        fleet_ref: "refs/heads/main".to_owned(),
    };
    let dashboard = Dashboard::new(sources, readiness.clone())
        .with_lease(LeaseSource {
            store: LockStore::Local(repo.to_owned()),
            fleet: "aura-prod".to_owned(),
        })
        .with_read_token(token.map(Secret::from));
    let state = HttpState::new(
        Arc::new(Metrics::new(UNIX_EPOCH)),
        readiness,
        ManualClock::new(UNIX_EPOCH),
    )
    .with_dashboard(dashboard);
    let (stop, signal) = shutdown::channel();
    let server = serve(SocketAddr::from(([127, 0, 0, 1], 0)), state, signal)
        .await
        .expect("serve");
    (server, stop)
}

async fn get(url: String, bearer: Option<&str>) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

#[tokio::test]
async fn the_fleet_page_the_agent_page_and_the_poll_answer_with_a_strict_policy() {
    let repo = fleet_repo();
    let (server, _stop) = start(repo.path(), None).await;
    let base = server.url();

    let (status, headers, html) = get(format!("{base}/"), None).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        headers[header::CONTENT_SECURITY_POLICY],
        CONTENT_SECURITY_POLICY
    );
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    assert!(
        html.contains("<tr class=\"phase-ready\" data-agent=\"acme-prod\">"),
        "{html}"
    );
    assert!(html.contains("<td>4242</td>"), "{html}");
    assert!(
        html.contains("<tr class=\"phase-failed\" data-agent=\"evil\">"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains(HOSTILE), "{html}");
    assert!(html.contains("<dd id=\"readiness\"><span class=\"good\">ready</span></dd>"));
    assert!(
        html.contains("<dd id=\"lease\">free (never taken)</dd>"),
        "{html}"
    );
    assert!(
        html.contains("apply 0000000: +1 created, -0 deleted"),
        "{html}"
    );

    let (status, _, json) = get(format!("{base}/api/status"), None).await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(json["fleet"], "aura-prod");
    assert_eq!(json["agents"][0]["agent"], "acme-prod");
    assert_eq!(json["agents"][0]["serverId"], 4242);
    assert_eq!(json["agents"][0]["phase"], "Ready");
    assert_eq!(
        json["agents"][1]["lastError"], HOSTILE,
        "JSON keeps the text as is"
    );

    let (status, _, page) = get(format!("{base}/agents/acme-prod"), None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<dd id=\"device-id\">n4242</dd>"), "{page}");
    let timeline = &page[page.find("id=\"timeline\"").expect("timeline")..];
    let spec = timeline.find("spec added").expect("the spec change");
    let provisioning = timeline
        .find("phase Provisioning (server 4242)")
        .expect("provisioning");
    let ready = timeline.find("phase Ready (server 4242)").expect("ready");
    assert!(spec < provisioning && provisioning < ready, "{timeline}");

    let (status, _, evil) = get(format!("{base}/agents/evil"), None).await;
    assert_eq!(status, 200);
    assert!(!evil.contains(HOSTILE), "{evil}");
    let (status, _, missing) = get(format!("{base}/agents/%3Cb%3Enope"), None).await;
    assert_eq!(status, 404);
    assert!(missing.contains("no agent `&lt;b&gt;nope`"), "{missing}");

    let (status, headers, script) = get(format!("{base}/dashboard.js"), None).await;
    assert_eq!(status, 200);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/javascript")
    );
    assert!(script.contains("/api/status"));
    assert!(!script.contains("innerHTML"), "the script sets text only");
}

#[tokio::test]
async fn with_a_read_token_requests_without_it_get_401_and_the_token_is_never_shown() {
    let repo = fleet_repo();
    let (server, _stop) = start(repo.path(), Some(TOKEN)).await;
    let base = server.url();
    for path in ["/", "/agents/acme-prod", "/api/status"] {
        let (status, headers, body) = get(format!("{base}{path}"), None).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert!(body.contains("read token"), "{body}");
        assert!(!body.contains("acme-prod"), "{path}: {body}");
        let (status, _, _) = get(format!("{base}{path}"), Some("read-token-9f3d")).await;
        assert_eq!(status, 401, "{path}: a wrong token");
        let (status, _, body) = get(format!("{base}{path}"), Some(TOKEN)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.contains(TOKEN), "{path}: {body}");
        let (status, headers, body) = get(format!("{base}{path}?token={TOKEN}"), None).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.contains(TOKEN), "{path}: {body}");
        assert_eq!(
            headers[header::SET_COOKIE],
            format!("tether_dashboard={TOKEN}; Path=/; HttpOnly; SameSite=Strict").as_str()
        );
        let with_cookie = |cookie: &str| {
            reqwest::Client::new()
                .get(format!("{base}{path}"))
                .header(header::COOKIE, cookie)
                .send()
        };
        let ok = with_cookie(&format!("theme=dark; tether_dashboard={TOKEN}"))
            .await
            .expect("request");
        assert_eq!(ok.status(), 200, "{path}: the cookie a ?token= set");
        let wrong = with_cookie("tether_dashboard=nope").await.expect("request");
        assert_eq!(wrong.status(), 401, "{path}: a wrong cookie");
    }
    for asset in ["/dashboard.js", "/dashboard.css"] {
        let (status, _, _) = get(format!("{base}{asset}"), None).await;
        assert_eq!(status, 200, "{asset} carries no data");
    }
}

#[tokio::test]
async fn before_the_first_pass_the_page_says_nothing_is_recorded_yet() {
    let dir = tempfile::tempdir().expect("tempdir");
    Repository::init(dir.path()).expect("init");
    let (server, _stop) = start(dir.path(), None).await;
    let (status, _, html) = get(format!("{}/", server.url()), None).await;
    assert_eq!(status, 503);
    assert!(html.contains("no status recorded yet"), "{html}");
}
