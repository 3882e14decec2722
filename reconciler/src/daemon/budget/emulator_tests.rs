//! The budget against the emulated Hetzner project: a simulated hour of timed passes, each pass
//! the real observation (every page of servers, the catalog, the devices) over HTTP, the
//! emulator's own bucket refilling in the same paused clock.
//!
//! 1,000 servers in a project allowed 360 requests an hour: the ratio of 10,000 servers to
//! Hetzner's 3,600, at a tenth of the emulator's work (it scans every server for each page, so
//! an hour at 10,000 takes minutes in a debug build). `tests.rs` runs 10,000 over 24 hours.

use super::*;
use crate::observe::observe;
use crate::sandbox::stack::{Stack, StackOptions};
use futures_util::StreamExt as _;
use tether_emulators::hetzner::RateLimit;
use tokio::time::Instant;

const SERVERS: usize = 1_000;
const LIMIT: u32 = 360;
const HOUR: Duration = Duration::from_secs(3600);

/// Creates `SERVERS` stopped servers through the API (with the bucket raised meanwhile), then
/// gives the project a bucket of `LIMIT`, full.
async fn seed(stack: &Stack) {
    stack
        .hetzner
        .set_rate_limit(RateLimit::per_hour(100_000_000));
    let http = reqwest::Client::new();
    let (url, token) = (stack.hetzner.url(), stack.hetzner.token());
    futures_util::stream::iter(0..SERVERS)
        .map(|i| {
            let body = serde_json::json!({
                "name": format!("agent-{i:05}"),
                "server_type": "cpx21",
                "location": "fsn1",
                "image": "ubuntu-24.04",
                "start_after_create": false,
                "labels": {"tether/fleet": "bench", "tether/agent": format!("agent-{i:05}")},
            });
            http.post(format!("{url}/servers"))
                .bearer_auth(token.expose())
                .json(&body)
                .send()
        })
        .buffer_unordered(32)
        .for_each(|sent| async move {
            let status = sent.map(|r| r.status().as_u16()).unwrap_or_default();
            assert_eq!(status, 201, "seeding a server");
        })
        .await;
    stack.hetzner.set_rate_limit(RateLimit::per_hour(LIMIT));
    stack.hetzner.requests().reset();
}

#[tokio::test(start_paused = true)]
async fn an_hour_of_timed_passes_spends_at_most_half_the_emulators_bucket_whose_headers_set_the_limit()
 {
    let stack = Stack::start(StackOptions {
        server_limit: SERVERS,
        ..StackOptions::default()
    })
    .await
    .expect("emulators start");
    seed(&stack).await;
    let compute = stack
        .hetzner_client(Duration::from_millis(50))
        .expect("hetzner client");
    let tailnet = stack.tailscale_client().expect("tailscale client");
    let cadence = Cadence::new(RateBudget::default(), Duration::from_secs(300), 0);
    let hetzner_requests = || -> u64 { compute.request_counts().values().sum() };

    let start = Instant::now();
    let (mut timed_passes, mut timed_requests, mut lowest) = (0, 0, u32::MAX);
    let mut at = Duration::ZERO;
    while at < HOUR {
        tokio::time::advance(at.saturating_sub(start.elapsed())).await;
        let before = hetzner_requests();
        let observed = observe(&compute, &tailnet).await.expect("observe");
        assert_eq!(observed.servers.len(), SERVERS);
        let requests = hetzner_requests() - before;
        assert_eq!(requests, 23, "ceil(1,000 / 50) pages and the catalog");
        if at > Duration::ZERO {
            timed_passes += 1;
            timed_requests += requests;
        }
        let bucket = compute.rate_limit();
        lowest = lowest.min(bucket.remaining);
        at += cadence.after_pass(requests, Some(bucket));
    }
    let counted = stack.hetzner.requests().total();
    // The headers said 360, not the configured 3,600: 180 / 23 is 7 passes, one every 514 s.
    assert_eq!(timed_passes, 6, "every 514 s after the first pass");
    assert_eq!(
        counted,
        timed_requests + 23,
        "the emulator counted the same"
    );
    assert!(
        counted <= u64::from(LIMIT / 2),
        "the first pass and {timed_passes} timed passes made {counted} requests in the hour"
    );
    assert!(lowest >= LIMIT - 2 * 23, "the bucket stays full: {lowest}");
    assert!(!compute.request_counts().contains_key(&Some(429)));
    stack.shutdown().await;
}
