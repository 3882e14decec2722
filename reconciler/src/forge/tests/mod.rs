//! The real [`GitHub`] client (octocrab) against the started GitHub emulator, over HTTP:
//! [`comments`] for the plan comment, [`requests`] for statuses, pull requests, errors and
//! retries.

mod comments;
mod requests;

use super::*;
use crate::cloud::retry::{Clock, ManualClock, Retry};
use crate::plan::render::markdown::MARKER;
use crate::secret::Secret;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tether_emulators::emulator::{FaultRule, Faults};
use tether_emulators::github::{self as emu, GitHubEmulator, NewPull};

const TOKEN: &str = "ghp_tetherTestToken0123456789abcdefABCDEF";
const BOT_TOKEN: &str = "ghs_actionsInstallationToken0123456789ab";
const REPO: &str = "acme/fleet";

/// A virtual clock whose first sleep ends every injected outage: "the API recovers while
/// the client backs off", without real time.
#[derive(Debug, Clone)]
struct RecoveringClock {
    faults: Arc<Faults>,
    clock: ManualClock,
}

impl Clock for RecoveringClock {
    fn now(&self) -> SystemTime {
        self.clock.now()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        self.faults.set(Vec::new());
        self.clock.sleep(duration)
    }
}

struct World {
    emu: GitHubEmulator,
    pr: PrNumber,
    head: String,
}

async fn world(config: emu::Config) -> World {
    let emu = GitHubEmulator::start(config).await.expect("start emulator");
    emu.create_repo(REPO).expect("repo");
    emu.push(REPO, "main", &[("fleet/agents.yaml", "agents: []\n")])
        .expect("push main");
    let head = emu
        .push(REPO, "add-agent", &[("fleet/agents.yaml", "agents: [a]\n")])
        .expect("push branch");
    let pr = emu
        .open_pull_request(
            REPO,
            &NewPull::new("Add agent a", "add-agent", "main"),
            "alice",
        )
        .expect("open pr");
    World {
        emu,
        pr: PrNumber(pr),
        head,
    }
}

async fn started() -> World {
    world(emu::Config::default().user(TOKEN, "tether-bot")).await
}

fn config(url: &str, token: &str) -> Config {
    let mut config = Config::new(
        url,
        Secret::from(token),
        Repository::parse(REPO).expect("repo"),
    );
    config.backoff.max_retries = 2;
    config
}

fn client(w: &World, token: &str) -> GitHub<ManualClock> {
    GitHub::with_clock(config(&w.emu.url(), token), ManualClock::new(UNIX_EPOCH)).expect("client")
}

fn recovering_client(w: &World) -> GitHub<RecoveringClock> {
    let clock = RecoveringClock {
        faults: w.emu.faults().clone(),
        clock: ManualClock::new(UNIX_EPOCH),
    };
    GitHub::with_clock(config(&w.emu.url(), TOKEN), clock).expect("client")
}

/// Whether the emulator applied a request and dropped its answer.
fn lost_one(w: &World) -> bool {
    w.emu
        .requests()
        .snapshot()
        .keys()
        .any(|k| k.outcome == "lost")
}

fn plan(text: &str) -> String {
    format!("{MARKER}\n### tether plan: {text}\n")
}
