//! The client against the Hetzner emulator over real HTTP: duplicate-free creation under
//! injected faults, and the request budget of batched action polling.

use super::*;
use crate::cloud::{ActionId, Compute, Created, NewServer};
use crate::sandbox::stack::{Stack, StackOptions};
use futures_util::StreamExt;
use std::collections::BTreeSet;
use tether_emulators::emulator::FaultRule;

fn new_server(i: usize) -> NewServer {
    NewServer {
        name: format!("agent-{i:03}"),
        server_type: "cpx21".into(),
        image: "ubuntu-24.04".into(),
        location: "fsn1".into(),
        ssh_keys: vec!["ops-2026".into()],
        user_data: None,
        labels: [("tether/agent".to_owned(), format!("agent-{i:03}"))].into(),
        start_after_create: true,
        project: None,
        public_net: Default::default(),
    }
}

#[tokio::test]
async fn under_twenty_percent_faults_fifty_servers_are_created_and_deleted_exactly_once() {
    let stack = Stack::start(StackOptions::default()).await.expect("stack");
    let client = stack
        .hetzner_client(Duration::from_millis(20))
        .expect("client");
    stack.hetzner.faults().set(vec![FaultRule {
        error_rate: 0.08,
        error_statuses: vec![500, 502, 503, 504],
        drop_rate: 0.04,
        lost_response_rate: 0.08,
        ..FaultRule::everywhere()
    }]);
    let created: Vec<Created> = futures_util::stream::iter(0..50)
        .map(|i| {
            let client = client.clone();
            async move {
                let c = client
                    .create_server(&new_server(i))
                    .await
                    .expect("create succeeds despite faults");
                let ids: Vec<ActionId> = std::iter::once(c.action.id)
                    .chain(c.next_actions.iter().map(|a| a.id))
                    .collect();
                client.wait_for_actions(&ids).await.expect("actions finish");
                c
            }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    let adopted = created.iter().filter(|c| c.adopted).count();
    let servers = stack.hetzner.servers();
    let names: BTreeSet<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        (servers.len(), names.len()),
        (50, 50),
        "exactly one server per name"
    );
    let ids: BTreeSet<u64> = servers.iter().map(|s| s.id).collect();
    let span = ids.last().expect("ids") - ids.first().expect("ids") + 1;
    assert_eq!(
        span, 50,
        "server ids are consecutive: no server was created and lost in between"
    );
    let lost = stack
        .hetzner
        .requests()
        .snapshot()
        .iter()
        .filter(|(k, _)| k.outcome == "lost")
        .map(|(_, n)| n)
        .sum::<u64>();
    assert!(lost > 0, "the run must have exercised lost responses");
    assert!(
        adopted > 0,
        "some creates must have been adopted after a lost response ({lost} lost)"
    );

    futures_util::stream::iter(created)
        .map(|c| {
            let client = client.clone();
            async move {
                if let Some(a) = client
                    .delete_server(c.server.id)
                    .await
                    .expect("delete despite faults")
                {
                    let _ = client.wait_for_actions(&[a.id]).await;
                }
            }
        })
        .buffer_unordered(10)
        .collect::<Vec<()>>()
        .await;
    stack.hetzner.faults().set(Vec::new());
    let mut left = stack.hetzner.servers().len();
    for _ in 0..100 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = stack.hetzner.servers().len();
    }
    assert_eq!(left, 0, "every server was deleted");
    stack.shutdown().await;
}

/// Creates 100 servers concurrently and returns the API requests it took, per server.
async fn requests_per_server_for_100_creates() -> f64 {
    let stack = Stack::start(StackOptions::default()).await.expect("stack");
    let client = stack
        .hetzner_client(Duration::from_millis(50))
        .expect("client");
    futures_util::stream::iter(0..100)
        .map(|i| {
            let client = client.clone();
            async move {
                let c = client.create_server(&new_server(i)).await.expect("create");
                let ids: Vec<ActionId> = std::iter::once(c.action.id)
                    .chain(c.next_actions.iter().map(|a| a.id))
                    .collect();
                client.wait_for_actions(&ids).await.expect("wait");
            }
        })
        .buffer_unordered(100)
        .collect::<Vec<()>>()
        .await;
    let total = stack.hetzner.requests().total();
    assert_eq!(stack.hetzner.servers().len(), 100);
    stack.shutdown().await;
    total as f64 / 100.0
}

#[tokio::test]
async fn creating_100_servers_with_batched_polling_costs_at_most_1_2_requests_each() {
    let per_server = requests_per_server_for_100_creates().await;
    assert!(per_server <= 1.2, "{per_server} requests per server");
}

