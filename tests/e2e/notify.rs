//! Notifications from the real `tether run`: a refused plan (every spec removed) announced once
//! however many passes it lasts, and its recovery once, at a JSON webhook and a Slack-compatible
//! webhook served by this test on 127.0.0.1.

use crate::common::{commit_all, copy_dir, example_fleet};
use crate::daemon::Daemon;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether::sandbox::stack::{Stack, StackOptions};

/// A webhook receiver on 127.0.0.1: answers every `POST` with 200 and keeps the JSON bodies.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    fn start(path: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}{path}", listener.local_addr().expect("addr"));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                if let Some(body) = read_request(&stream) {
                    kept.lock().expect("lock").push(body);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        Receiver { url, bodies }
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().expect("lock").clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..400 {
            if self.bodies().len() >= n {
                return self.bodies();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{n} notification(s) expected within 20 s at {}, got {:?}",
            self.url,
            self.bodies()
        );
    }
}

/// One HTTP/1.1 request's JSON body.
fn read_request(stream: &std::net::TcpStream) -> Option<serde_json::Value> {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// Passes the daemon has finished, from `/metrics`.
async fn passes(daemon: &Daemon) -> u64 {
    let Ok(r) = reqwest::get(format!("{}/metrics", daemon.url().await)).await else {
        return 0;
    };
    r.text()
        .await
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("tether_reconciles_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Asks for a pass over `POST /reconcile` and waits until it has finished.
async fn one_more_pass(daemon: &Daemon, token: &str) {
    let before = passes(daemon).await;
    let r = reqwest::Client::new()
        .post(format!("{}/reconcile", daemon.url().await))
        .bearer_auth(token)
        .send()
        .await
        .expect("POST /reconcile");
    assert!(r.status().is_success(), "{}", r.status());
    for _ in 0..400 {
        if passes(daemon).await > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no pass within 20 s:\n{}", daemon.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_and_its_recovery_are_one_message_each_at_both_sinks() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let fleet = example_fleet();
    commit_all(fleet.path(), "main", "seed");
    let json = Receiver::start("/hooks/tether");
    let slack = Receiver::start("/services/T000/B000/XXXXSECRETPATH");
    let token = "reconcile-token-for-the-test";
    let extra = format!(
        "notify:\n  retries: 1\n  webhook:\n    url: {}\n  slack:\n    urlEnv: TETHER_TEST_SLACK_URL\n",
        json.url
    );
    let daemon = Daemon::spawn(
        &stack,
        &format!("  path: {}", fleet.path().display()),
        &extra,
        &[
            ("TETHER_TEST_SLACK_URL", slack.url.as_str()),
            ("TETHER_RECONCILE_TOKEN", token),
        ],
    );
    daemon.wait_ready().await;
    assert_eq!(stack.hetzner.servers().len(), 6, "converged at start");
    assert!(json.bodies().is_empty(), "a clean pass says nothing");

    let agents = fleet.path().join("agents");
    let kept = tempfile::tempdir().expect("keep the specs");
    copy_dir(&agents, kept.path());
    std::fs::remove_dir_all(&agents).expect("remove every spec");
    std::fs::create_dir(&agents).expect("empty agents/");
    let refused = json.wait_for(1).await;
    assert_eq!(refused[0]["event"], "refused", "{refused:?}");
    assert_eq!(refused[0]["fleet"], "aura-prod");
    let reason = refused[0]["reason"].as_str().expect("reason");
    assert!(reason.contains("shrank from 6 agents to none"), "{reason}");
    one_more_pass(&daemon, token).await;
    one_more_pass(&daemon, token).await;
    assert_eq!(stack.hetzner.servers().len(), 6, "nothing was deleted");

    copy_dir(kept.path(), &agents);
    let json_bodies = json.wait_for(2).await;
    let slack_bodies = slack.wait_for(2).await;
    one_more_pass(&daemon, token).await;
    let after = json.bodies();
    let events: Vec<&str> = after
        .iter()
        .map(|b| b["event"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(events, ["refused", "recovered"], "{json_bodies:?}");
    assert_eq!(json_bodies[1]["condition"], "refused");
    let texts: Vec<String> = slack
        .bodies()
        .iter()
        .map(|b| b["text"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(texts.len(), 2, "{slack_bodies:?}");
    assert!(
        texts[0].starts_with("*aura-prod*: the plan is refused"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].starts_with("*aura-prod*: the refusal is cleared"),
        "{}",
        texts[1]
    );

    let everything = format!(
        "{:?}{:?}{}",
        json.bodies(),
        slack.bodies(),
        daemon.log_text()
    );
    for (name, value) in stack.env() {
        if value.len() >= 8 && !value.starts_with("http") {
            assert!(!everything.contains(&value), "{name} leaked");
        }
    }
    assert!(
        !daemon.log_text().contains("XXXXSECRETPATH"),
        "the Slack URL reached the log"
    );
    daemon.stop().await;
    stack.shutdown().await;
}
