//! Benchmark: the daemon's whole reconcile pass (status branch read, fleet from the cache,
//! inventory reads from the emulators, plan, apply, refresh, status documents and the status
//! commit through git2) at N agents: a no-op pass, a bare inventory read, and a pass after a
//! commit changing 1 % of the agents.
//!
//! Run with `cargo bench -p tether --bench pass`. `TETHER_BENCH_AGENTS` (default
//! `1000,10000,30000`) lists the fleet sizes; `TETHER_BENCH_RUNS` (default 5) how many no-op
//! passes and reads each median is taken over. CPU times are the pass thread's; the emulators
//! run on threads of their own.

use tether::sandbox::pass_bench::{PassCosts, measure};

fn main() {
    let sizes: Vec<usize> = std::env::var("TETHER_BENCH_AGENTS")
        .unwrap_or_else(|_| "1000,10000,30000".to_owned())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("TETHER_BENCH_AGENTS: numbers separated by commas")
        })
        .collect();
    let runs: usize = std::env::var("TETHER_BENCH_RUNS")
        .unwrap_or_else(|_| "5".to_owned())
        .parse()
        .expect("TETHER_BENCH_RUNS: a number");
    for n in sizes {
        print(&measure(n, runs).expect("pass benchmark"));
    }
}

fn print(c: &PassCosts) {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} agents: no-op pass wall {:.0} ms, CPU {:.0} ms; inventory reads alone wall {:.0} ms, CPU {:.0} ms; no-op beyond the reads: CPU {:.0} ms",
        c.agents,
        ms(c.no_op.wall),
        ms(c.no_op.cpu),
        ms(c.reads.wall),
        ms(c.reads.cpu),
        ms(c.no_op.cpu.saturating_sub(c.reads.cpu)),
    );
    println!(
        "  1 % change ({} created, {} relabelled): wall {:.0} ms, CPU {:.0} ms",
        c.created,
        c.relabelled,
        ms(c.change.wall),
        ms(c.change.cpu),
    );
}
