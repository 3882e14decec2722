//! `tether sandbox --demo`, the README's first command, run as a newcomer would.

use crate::common::{tether, workspace};

fn summary_value(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("summary line `{label}` missing:\n{out}"))
}

#[test]
fn the_demo_runs_to_completion_and_its_summary_matches_the_emulators() {
    let run = tether(&workspace(), &["sandbox", "--demo"]);
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let out = &run.stdout;
    for step in [
        "Billing adds five subscriptions",
        "tether plan",
        "tether apply",
        "A subscription ends",
        "deletes acme-staging's VM by hand",
        "detects the drift and repairs it",
        "a cancellation overtakes a delayed update",
        "(nothing re-created)",
        "tether refuses",
        "Summary",
    ] {
        assert!(out.contains(step), "step `{step}` not narrated:\n{out}");
    }
    let agents: usize = summary_value(out, "agents in the last applied spec")
        .parse()
        .expect("number");
    let servers: usize = summary_value(out, "servers in the Hetzner project")
        .parse()
        .expect("number");
    let devices: usize = summary_value(out, "devices online in the tailnet")
        .parse()
        .expect("number");
    let commits: usize = summary_value(out, "status commits")
        .parse()
        .expect("number");
    assert_eq!(
        (agents, servers, devices),
        (4, 6, 4),
        "tether's view and the emulated cloud agree: four agents online, the two cancelled ones quarantined"
    );
    assert_eq!(
        commits, 6,
        "two of them for the Stripe sign-up and cancellation"
    );
    let log: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("$ git log --oneline tether/status"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(log.len(), commits, "{log:?}");
    assert!(
        log[0].contains("refused, nothing changed") && log[5].contains("+5 created"),
        "{log:?}"
    );
    assert!(
        out.contains("nothing was deleted: 6 servers before, 6 after"),
        "{out}"
    );
    assert!(
        !out.contains("tskey-auth-") && !out.contains("tskey-client-"),
        "no secret in the narration"
    );
}
