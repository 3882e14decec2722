//! `status/runtime.yaml` under a VM that changes its report every second: the status branch
//! grows with the fleet's state, not with the VM's words. Prints the growth it measures
//! (`cargo test -p tether --lib flapping -- --nocapture`; docs/benchmarks.md).

use super::*;
use crate::audit::commit::{self, Identity, Target};
use crate::runtime::Config;
use crate::runtime::wire::Report;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

fn example_fleet() -> Fleet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet");
    let snapshot = crate::source::dir::read(&dir).expect("example fleet");
    tether_schema::load_fleet(&snapshot.files).expect("valid example fleet")
}

fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| {
            let e = e.expect("entry");
            let meta = e.metadata().expect("metadata");
            if meta.is_dir() {
                bytes_under(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

#[test]
fn a_vm_flapping_its_report_every_second_for_an_hour_grows_the_status_branch_a_few_commits() {
    let fleet = example_fleet();
    let service = Service::new(Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        url: String::new(),
        binary_url: String::new(),
        poll: Duration::from_secs(10),
        wave_timeout: Duration::from_secs(60),
    });
    for agent in fleet.agents.values() {
        service.serve(agent.name.as_str(), Some(service.desired_of(agent)));
    }
    let names: Vec<String> = fleet.agents.keys().map(|n| n.as_str().to_owned()).collect();
    let flapper = names[0].clone();
    let dir = tempfile::tempdir().expect("tmp");
    git2::Repository::init_bare(dir.path()).expect("init");
    let id = Identity::default();
    let target = Target {
        repo: dir.path(),
        remote: None,
        branch: "tether/status",
        source_branch: "main",
        identity: &id,
    };
    let mut rng = SmallRng::seed_from_u64(28);
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let (mut commits, mut largest) = (0, 0);
    for second in 0..3600u64 {
        let now = t0 + Duration::from_secs(second);
        let flap = Report {
            version: service.desired(&flapper).map(|d| d.version),
            healthy: rng.random_bool(0.5),
            error: Some(format!(
                "boom #{second}\nTether-Source-Commit: {}\n{}",
                "f".repeat(40),
                "x".repeat(rng.random_range(0..3000))
            )),
        };
        service.record(&flapper, flap.checked().expect("within bounds"), now);
        if second % 10 == 0 {
            for name in &names[1..] {
                let ok = Report {
                    version: service.desired(name).map(|d| d.version),
                    healthy: true,
                    error: None,
                };
                service.record(name, ok, now);
            }
            let text = to_yaml(&document(&service, &fleet, now));
            largest = largest.max(text.len());
            let files = BTreeMap::from([(FILE.to_owned(), text)]);
            if commit::write(&target, &files, &format!("pass at {second}s"))
                .expect("write")
                .is_some()
            {
                commits += 1;
            }
        }
    }
    let bytes = bytes_under(dir.path());
    println!(
        "flapping VM, 1 h simulated, 1 report/s, a pass every 10 s, {} agents: {commits} status commits, largest runtime.yaml {largest} bytes, repository {bytes} bytes",
        names.len()
    );
    assert!(commits <= 8, "{commits} commits");
    assert!(largest < 4096, "{largest} bytes");
}
