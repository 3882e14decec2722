//! Client tests against the ordered-expectation server: each test lists the exact requests the
//! client must make, in order; a missing or unexpected call fails the test.

use super::*;
use crate::cloud::expect::{Expect, Expectations, expect};
use crate::cloud::retry::ManualClock;
use crate::cloud::{ActionId, ActionStatus, Compute, NewServer, ServerId};
use http::Method;
use std::time::SystemTime;

const TOKEN: &str = "hcloud-test-token-0123456789";

fn server_json(id: u64, name: &str, labels: &str) -> String {
    format!(
        r#"{{"id":{id},"name":"{name}","status":"running","created":"2026-11-23T10:00:00Z",
        "public_net":{{"ipv4":{{"ip":"203.0.113.{id}"}},"ipv6":{{"ip":"2001:db8:{id}::/64"}}}},
        "server_type":{{"name":"cpx21"}},"location":{{"name":"fsn1"}},"image":{{"name":"ubuntu-24.04"}},
        "labels":{labels},"protection":{{"delete":false,"rebuild":false}}}}"#
    )
}

fn action_json(id: u64, command: &str, status: &str) -> String {
    format!(
        r#"{{"id":{id},"command":"{command}","status":"{status}","progress":0,"started":"2026-11-23T10:00:00Z","finished":null,"resources":[],"error":null}}"#
    )
}

fn meta(next: Option<u32>) -> String {
    let next = next.map_or("null".to_owned(), |n| n.to_string());
    format!(
        r#"{{"pagination":{{"page":1,"per_page":50,"previous_page":null,"next_page":{next},"last_page":null,"total_entries":null}}}}"#
    )
}

fn api_error(code: &str, message: &str) -> String {
    format!(r#"{{"error":{{"code":"{code}","message":"{message}","details":{{}}}}}}"#)
}

async fn client(calls: Vec<Expect>) -> (Client<ManualClock>, Expectations, ManualClock) {
    let server = Expectations::start(calls).await;
    let clock =
        ManualClock::new(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000));
    let mut config = Config::new(server.url(), Secret::from(TOKEN));
    config.poll_interval = std::time::Duration::from_millis(10);
    (
        Client::with_clock(config, clock.clone()).expect("client"),
        server,
        clock,
    )
}

fn new_server() -> NewServer {
    NewServer {
        name: "acme-prod".into(),
        server_type: "cpx21".into(),
        image: "ubuntu-24.04".into(),
        location: "fsn1".into(),
        ssh_keys: vec!["ops-2026".into()],
        user_data: Some(Secret::from("#cloud-config\n# tskey-auth-SECRET\n")),
        labels: [("tether/agent".to_owned(), "acme-prod".to_owned())].into(),
        start_after_create: true,
        project: None,
        public_net: Default::default(),
    }
}

const LABELS: &str = r#"{"tether/agent":"acme-prod"}"#;

