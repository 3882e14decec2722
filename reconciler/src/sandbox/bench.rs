//! The converge benchmark: N new agents against the emulators with real-world timing (10 s
//! create actions, the realistic start, a 30 s boot and enrolment), scaled down by a time
//! scale so it runs in seconds, with times reported back at full scale. Start at
//! [`compare`]: it converges one agent alone and then N, and measures the wall times and the
//! requests each emulator served per created server. `cargo bench -p tether --bench converge`
//! prints it; the test below guards its ratios on every CI run.

use super::stack::{LatencyProfile, Stack, StackOptions};
use crate::apply::{self, ApplyError, Options};
use crate::observe::{ObserveError, observe};
use crate::plan::{Context, plan};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tether_emulators::emulator::RequestLog;
use tether_emulators::hetzner::RateLimit;
use tether_schema::{Content, Fleet, SourceFile, load_fleet};

/// A create action's duration in this benchmark, at full scale.
pub const CREATE: Duration = Duration::from_secs(10);

/// Why a benchmark run did not converge.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The emulators could not start.
    #[error("starting the emulators: {0}")]
    Emulators(#[from] std::io::Error),
    /// A client for the emulators could not be built.
    #[error("building a client for the emulators: {0}")]
    Client(String),
    /// The generated fleet did not load (a bug in this module).
    #[error("the generated fleet of {agents} agents does not load: {message}")]
    Fleet {
        /// Agents asked for.
        agents: usize,
        /// The loader's complaint.
        message: String,
    },
    /// Observing the emulated inventory failed.
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// The plan was refused.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Not every agent ended with a server and an online device.
    #[error("{online} of {agents} agents came online; the apply report says: {report}")]
    Incomplete {
        /// Agents asked for.
        agents: usize,
        /// Devices online at the end.
        online: usize,
        /// The apply report.
        report: String,
    },
}

/// One converge of `agents` new agents.
#[derive(Debug, Clone, PartialEq)]
pub struct Converged {
    /// Agents created.
    pub agents: usize,
    /// Observe, plan and apply until every device is online, rescaled to full time.
    pub wall: Duration,
    /// Requests the Hetzner emulator served.
    pub hetzner_requests: u64,
    /// Requests the Tailscale emulator served (its OAuth token request included).
    pub tailscale_requests: u64,
    /// Hetzner requests by `METHOD route`.
    pub hetzner_routes: BTreeMap<String, u64>,
    /// Tailscale requests by `METHOD route`.
    pub tailscale_routes: BTreeMap<String, u64>,
}

impl Converged {
    /// Hetzner requests per created server.
    pub fn hetzner_per_server(&self) -> f64 {
        self.hetzner_requests as f64 / self.agents.max(1) as f64
    }

    /// Tailscale requests per created server.
    pub fn tailscale_per_server(&self) -> f64 {
        self.tailscale_requests as f64 / self.agents.max(1) as f64
    }
}

/// N agents measured against one agent alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// One agent alone: the slowest a single agent takes.
    pub single: Converged,
    /// All N together.
    pub fleet: Converged,
    /// The time Hetzner's rate limit (3600 an hour, bucket full at the start) forces on the
    /// fleet's requests: zero while they fit the bucket.
    pub rate_limit_floor: Duration,
}

impl Comparison {
    /// The fleet's wall time over (one agent's time plus the rate-limit floor): 1.0 is
    /// perfectly flat in N.
    pub fn flatness(&self) -> f64 {
        self.fleet.wall.as_secs_f64()
            / (self.single.wall + self.rate_limit_floor)
                .as_secs_f64()
                .max(f64::MIN_POSITIVE)
    }
}

/// Converges one agent, then `agents`, each in fresh emulators at `time_scale`.
///
/// # Errors
/// Either run failed to converge ([`BenchError`]).
pub async fn compare(agents: usize, time_scale: f64) -> Result<Comparison, BenchError> {
    let single = converge(1, time_scale).await?;
    let fleet = converge(agents, time_scale).await?;
    let rate_limit_floor = rate_limit_floor(fleet.hetzner_requests, RateLimit::default());
    Ok(Comparison {
        single,
        fleet,
        rate_limit_floor,
    })
}

/// How long `requests` take under `limit` beyond what a full bucket holds.
pub fn rate_limit_floor(requests: u64, limit: RateLimit) -> Duration {
    let beyond = requests.saturating_sub(u64::from(limit.limit)) as f64;
    Duration::from_secs_f64(beyond / limit.refill_per_second.max(f64::MIN_POSITIVE))
}

/// The emulated world of this benchmark at `time_scale`.
pub fn stack_options(time_scale: f64) -> StackOptions {
    let mut options = StackOptions::with_latency(LatencyProfile::Realistic, time_scale);
    options.latencies.create = CREATE.mul_f64(time_scale);
    options.server_limit = options.server_limit.max(10_000);
    options
}

