use super::*;
use crate::sandbox::stack::{Stack, StackOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A fence switched by the test.
#[derive(Debug, Clone, Default)]
struct Switch(Arc<AtomicBool>);

impl Fence for Switch {
    fn check(&self) -> Result<(), String> {
        if self.0.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("the lease on fleet `f` was lost (now held by host-b)".into())
        }
    }

    fn holder(&self) -> &str {
        "host-a"
    }
}

fn server(name: &str) -> NewServer {
    NewServer {
        name: name.into(),
        server_type: "cpx21".into(),
        image: "ubuntu-24.04".into(),
        location: "fsn1".into(),
        ssh_keys: vec![],
        user_data: None,
        labels: BTreeMap::new(),
        start_after_create: true,
        project: None,
        public_net: Default::default(),
    }
}

#[tokio::test]
async fn a_lost_lease_refuses_every_mutation_and_still_lets_reads_through() {
    let stack = Stack::start(StackOptions::default()).await.expect("stack");
    let switch = Switch::default();
    let compute = Fenced::new(
        stack
            .hetzner_client(Duration::from_millis(10))
            .expect("hetzner"),
        switch.clone(),
    );
    let tailnet = Fenced::new(stack.tailscale_client().expect("tailscale"), switch.clone());

    switch.0.store(true, Ordering::SeqCst);
    let created = compute
        .create_server(&server("held"))
        .await
        .expect("allowed while held");

    switch.0.store(false, Ordering::SeqCst);
    let posts = stack.hetzner.requests().count("POST", "/v1/servers");
    let refused = compute
        .create_server(&server("late"))
        .await
        .expect_err("refused once lost");
    assert!(
        matches!(&refused, hetzner::Error::Fenced { operation, .. } if operation == "create server late"),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("now held by host-b"),
        "{refused}"
    );
    let deleted = compute.delete_server(created.server.id).await;
    assert!(matches!(deleted, Err(hetzner::Error::Fenced { .. })));
    let key = tailnet
        .create_auth_key(&NewAuthKey {
            description: "tether late".into(),
            tags: vec![],
            expiry: Duration::from_secs(60),
        })
        .await;
    assert!(
        matches!(key, Err(tailscale::Error::Fenced { .. })),
        "{key:?}"
    );
    assert_eq!(
        stack.hetzner.requests().count("POST", "/v1/servers"),
        posts,
        "nothing was sent"
    );
    assert_eq!(stack.hetzner.requests().count("DELETE", "/v1/servers"), 0);

    let servers = compute.list_servers(None).await.expect("reads pass");
    assert_eq!(
        servers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["held"]
    );
    tailnet
        .list_devices(&DeviceQuery::default())
        .await
        .expect("reads pass");
    stack.shutdown().await;
}
