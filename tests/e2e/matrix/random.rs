//! The matrix's long randomized run: many runs of random operations, each with several faults
//! at random steps of the operation's pass and the pass after it, on emulators with realistic
//! latencies scaled down by a random factor, checked by the same oracle. Ignored by default;
//! its numbers are in docs/benchmarks.md:
//!
//! `cargo test -p tether-e2e --test e2e matrix::random -- --ignored --nocapture`
//!
//! `MATRIX_SEED` (default 27) and `MATRIX_RUNS` (default 60) choose the runs; a failing run
//! prints its seed and number, and `MATRIX_RUN=<n>` runs that one again.

use super::inject::Fault;
use super::operations::Operation;
use super::{EXPECTED_FAILURES, Job, Run, in_parallel, run};
use crate::chaos::support::SeededRng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tether::sandbox::stack::{REALISTIC_BOOT, StackOptions};
use tether_emulators::hetzner::Latencies;

/// Steps a fault may be scripted at: more than any operation's pass makes.
const STEPS: u64 = 8;
/// Passes that get faults: the operation's and the next.
const FAULTED_PASSES: usize = 2;
/// Most faults per faulted pass.
const MOST_FAULTS: u64 = 2;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One randomized run: the operation, the time scale and the faults of each faulted pass.
#[derive(Debug, Clone)]
struct Draw {
    op: Operation,
    scale: f64,
    faults: Vec<BTreeMap<usize, Fault>>,
}

/// The draw of run `n` of `seed`.
fn draw(seed: u64, n: u64) -> Draw {
    let mut rng = SeededRng::new(seed.wrapping_mul(1_000_003).wrapping_add(n));
    let ops = Operation::ALL;
    let op = ops[usize::try_from(rng.below(ops.len() as u64)).expect("small")];
    // Real Hetzner and boot timings, 1/100 to 1/33 of them.
    let scale = 0.01 + 0.02 * (rng.below(1000) as f64 / 1000.0);
    let faults = (0..FAULTED_PASSES)
        .map(|_| {
            let count = rng.below(MOST_FAULTS + 1);
            (0..count)
                .map(|_| {
                    let step = usize::try_from(rng.below(STEPS)).expect("small");
                    let kind = Fault::ALL[usize::try_from(rng.below(3)).expect("small")];
                    (step, kind)
                })
                .collect()
        })
        .collect();
    Draw { op, scale, faults }
}

fn options(scale: f64) -> StackOptions {
    StackOptions {
        latencies: Latencies::realistic().scaled(scale),
        boot_delay: REALISTIC_BOOT.mul_f64(scale),
        ..StackOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a long randomized run (minutes); its numbers are in docs/benchmarks.md"]
async fn random_faults_at_realistic_timings_never_break_a_promise() {
    let seed = env("MATRIX_SEED", 27);
    let runs: Vec<u64> = match std::env::var("MATRIX_RUN") {
        Ok(n) => vec![n.parse().expect("MATRIX_RUN is a number")],
        Err(_) => (0..env("MATRIX_RUNS", 60)).collect(),
    };
    let started = Instant::now();
    let draws: Vec<(u64, Draw)> = runs.iter().map(|n| (*n, draw(seed, *n))).collect();
    let results = in_parallel(
        draws
            .iter()
            .map(|(_, d)| {
                let d = d.clone();
                Box::pin(async move {
                    let timeout = Duration::from_secs(300);
                    tokio::time::timeout(timeout, run(d.op, options(d.scale), d.faults, true))
                        .await
                        .unwrap_or_else(|_| Run {
                            steps: Vec::new(),
                            problems: vec![format!("hung for more than {timeout:?}")],
                            log: Vec::new(),
                            injected: 0,
                        })
                }) as Job<Run>
            })
            .collect(),
    )
    .await;
    let known: Vec<&str> = EXPECTED_FAILURES
        .iter()
        .map(|(id, _)| id.split('/').next().unwrap_or(id))
        .collect();
    let (mut failed, mut expected, mut injected, mut passes) = (Vec::new(), 0, 0, Vec::new());
    for ((n, d), r) in draws.iter().zip(&results) {
        injected += r.injected;
        passes.push(r.log.iter().filter(|l| l.starts_with("pass ")).count());
        if r.problems.is_empty() {
            continue;
        }
        if known.contains(&d.op.as_str()) {
            expected += 1;
            continue;
        }
        failed.push(format!(
            "MATRIX_SEED={seed} MATRIX_RUN={n}: {} at time scale {:.3}, faults {:?}:\n  {}\n  passes:\n    {}",
            d.op.as_str(),
            d.scale,
            d.faults,
            r.problems.join("\n  "),
            r.log.join("\n    ")
        ));
    }
    passes.sort_unstable();
    println!(
        "randomized matrix: {} runs (seed {seed}), {injected} faults hit a call, passes per run (the faulted ones included): median {}, max {}; {} runs of operations with a known bug failed; {} failed otherwise; {:.1?}",
        draws.len(),
        passes.get(passes.len() / 2).copied().unwrap_or(0),
        passes.last().copied().unwrap_or(0),
        expected,
        failed.len(),
        started.elapsed()
    );
    assert!(
        failed.is_empty(),
        "{} runs broke a promise:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
