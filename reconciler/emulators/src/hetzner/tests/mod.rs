//! Tests of the emulator over real HTTP on 127.0.0.1: a started emulator, a reqwest client,
//! and helpers that wait (with generous bounds) for asynchronous state.

mod api;
mod catalog;
mod firewalls;
mod lifecycle;
mod limits;
mod rebuild;

use super::{Config, HetznerEmulator, Latencies};
use crate::{BootedServer, MachineHooks};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::Duration;

/// The token the test emulators accept.
const TOKEN: &str = "test-token-0123456789";

/// A response, decoded.
#[derive(Debug)]
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// A started emulator and a client for it.
struct Api {
    emu: HetznerEmulator,
    client: reqwest::Client,
}

/// A test configuration: one known token, quick actions.
fn config() -> Config {
    Config {
        tokens: vec![TOKEN.into()],
        latencies: Latencies::uniform(Duration::from_millis(10)),
        boot_delay: Duration::from_millis(10),
        ..Config::default()
    }
}

impl Api {
    async fn start() -> Api {
        Api::start_with(config()).await
    }

    async fn start_with(config: Config) -> Api {
        let emu = HetznerEmulator::start(config)
            .await
            .expect("start emulator");
        Api {
            emu,
            client: reqwest::Client::new(),
        }
    }

    async fn send_as(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> Resp {
        let url = if path.starts_with("/_emulator") {
            format!("{}{path}", self.emu.url().trim_end_matches("/v1"))
        } else {
            format!("{}{path}", self.emu.url())
        };
        let mut req = self.client.request(method, url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = req.send().await.expect("send request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON body")
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.send_as(Method::GET, path, None, Some(TOKEN)).await
    }

    async fn send(&self, method: Method, path: &str, body: Value) -> Resp {
        let text = body.to_string();
        self.send_as(method, path, Some(&text), Some(TOKEN)).await
    }

    /// Creates a server and returns its JSON; the create must succeed.
    async fn create(&self, name: &str, extra: Value) -> Value {
        let mut body = json!({"name": name, "server_type": "cpx21", "image": "ubuntu-24.04",
                              "location": "fsn1", "ssh_keys": ["ops-2026"]});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let r = self.send(Method::POST, "/servers", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["server"].clone()
    }

    /// Waits up to 5 s for the server's status (`gone` waits for a 404).
    async fn wait_status(&self, id: &Value, status: &str) {
        for _ in 0..250 {
            let r = self.get(&format!("/servers/{id}")).await;
            let now = if r.status == StatusCode::NOT_FOUND {
                "gone"
            } else {
                r.body["server"]["status"].as_str().unwrap_or("")
            };
            if now == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server {id} never reached {status}");
    }

    /// Waits up to 5 s for an action to finish; returns it.
    async fn wait_action(&self, id: &Value) -> Value {
        for _ in 0..250 {
            let r = self.get(&format!("/actions/{id}")).await;
            if r.body["action"]["status"] != "running" {
                return r.body["action"].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("action {id} never finished");
    }
}

/// Records hook calls as text.
#[derive(Debug, Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
}

impl Recorder {
    fn events(&self) -> Vec<String> {
        self.events.lock().expect("events lock").clone()
    }

    /// Waits up to 5 s until `n` events were recorded.
    async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..250 {
            if self.events().len() >= n {
                return self.events();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {n} hook calls, got {:?}", self.events());
    }
}

impl MachineHooks for Recorder {
    fn booted(&self, server: &BootedServer) {
        self.events.lock().expect("events lock").push(format!(
            "booted {} {} {}",
            server.id,
            server.name,
            server.user_data.as_deref().unwrap_or("-")
        ));
    }

    fn stopped(&self, server_id: u64) {
        self.events
            .lock()
            .expect("events lock")
            .push(format!("stopped {server_id}"));
    }

    fn rebuilt(&self, server_id: u64) {
        self.events
            .lock()
            .expect("events lock")
            .push(format!("rebuilt {server_id}"));
    }
}