/// Converges `agents` new agents in fresh emulators at `time_scale`: observe, plan and apply
/// with the default options (their intervals scaled), until every device is online.
///
/// # Errors
/// See [`BenchError`].
pub async fn converge(agents: usize, time_scale: f64) -> Result<Converged, BenchError> {
    let fleet = fleet(agents)?;
    let stack = Stack::start(stack_options(time_scale)).await?;
    let defaults = Options::default();
    let poll = crate::cloud::hetzner::DEFAULT_POLL_INTERVAL.mul_f64(time_scale);
    let compute = stack
        .hetzner_client(poll)
        .map_err(|e| BenchError::Client(e.to_string()))?;
    let tailnet = stack
        .tailscale_client()
        .map_err(|e| BenchError::Client(e.to_string()))?;
    let options = Options {
        device_poll: defaults.device_poll.mul_f64(time_scale),
        device_timeout: defaults.device_timeout.mul_f64(time_scale),
        ..defaults
    };
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let observed = observe(&compute, &tailnet).await?;
    let planned = plan(&fleet, &observed, &Context::default());
    let report = apply::apply(&planned, &fleet, &compute, &tailnet, &options, stop).await?;
    let elapsed = started.elapsed();
    let online = stack
        .tailscale
        .devices()
        .iter()
        .filter(|d| d.connected_to_control)
        .count();
    let converged = Converged {
        agents,
        wall: elapsed.div_f64(time_scale.max(f64::MIN_POSITIVE)),
        hetzner_requests: stack.hetzner.requests().total(),
        tailscale_requests: stack.tailscale.requests().total(),
        hetzner_routes: routes(&stack.hetzner.requests()),
        tailscale_routes: routes(stack.tailscale.requests()),
    };
    stack.shutdown().await;
    if !report.succeeded() || online != agents || report.done("create") != agents {
        return Err(BenchError::Incomplete {
            agents,
            online,
            report: report.to_string(),
        });
    }
    Ok(converged)
}

/// Request counts by `METHOD route`, whatever the outcome; path segments that are ids (any
/// with an upper-case letter or a digit, `v1`/`v2` aside) read `{id}`.
fn routes(log: &RequestLog) -> BTreeMap<String, u64> {
    let mut by_route = BTreeMap::new();
    for (key, count) in log.snapshot() {
        let route: Vec<&str> = key
            .route
            .split('/')
            .map(|s| {
                let id = !matches!(s, "v1" | "v2")
                    && s.bytes()
                        .any(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
                if id { "{id}" } else { s }
            })
            .collect();
        *by_route
            .entry(format!("{} {}", key.method, route.join("/")))
            .or_default() += count;
    }
    by_route
}

/// A fleet named `bench` with `agents` agents on the same server type.
fn fleet(agents: usize) -> Result<Fleet, BenchError> {
    let mut files = vec![SourceFile {
        path: "fleet.yaml".into(),
        content: Content::Bytes(
            b"apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: bench}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  policy: {prune: true}\n  catalog: {serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}\n".to_vec(),
        ),
    }];
    for i in 0..agents {
        let text = format!(
            "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: agent-{i:05}}}\nspec:\n  subscription: sub_{i:05}\n  runtime: {{version: \"1.4.2\"}}\n"
        );
        files.push(SourceFile {
            path: format!("agents/agent-{i:05}.yaml"),
            content: Content::Bytes(text.into_bytes()),
        });
    }
    load_fleet(&files).map_err(|e| BenchError::Fleet {
        agents,
        message: format!("{e:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_floor_counts_only_requests_beyond_a_full_bucket() {
        assert_eq!(rate_limit_floor(3000, RateLimit::default()), Duration::ZERO);
        assert_eq!(
            rate_limit_floor(3700, RateLimit::default()),
            Duration::from_secs(100)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_agents_converge_about_as_fast_as_one_within_the_request_ceilings() {
        let c = compare(100, 0.05).await.expect("both runs converge");
        assert!(c.flatness() < 1.5, "{c:?}");
        assert!(c.fleet.hetzner_per_server() <= 1.2, "{c:?}");
        // One key mint per server (no batch form exists); a key whose device enrolled is
        // spent, not revoked (decision 028); the pass's shared reads add the rest.
        assert!(c.fleet.tailscale_per_server() <= 2.0, "{c:?}");
        assert_eq!(
            c.fleet.tailscale_routes.get("POST /api/v2/tailnet/-/keys"),
            Some(&100)
        );
        assert_eq!(
            c.fleet
                .tailscale_routes
                .get("DELETE /api/v2/tailnet/-/keys/{id}"),
            None,
            "{c:?}"
        );
    }
}
