//! Benchmark: converge N new agents against the emulators with real-world timing (10 s create
//! actions, the realistic start, a 30 s boot and enrolment), scaled down, and compare the wall
//! time with one agent alone; count the Hetzner and Tailscale requests per created server.
//!
//! Run with `cargo bench -p tether --bench converge`. `TETHER_BENCH_AGENTS` (default `50,500`)
//! lists the fleet sizes; `TETHER_BENCH_TIME_SCALE` (default `0.05`) how fast time runs. Times
//! are printed at full scale.

use tether::sandbox::bench::{Comparison, compare};

fn main() {
    let sizes: Vec<usize> = std::env::var("TETHER_BENCH_AGENTS")
        .unwrap_or_else(|_| "50,500".to_owned())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("TETHER_BENCH_AGENTS: numbers separated by commas")
        })
        .collect();
    let scale: f64 = std::env::var("TETHER_BENCH_TIME_SCALE")
        .unwrap_or_else(|_| "0.05".to_owned())
        .parse()
        .expect("TETHER_BENCH_TIME_SCALE: a number such as 0.05");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("time scale {scale}; times at full scale");
    for n in sizes {
        let c = rt.block_on(compare(n, scale)).expect("converge");
        print(&c);
    }
}

fn print(c: &Comparison) {
    let f = &c.fleet;
    println!(
        "{} agents: wall {:.1} s; one agent alone {:.1} s; rate-limit floor {:.1} s; wall / (one + floor) = {:.2}",
        f.agents,
        f.wall.as_secs_f64(),
        c.single.wall.as_secs_f64(),
        c.rate_limit_floor.as_secs_f64(),
        c.flatness()
    );
    println!(
        "  Hetzner {} requests ({:.2} per server): {:?}",
        f.hetzner_requests,
        f.hetzner_per_server(),
        f.hetzner_routes
    );
    println!(
        "  Tailscale {} requests ({:.2} per server): {:?}",
        f.tailscale_requests,
        f.tailscale_per_server(),
        f.tailscale_routes
    );
}
