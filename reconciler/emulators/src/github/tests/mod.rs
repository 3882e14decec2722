//! The emulator over HTTP: [`conformance`]: octocrab (a client nobody here wrote)
//! deserialises every answer it gets; [`http`]: the raw answers carry GitHub's statuses,
//! headers and error shapes.

mod conformance;
mod http;

use super::*;
use octocrab::Octocrab;
use octocrab::models::{CommentId, StatusState};
use octocrab::params::repos::Reference;
use serde_json::{Value, json};

const TOKEN: &str = "tok-user";
const REPO: &str = "acme/fleet";

struct World {
    emu: GitHubEmulator,
    head: String,
    http: reqwest::Client,
}

async fn world(config: Config) -> World {
    let emu = GitHubEmulator::start(config).await.expect("start");
    emu.create_repo(REPO).expect("repo");
    emu.push(REPO, "main", &[("a.yaml", "a\n")]).expect("push");
    let head = emu
        .push(REPO, "feature", &[("a.yaml", "b\n")])
        .expect("push");
    emu.open_pull_request(REPO, &NewPull::new("Feature", "feature", "main"), "alice")
        .expect("pr");
    let http = reqwest::Client::builder()
        .user_agent("tests")
        .build()
        .expect("http");
    World { emu, head, http }
}

async fn started() -> World {
    world(Config::default().user(TOKEN, "tether-bot")).await
}

fn octocrab(w: &World) -> Octocrab {
    Octocrab::builder()
        .personal_token(TOKEN.to_owned())
        .base_uri(w.emu.url())
        .expect("uri")
        .build()
        .expect("octocrab")
}

impl World {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.url())
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(TOKEN)
                .json(&body),
        )
        .await
    }
}
