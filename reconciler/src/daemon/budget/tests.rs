use super::*;

const HOUR: f64 = 3600.0;

fn full(limit: u32) -> Option<Observed> {
    Some(Observed {
        limit,
        remaining: limit,
    })
}

/// A Hetzner bucket in simulated time: `limit` requests, refilled `limit / 3600` per second.
struct SimBucket {
    limit: f64,
    tokens: f64,
    at: f64,
}

impl SimBucket {
    fn new(limit: u32) -> Self {
        SimBucket {
            limit: f64::from(limit),
            tokens: f64::from(limit),
            at: 0.0,
        }
    }

    fn advance(&mut self, to: f64) {
        self.tokens = (self.tokens + (to - self.at) * self.limit / HOUR).min(self.limit);
        self.at = to;
    }

    fn spend(&mut self, n: u64) {
        self.tokens -= n as f64;
    }

    fn observed(&self) -> Option<Observed> {
        Some(Observed {
            limit: self.limit as u32,
            remaining: self.tokens.max(0.0) as u32,
        })
    }
}

/// Runs the daemon's timer for `hours` of simulated time at `agents` servers: a first pass at
/// start, then a pass whenever the cadence says; `others` requests per hour are spent by other
/// processes on the project, evenly. Returns the timed passes' request count per hour and the
/// lowest balance seen.
fn simulate(budget: RateBudget, agents: usize, others: f64, hours: u32) -> (Vec<u64>, f64) {
    let cadence = Cadence::new(budget, Duration::from_secs(300), agents);
    let per_pass = observation_requests(agents);
    let mut bucket = SimBucket::new(budget.hourly);
    let mut per_hour = vec![0; hours as usize];
    let mut lowest = f64::MAX;
    bucket.spend(per_pass);
    let mut t = cadence
        .after_pass(per_pass, bucket.observed())
        .as_secs_f64();
    while t < f64::from(hours) * HOUR {
        let before = bucket.at;
        bucket.advance(t);
        bucket.spend((others * (t - before) / HOUR) as u64);
        bucket.spend(per_pass);
        lowest = lowest.min(bucket.tokens);
        per_hour[(t / HOUR) as usize] += per_pass;
        t += cadence
            .after_pass(per_pass, bucket.observed())
            .as_secs_f64();
    }
    (per_hour, lowest)
}

#[test]
fn ten_thousand_agents_on_default_settings_observe_within_half_of_3600_an_hour() {
    let budget = RateBudget::default();
    assert_eq!(observation_requests(10_000), 203);
    // 1,800 / 203: eight whole passes an hour, one every 450 s.
    let every = interval(&budget, Duration::from_secs(300), 203, full(3600));
    assert_eq!(every.as_secs(), 450, "{every:?}");
    let (per_hour, lowest) = simulate(budget, 10_000, 0.0, 24);
    for (hour, requests) in per_hour.iter().enumerate() {
        assert!(
            *requests <= 1800,
            "hour {hour}: {requests} requests, more than half of 3600"
        );
    }
    assert!(per_hour[1..].iter().all(|r| *r == 8 * 203), "{per_hour:?}");
    assert!(lowest > 3000.0, "the bucket stays nearly full: {lowest}");
}

#[test]
fn a_small_fleet_polls_at_the_configured_interval_never_faster() {
    let budget = RateBudget::default();
    assert_eq!(observation_requests(40), 4);
    let configured = Duration::from_secs(300);
    assert_eq!(interval(&budget, configured, 4, full(3600)), configured);
    assert_eq!(
        interval(&budget, Duration::from_secs(10), 4, full(3600)),
        Duration::from_secs(10)
    );
    let (per_hour, _) = simulate(budget, 40, 0.0, 2);
    assert_eq!(per_hour, [12 * 4 - 4, 12 * 4]);
}

#[test]
fn a_smaller_share_or_limit_stretches_the_interval() {
    let configured = Duration::from_secs(10);
    let quarter = RateBudget {
        hourly: 3600,
        observe_share: 0.25,
    };
    assert_eq!(
        interval(&quarter, configured, 203, full(3600)).as_secs(),
        900
    );
    // The header's limit is the truth: a project allowed 7,200 an hour fits 17 passes in half.
    assert_eq!(
        interval(&RateBudget::default(), configured, 203, full(7200)).as_secs(),
        211
    );
}