#[tokio::test]
async fn an_action_stuck_in_running_fails_at_its_deadline_naming_it() {
    let stack = Stack::start(StackOptions {
        latencies: tether_emulators::hetzner::Latencies {
            create: Duration::from_secs(3600),
            ..tether_emulators::hetzner::Latencies::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("stack");
    let mut config = Config::new(stack.hetzner.url(), stack.hetzner_token());
    config.poll_interval = Duration::from_millis(10);
    config.action_timeout = Duration::from_millis(300);
    let client = Client::new(config).expect("client");
    let stuck = client
        .create_server(&new_server(1))
        .await
        .expect("create accepted");

    let failure = client
        .wait_for_actions(&[stuck.action.id])
        .await
        .expect_err("the create never finishes");
    assert!(
        matches!(&failure, Error::ActionTimedOut { id, command, .. }
            if *id == stuck.action.id.0 && command == "create_server"),
        "{failure:?}"
    );
    assert!(
        failure.to_string().contains(&format!(
            "action {} (create_server) still running",
            stuck.action.id
        )),
        "{failure}"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_deprecated_server_type_reads_as_deprecated_and_cannot_be_ordered() {
    use tether_emulators::hetzner::{Catalog, HetznerEmulator, catalog::Deprecation};
    let mut catalog = Catalog::default();
    for t in catalog
        .server_types
        .iter_mut()
        .filter(|t| t.name == "cpx21")
    {
        t.deprecation = Some(Deprecation {
            announced: "2026-06-01T00:00:00Z".to_owned(),
            unavailable_after: "2026-09-01T00:00:00Z".to_owned(),
        });
    }
    let emulator = HetznerEmulator::start(tether_emulators::hetzner::Config {
        catalog,
        ..tether_emulators::hetzner::Config::default()
    })
    .await
    .expect("emulator");
    let client = Client::new(Config::new(
        emulator.url(),
        Secret::new(emulator.token().expose().to_owned()),
    ))
    .expect("client");
    let types = client.server_types().await.expect("server types");
    let cpx21 = types
        .iter()
        .find(|t| t.name == "cpx21")
        .expect("still listed");
    assert_eq!(
        cpx21.deprecated_after.as_deref(),
        Some("2026-09-01T00:00:00Z")
    );
    assert!(cpx21.locations.is_empty(), "{:?}", cpx21.locations);
    let cpx31 = types.iter().find(|t| t.name == "cpx31").expect("cpx31");
    assert!(cpx31.deprecated_after.is_none() && cpx31.locations.iter().any(|l| l == "fsn1"));
    let refused = client.create_server(&new_server(1)).await;
    assert!(
        matches!(&refused, Err(Error::Api(e)) if e.status == 400 && e.message.contains("server_type")),
        "{refused:?}"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_listing_of_three_pages_costs_one_request_per_page_and_keeps_the_api_order() {
    let stack = Stack::start(StackOptions::default()).await.expect("stack");
    let client = stack
        .hetzner_client(Duration::from_millis(20))
        .expect("client");
    futures_util::stream::iter(0..130)
        .map(|i| {
            let client = client.clone();
            async move { client.create_server(&new_server(i)).await.expect("create") }
        })
        .buffer_unordered(10)
        .collect::<Vec<_>>()
        .await;
    let lists = || {
        stack
            .hetzner
            .requests()
            .snapshot()
            .into_iter()
            .filter(|(k, _)| k.method == "GET" && k.route == "/v1/servers")
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let before = lists();
    let listed = client.list_servers(None).await.expect("list");
    assert_eq!(lists() - before, 3, "pages of 50: 50 + 50 + 30");
    assert_eq!(listed.len(), 130);
    let ids: Vec<u64> = listed.iter().map(|s| s.id.0).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "the API's order (by id), page after page");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_server_ordered_without_ipv4_is_created_with_ipv6_only() {
    let stack = Stack::start(StackOptions::default()).await.expect("stack");
    let client = stack
        .hetzner_client(Duration::from_millis(20))
        .expect("client");
    let mut new = new_server(1);
    new.public_net = tether_schema::network::PublicNet {
        ipv4: false,
        ipv6: true,
    };
    let created = client.create_server(&new).await.expect("create");
    assert_eq!(created.server.ipv4, None);
    assert!(created.server.ipv6.is_some(), "{:?}", created.server);
    let plain = client.create_server(&new_server(2)).await.expect("create");
    assert!(plain.server.ipv4.is_some(), "the default keeps IPv4");
    let listed = client.list_servers(None).await.expect("list");
    let without: Vec<&str> = listed
        .iter()
        .filter(|s| s.ipv4.is_none())
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(without, ["agent-001"]);
}