#[tokio::test]
async fn list_servers_reads_every_page_with_the_selector() {
    let (c, server, _) = client(vec![
        expect(
            Method::GET,
            "/servers?label_selector=tether%2Ffleet%3Daura&page=1&per_page=50",
            200,
            &format!(
                r#"{{"servers":[{}],"meta":{}}}"#,
                server_json(1, "a", "{}"),
                meta(Some(2))
            ),
        ),
        expect(
            Method::GET,
            "/servers?label_selector=tether%2Ffleet%3Daura&page=2&per_page=50",
            200,
            &format!(
                r#"{{"servers":[{}],"meta":{}}}"#,
                server_json(2, "b", "{}"),
                meta(None)
            ),
        ),
    ])
    .await;
    let servers = c
        .list_servers(Some("tether/fleet=aura"))
        .await
        .expect("list");
    assert_eq!(
        servers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(servers[0].ipv4.as_deref(), Some("203.0.113.1"));
    let auth = server.headers()[0]
        .get("authorization")
        .expect("auth header")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(auth, format!("Bearer {TOKEN}"));
    server.finish();
}

#[tokio::test]
async fn create_sends_the_spec_and_returns_the_actions() {
    let created = format!(
        r#"{{"server":{},"action":{},"next_actions":[{}],"root_password":null}}"#,
        server_json(7, "acme-prod", LABELS),
        action_json(70, "create_server", "running"),
        action_json(71, "start_server", "running")
    );
    let (c, server, _) = client(vec![
        expect(Method::POST, "/servers", 201, &created)
            .body_contains(r#""name":"acme-prod""#)
            .body_contains(r##""user_data":"#cloud-config"##)
            .body_contains(r#""ssh_keys":["ops-2026"]"#),
    ])
    .await;
    let c = c.create_server(&new_server()).await.expect("create");
    assert_eq!(
        (c.server.id, c.action.id, c.next_actions[0].id, c.adopted),
        (ServerId(7), ActionId(70), ActionId(71), false)
    );
    server.finish();
}

#[tokio::test]
async fn an_unclear_create_looks_up_the_name_and_adopts_instead_of_creating_again() {
    let (c, server, _) = client(vec![
        expect(
            Method::POST,
            "/servers",
            502,
            &api_error("bad_gateway", "upstream failed"),
        ),
        expect(
            Method::GET,
            "/servers?name=acme-prod",
            200,
            &format!(
                r#"{{"servers":[{}],"meta":{}}}"#,
                server_json(7, "acme-prod", LABELS),
                meta(None)
            ),
        ),
        expect(
            Method::GET,
            "/servers/7/actions?sort=id%3Aasc&page=1&per_page=50",
            200,
            &format!(
                r#"{{"actions":[{},{}],"meta":{}}}"#,
                action_json(70, "create_server", "success"),
                action_json(71, "start_server", "running"),
                meta(None)
            ),
        ),
    ])
    .await;
    let created = c.create_server(&new_server()).await.expect("adopted");
    assert!(created.adopted);
    assert_eq!(
        (created.server.id, created.action.id),
        (ServerId(7), ActionId(70))
    );
    assert_eq!(created.next_actions[0].command, "start_server");
    server.finish();
}

#[tokio::test]
async fn an_unclear_create_with_nothing_found_retries_and_adopts_a_late_landing() {
    let (c, server, clock) = client(vec![
        expect(
            Method::POST,
            "/servers",
            504,
            &api_error("timeout", "timed out"),
        ),
        expect(
            Method::GET,
            "/servers?name=acme-prod",
            200,
            &format!(r#"{{"servers":[],"meta":{}}}"#, meta(None)),
        ),
        expect(
            Method::POST,
            "/servers",
            409,
            &api_error("uniqueness_error", "server name is already used"),
        ),
        expect(
            Method::GET,
            "/servers?name=acme-prod",
            200,
            &format!(
                r#"{{"servers":[{}],"meta":{}}}"#,
                server_json(9, "acme-prod", LABELS),
                meta(None)
            ),
        ),
        expect(
            Method::GET,
            "/servers/9/actions?sort=id%3Aasc&page=1&per_page=50",
            200,
            &format!(
                r#"{{"actions":[{}],"meta":{}}}"#,
                action_json(90, "create_server", "success"),
                meta(None)
            ),
        ),
    ])
    .await;
    let created = c
        .create_server(&new_server())
        .await
        .expect("adopted late landing");
    assert!(created.adopted);
    assert_eq!(created.server.id, ServerId(9));
    assert_eq!(
        clock.sleeps().len(),
        1,
        "one backoff before the second POST"
    );
    server.finish();
}

#[tokio::test]
async fn a_name_held_by_a_server_with_other_labels_is_never_adopted() {
    let (c, server, _) = client(vec![
        expect(
            Method::POST,
            "/servers",
            500,
            &api_error("server_error", "oops"),
        ),
        expect(
            Method::GET,
            "/servers?name=acme-prod",
            200,
            &format!(
                r#"{{"servers":[{}],"meta":{}}}"#,
                server_json(3, "acme-prod", r#"{"owner":"someone-else"}"#),
                meta(None)
            ),
        ),
    ])
    .await;
    let err = c.create_server(&new_server()).await.expect_err("not ours");
    assert!(matches!(err, Error::NameTaken { id: 3, .. }), "{err}");
    server.finish();
}

#[tokio::test]
async fn terminal_errors_are_not_retried_and_carry_code_and_correlation_id() {
    let (c, server, _) = client(vec![
        expect(
            Method::POST,
            "/servers",
            400,
            &api_error("invalid_input", "invalid input in field 'name'"),
        )
        .header("X-Correlation-Id", "abc123"),
    ])
    .await;
    let err = c.create_server(&new_server()).await.expect_err("invalid");
    assert_eq!(err.code(), Some("invalid_input"));
    let text = err.to_string();
    assert!(
        text.contains("correlation id abc123") && text.contains("create server acme-prod"),
        "{text}"
    );
    server.finish();
}

#[tokio::test]
async fn rate_limited_requests_wait_and_retry() {
    let (c, server, clock) = client(vec![
        expect(
            Method::GET,
            "/servers/5",
            429,
            &api_error(
                "rate_limit_exceeded",
                "Limit of '3600' requests per hour reached.",
            ),
        )
        .header("RateLimit-Limit", "3600")
        .header("RateLimit-Remaining", "0")
        .header("RateLimit-Reset", "1800003600"),
        expect(
            Method::GET,
            "/servers/5",
            200,
            &format!(r#"{{"server":{}}}"#, server_json(5, "x", "{}")),
        )
        .header("RateLimit-Limit", "3600")
        .header("RateLimit-Remaining", "3599"),
    ])
    .await;
    let s = c
        .get_server(ServerId(5))
        .await
        .expect("eventually ok")
        .expect("exists");
    assert_eq!(s.id, ServerId(5));
    assert!(!clock.sleeps().is_empty());
    assert_eq!(c.rate_limit_remaining(), 3599);
    server.finish();
}

#[tokio::test]
async fn deleting_a_missing_server_is_success_and_transient_errors_retry() {
    let (c, server, _) = client(vec![
        expect(
            Method::DELETE,
            "/servers/5",
            503,
            &api_error("unavailable", "try later"),
        ),
        expect(
            Method::DELETE,
            "/servers/5",
            404,
            &api_error("not_found", "server not found"),
        ),
        expect(
            Method::DELETE,
            "/servers/6",
            200,
            &format!(
                r#"{{"action":{}}}"#,
                action_json(60, "delete_server", "running")
            ),
        ),
    ])
    .await;
    assert_eq!(c.delete_server(ServerId(5)).await.expect("gone"), None);
    assert_eq!(
        c.delete_server(ServerId(6))
            .await
            .expect("deleting")
            .map(|a| a.id),
        Some(ActionId(60))
    );
    server.finish();
}

#[tokio::test]
async fn concurrent_waits_share_one_batched_poll() {
    let (c, server, _) = client(vec![
        expect(
            Method::GET,
            "/actions?id=1&id=2&id=3&per_page=50",
            200,
            &format!(
                r#"{{"actions":[{},{},{}],"meta":{}}}"#,
                action_json(1, "create_server", "success"),
                action_json(2, "start_server", "running"),
                action_json(3, "create_server", "success"),
                meta(None)
            ),
        ),
        expect(
            Method::GET,
            "/actions?id=2&per_page=50",
            200,
            &format!(
                r#"{{"actions":[{}],"meta":{}}}"#,
                action_json(2, "start_server", "success"),
                meta(None)
            ),
        ),
    ])
    .await;
    let (a, b) = tokio::join!(
        c.wait_for_actions(&[ActionId(1), ActionId(2)]),
        c.wait_for_actions(&[ActionId(3)])
    );
    let a = a.expect("first waiter");
    assert!(a.iter().all(|x| x.status == ActionStatus::Success));
    assert_eq!(b.expect("second waiter")[0].id, ActionId(3));
    server.finish();
}

#[tokio::test]
async fn power_and_type_changes_use_the_action_endpoints() {
    let (c, server, _) = client(vec![
        expect(
            Method::POST,
            "/servers/4/actions/poweroff",
            201,
            &format!(
                r#"{{"action":{}}}"#,
                action_json(41, "stop_server", "running")
            ),
        ),
        expect(
            Method::POST,
            "/servers/4/actions/change_type",
            201,
            &format!(
                r#"{{"action":{}}}"#,
                action_json(42, "change_server_type", "running")
            ),
        )
        .body_contains(r#""server_type":"cpx31""#)
        .body_contains(r#""upgrade_disk":false"#),
        expect(
            Method::POST,
            "/servers/4/actions/poweron",
            201,
            &format!(
                r#"{{"action":{}}}"#,
                action_json(43, "start_server", "running")
            ),
        ),
        expect(
            Method::PUT,
            "/servers/4",
            200,
            &format!(
                r#"{{"server":{}}}"#,
                server_json(4, "x", r#"{"plan":"pro"}"#)
            ),
        )
        .body_contains(r#""labels":{"plan":"pro"}"#),
    ])
    .await;
    assert_eq!(
        c.power_off(ServerId(4)).await.expect("off").id,
        ActionId(41)
    );
    assert_eq!(
        c.change_type(ServerId(4), "cpx31", false)
            .await
            .expect("type")
            .id,
        ActionId(42)
    );
    assert_eq!(c.power_on(ServerId(4)).await.expect("on").id, ActionId(43));
    let labels = [("plan".to_owned(), "pro".to_owned())].into();
    assert_eq!(
        c.update_server(ServerId(4), None, &labels)
            .await
            .expect("labels")
            .labels,
        labels
    );
    server.finish();
}

#[test]
fn the_token_and_user_data_never_appear_in_debug_output() {
    let config = Config::new("http://127.0.0.1:1/v1", Secret::from(TOKEN));
    let client = Client::new(config.clone()).expect("client");
    let printed = format!("{config:?} {client:?} {:?}", new_server());
    assert!(!printed.contains(TOKEN), "{printed}");
    assert!(!printed.contains("tskey-auth-SECRET"), "{printed}");
}

#[test]
fn a_malformed_endpoint_is_refused_naming_hcloud_endpoint() {
    for bad in ["htp://api.example/v1", "api.hetzner.cloud/v1", "http://"] {
        let err = checked_endpoint(bad).expect_err(bad).to_string();
        assert!(
            err.contains("HCLOUD_ENDPOINT") && err.contains(bad),
            "{err}"
        );
    }
    assert_eq!(
        checked_endpoint("http://127.0.0.1:4000/v1").expect("valid"),
        "http://127.0.0.1:4000/v1"
    );
}
