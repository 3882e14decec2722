//! Firewalls: rules checked as Hetzner checks them, label-selector cover from a server's
//! first moment, `pending` → `applied`, the actions, and the documented refusals.

use super::Api;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

fn ssh_rule() -> Value {
    json!({"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["0.0.0.0/0", "::/0"]})
}

/// The `(id, status)` pairs of a server's `public_net.firewalls`.
async fn firewalls_of(api: &Api, server: &Value) -> Vec<(u64, String)> {
    let r = api.get(&format!("/servers/{}", server["id"])).await;
    r.body["server"]["public_net"]["firewalls"]
        .as_array()
        .expect("firewalls array")
        .iter()
        .map(|f| {
            let id = f["id"].as_u64().expect("id");
            (id, f["status"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

async fn wait_applied(api: &Api, server: &Value, firewall: u64) {
    for _ in 0..250 {
        if firewalls_of(api, server).await == [(firewall, "applied".to_owned())] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("firewall {firewall} never applied to {}", server["id"]);
}

#[tokio::test]
async fn a_label_selector_covers_matching_servers_including_ones_created_later() {
    let api = Api::start().await;
    let before = api
        .create("acme-1", json!({"labels": {"fleet": "acme"}}))
        .await;
    let other = api
        .create("other-1", json!({"labels": {"fleet": "other"}}))
        .await;
    let r = api
        .send(
            Method::POST,
            "/firewalls",
            json!({"name": "acme", "labels": {"fleet": "acme"}, "rules": [ssh_rule()],
                   "apply_to": [{"type": "label_selector",
                                 "label_selector": {"selector": "fleet=acme"}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["firewall"]["id"].as_u64().expect("firewall id");
    assert_eq!(r.body["actions"][0]["command"], "apply_firewall");
    assert_eq!(
        r.body["firewall"]["rules"][0]["source_ips"],
        json!(["0.0.0.0/0", "::/0"])
    );
    assert_eq!(
        firewalls_of(&api, &before).await,
        [(id, "pending".to_owned())]
    );
    wait_applied(&api, &before, id).await;
    let after = api
        .create("acme-2", json!({"labels": {"fleet": "acme"}}))
        .await;
    assert_eq!(after["public_net"]["firewalls"][0]["id"], id);
    wait_applied(&api, &after, id).await;
    assert_eq!(firewalls_of(&api, &other).await, []);
    let fw = api.get(&format!("/firewalls/{id}")).await.body["firewall"].clone();
    let covered: Vec<&Value> = fw["applied_to"][0]["applied_to_resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| &r["server"]["id"])
        .collect();
    assert_eq!(covered, [&before["id"], &after["id"]]);
    let per_server = api.emu.action_commands();
    assert!(
        per_server.iter().all(|(c, _)| *c != "apply_firewall"),
        "{per_server:?}"
    );
    api.emu.shutdown().await;
}

#[tokio::test]
async fn relabelling_a_server_moves_it_in_and_out_of_a_selector() {
    let api = Api::start().await;
    let s = api.create("s", json!({"labels": {"fleet": "acme"}})).await;
    let r = api
        .send(
            Method::POST,
            "/firewalls",
            json!({"name": "acme", "apply_to": [{"type": "label_selector",
                   "label_selector": {"selector": "fleet=acme"}}]}),
        )
        .await;
    let id = r.body["firewall"]["id"].as_u64().expect("id");
    let path = format!("/servers/{}", s["id"]);
    api.send(Method::PUT, &path, json!({"labels": {"fleet": "x"}}))
        .await;
    assert_eq!(firewalls_of(&api, &s).await, []);
    api.send(Method::PUT, &path, json!({"labels": {"fleet": "acme"}}))
        .await;
    wait_applied(&api, &s, id).await;
    api.emu.shutdown().await;
}

#[tokio::test]
async fn set_rules_replaces_the_rules_and_reapplies_to_covered_servers() {
    let api = Api::start().await;
    let s = api.create("s", json!({"labels": {"fleet": "acme"}})).await;
    let r = api
        .send(
            Method::POST,
            "/firewalls",
            json!({"name": "acme", "apply_to": [{"type": "label_selector",
                   "label_selector": {"selector": "fleet=acme"}}]}),
        )
        .await;
    let id = r.body["firewall"]["id"].as_u64().expect("id");
    wait_applied(&api, &s, id).await;
    let r = api
        .send(
            Method::POST,
            &format!("/firewalls/{id}/actions/set_rules"),
            json!({"rules": [ssh_rule()]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let commands: Vec<&Value> = r.body["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| &a["command"])
        .collect();
    assert_eq!(commands, ["set_firewall_rules", "apply_firewall"]);
    assert_eq!(
        r.body["actions"][1]["resources"],
        json!([{"id": s["id"], "type": "server"}, {"id": id, "type": "firewall"}])
    );
    assert_eq!(firewalls_of(&api, &s).await, [(id, "pending".to_owned())]);
    api.wait_action(&r.body["actions"][0]["id"]).await;
    wait_applied(&api, &s, id).await;
    let fw = api.get(&format!("/firewalls/{id}")).await;
    assert_eq!(fw.body["firewall"]["rules"][0]["port"], "22");
    let listed = api.get(&format!("/firewalls/{id}/actions")).await;
    assert_eq!(listed.body["actions"].as_array().map(Vec::len), Some(3));
    api.emu.shutdown().await;
}

#[tokio::test]
async fn a_firewall_in_use_cannot_be_deleted_until_removed_from_its_selector() {
    let api = Api::start().await;
    let selector =
        json!([{"type": "label_selector", "label_selector": {"selector": "fleet=acme"}}]);
    let r = api
        .send(
            Method::POST,
            "/firewalls",
            json!({"name": "acme", "apply_to": selector}),
        )
        .await;
    let id = r.body["firewall"]["id"].as_u64().expect("id");
    let r = api
        .send(Method::DELETE, &format!("/firewalls/{id}"), json!({}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "resource_in_use")
    );
    let again = api
        .send(
            Method::POST,
            &format!("/firewalls/{id}/actions/apply_to_resources"),
            json!({"apply_to": selector}),
        )
        .await;
    assert_eq!(again.code(), "firewall_already_applied");
    let r = api
        .send(
            Method::POST,
            &format!("/firewalls/{id}/actions/remove_from_resources"),
            json!({"remove_from": selector}),
        )
        .await;
    assert_eq!(
        r.body["actions"][0]["command"], "remove_firewall",
        "{}",
        r.body
    );
    let r = api
        .send(Method::DELETE, &format!("/firewalls/{id}"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get(&format!("/firewalls/{id}")).await.code(),
        "not_found"
    );
    api.emu.shutdown().await;
}

#[tokio::test]
async fn documented_refusals_name_what_is_wrong() {
    let api = Api::start().await;
    let dark = api
        .create(
            "dark",
            json!({"labels": {"fleet": "acme"},
                   "public_net": {"enable_ipv4": false, "enable_ipv6": false}}),
        )
        .await;
    let lit = api
        .create("lit", json!({"labels": {"fleet": "acme"}}))
        .await;
    let r = api
        .send(
            Method::POST,
            "/firewalls",
            json!({"name": "acme", "rules": [
                {"direction": "in", "protocol": "tcp", "source_ips": ["10.0.0.1/8"]}]}),
        )
        .await;
    assert_eq!(r.code(), "invalid_input");
    let messages = r.body["error"]["details"]["fields"][0]["messages"].to_string();
    assert!(messages.contains("rule 0: port is required"), "{messages}");
    assert!(
        messages.contains("'10.0.0.1/8' is not a CIDR block"),
        "{messages}"
    );
    let r = api
        .send(Method::POST, "/firewalls", json!({"name": "acme"}))
        .await;
    let id = r.body["firewall"]["id"].as_u64().expect("id");
    let dup = api
        .send(Method::POST, "/firewalls", json!({"name": "acme"}))
        .await;
    assert_eq!(
        (dup.status, dup.code()),
        (StatusCode::CONFLICT, "uniqueness_error")
    );
    let apply =
        |server: &Value| json!({"apply_to": [{"type": "server", "server": {"id": server["id"]}}]});
    let path = format!("/firewalls/{id}/actions/apply_to_resources");
    let r = api.send(Method::POST, &path, apply(&dark)).await;
    assert_eq!(r.code(), "private_net_only_server");
    let r = api
        .send(Method::POST, &path, apply(&json!({"id": 999})))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "firewall_resource_not_found")
    );
    let selector = json!({"apply_to": [{"type": "label_selector",
                                        "label_selector": {"selector": "fleet=acme"}}]});
    api.send(Method::POST, &path, selector).await;
    let r = api
        .send(
            Method::POST,
            &format!("/firewalls/{id}/actions/remove_from_resources"),
            json!({"remove_from": [{"type": "server", "server": {"id": lit["id"]}}]}),
        )
        .await;
    assert_eq!(r.code(), "firewall_managed_by_label_selector");
    assert_eq!(firewalls_of(&api, &dark).await, []);
    api.emu.shutdown().await;
}

#[tokio::test]
async fn firewalls_list_by_name_and_label_selector() {
    let api = Api::start().await;
    for (name, fleet) in [("acme", "acme"), ("beta", "beta")] {
        let r = api
            .send(
                Method::POST,
                "/firewalls",
                json!({"name": name, "labels": {"fleet": fleet}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let names = |r: super::Resp| -> Vec<String> {
        r.body["firewalls"]
            .as_array()
            .expect("firewalls")
            .iter()
            .filter_map(|f| f["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        names(api.get("/firewalls?label_selector=fleet=beta").await),
        ["beta"]
    );
    assert_eq!(names(api.get("/firewalls?name=acme").await), ["acme"]);
    assert_eq!(
        names(api.get("/firewalls?sort=name:desc").await),
        ["beta", "acme"]
    );
    let page = api.get("/firewalls?per_page=1").await;
    assert_eq!(page.body["meta"]["pagination"]["total_entries"], 2);
    api.emu.shutdown().await;
}