#[test]
fn other_processes_spending_the_bucket_slow_the_timer_down_and_leave_the_reserve() {
    let budget = RateBudget::default();
    let configured = Duration::from_secs(300);
    // 1,000 left of 3,600: observation waits until 1,800 + one pass are back.
    let low = Some(Observed {
        limit: 3600,
        remaining: 1000,
    });
    assert_eq!(interval(&budget, configured, 203, low).as_secs(), 1003);
    // Another process spends 2,400 an hour: together with ours that is more than the bucket
    // refills, so the timer waits for the reserve and the balance never falls below it by more
    // than one pass.
    let (per_hour, lowest) = simulate(budget, 10_000, 2400.0, 12);
    let alone = simulate(budget, 10_000, 0.0, 12).0;
    assert!(
        per_hour[6..].iter().sum::<u64>() < alone[6..].iter().sum::<u64>(),
        "{per_hour:?} vs {alone:?}"
    );
    assert!(
        lowest >= 1800.0 - 203.0 - 2400.0 * 1100.0 / HOUR,
        "{lowest}"
    );
}

#[test]
fn a_pass_that_costs_more_than_the_whole_budget_is_capped_at_six_hours() {
    let budget = RateBudget::default();
    let every = interval(&budget, Duration::from_secs(300), 1_000_000, full(3600));
    assert_eq!(every, MAX_INTERVAL);
}

#[tokio::test(start_paused = true)]
async fn the_timer_fires_about_every_period_follows_the_cadence_and_stops_on_shutdown() {
    use crate::cloud::retry::TokioClock;
    use crate::daemon::trigger::coalescer;
    use crate::process::shutdown;
    use tokio::time::Instant;

    let (sender, mut coalescer) = coalescer(TokioClock, Duration::ZERO);
    let (stop, signal) = shutdown::channel();
    let cadence = Cadence::new(RateBudget::default(), Duration::from_secs(60), 0);
    let schedule = Schedule {
        every: Duration::from_secs(60),
        jitter: 0.1,
    };
    let producer = tokio::spawn(run_interval(
        TokioClock,
        schedule,
        cadence.subscribe(),
        sender,
        signal,
    ));
    let mut last = Instant::now();
    for _ in 0..3 {
        assert_eq!(coalescer.next().await.triggers(), [Trigger::Interval]);
        let gap = last.elapsed().as_secs_f64();
        assert!((54.0..=66.0).contains(&gap), "{gap}");
        last = Instant::now();
    }
    // A pass of 203 requests: the next period but one is the budget's 450 s, jittered only
    // upwards.
    cadence.after_pass(203, full(3600));
    coalescer.next().await;
    last = Instant::now();
    for _ in 0..4 {
        assert_eq!(coalescer.next().await.triggers(), [Trigger::Interval]);
        let gap = last.elapsed().as_secs_f64();
        assert!((450.0..=495.5).contains(&gap), "{gap}");
        last = Instant::now();
    }
    stop.trigger(shutdown::ShutdownReason::Requested);
    tokio::time::timeout(Duration::from_secs(1), producer)
        .await
        .expect("stops on shutdown")
        .expect("join");
}

#[tokio::test(start_paused = true)]
async fn the_first_timed_pass_waits_for_the_budget_counted_after_the_first_pass() {
    use crate::cloud::retry::TokioClock;
    use crate::daemon::trigger::coalescer;
    use crate::process::shutdown;
    use tokio::time::Instant;

    let (sender, mut coalescer) = coalescer(TokioClock, Duration::ZERO);
    let (stop, signal) = shutdown::channel();
    let cadence = Cadence::new(RateBudget::default(), Duration::from_secs(60), 0);
    let schedule = Schedule {
        every: Duration::from_secs(60),
        jitter: 0.1,
    };
    let started = Instant::now();
    let producer = tokio::spawn(run_interval(
        TokioClock,
        schedule,
        cadence.subscribe(),
        sender,
        signal,
    ));
    // The first pass (started by the lease, not the timer) takes 40 s; counting it sets the
    // budget's 450 s while the timer's first wait of about 60 s is under way.
    tokio::time::sleep(Duration::from_secs(40)).await;
    assert_eq!(
        cadence.after_pass(203, full(3600)),
        Duration::from_secs(450)
    );
    assert_eq!(coalescer.next().await.triggers(), [Trigger::Interval]);
    let first = started.elapsed().as_secs_f64();
    assert!(
        (450.0..=40.0 + 495.5).contains(&first),
        "the first timed pass came {first} s after the start"
    );
    stop.trigger(shutdown::ShutdownReason::Requested);
    tokio::time::timeout(Duration::from_secs(1), producer)
        .await
        .expect("stops on shutdown")
        .expect("join");
}
