//! `module-graph`: fails when the modules at any level of a crate refer to each other in a
//! loop, naming each loop with the file and line of its edges.
//!
//! `cargo run -p tether-e2e --bin module-graph` checks the workspace's crates (loops listed in
//! `KNOWN_LOOPS` are reported but tolerated until they are broken); `-- NAME=ROOT…` checks the
//! crates with those root files instead; `--order` also prints each crate's top-level modules
//! in layers, lowest first.

use module_graph::{KNOWN_LOOPS, Report};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let order = args.iter().any(|a| a == "--order");
    let crates: Vec<(&str, &str)> = args.iter().filter_map(|a| a.split_once('=')).collect();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let reports = if crates.is_empty() {
        module_graph::check_workspace(manifest.parent().unwrap_or(manifest))
    } else {
        crates
            .iter()
            .map(|(name, root)| module_graph::check(name, Path::new(root)))
            .collect()
    };
    match reports {
        Ok(reports) => verdict(&reports, order, crates.is_empty()),
        Err(e) => {
            eprintln!("module-graph: {e}");
            ExitCode::from(2)
        }
    }
}

fn verdict(reports: &[Report], order: bool, workspace: bool) -> ExitCode {
    let mut failed = false;
    for report in reports {
        for found in &report.loops {
            if workspace && found.is_known() {
                eprintln!("known (to be broken, see KNOWN_LOOPS): {}", found.title());
            } else {
                eprintln!("{found}\n");
                failed = true;
            }
        }
        println!(
            "{}: {} modules, {} sibling edges, {} loops",
            report.crate_name,
            report.modules,
            report.edges,
            report.loops.len()
        );
        if order {
            for (i, layer) in report.layers.iter().enumerate() {
                println!("  {i}: {}", layer.join(", "));
            }
        }
    }
    if workspace {
        for (crate_name, parent, members) in module_graph::stale_known_loops(reports) {
            eprintln!(
                "{crate_name}: the loop of {} in `{parent}` is gone: remove it from KNOWN_LOOPS \
                 ({} entries) in tests/module_graph/lib.rs",
                members.join(", "),
                KNOWN_LOOPS.len()
            );
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
