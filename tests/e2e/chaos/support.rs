//! What the chaos runs share to drive tether: a generated fleet repository, the real
//! `tether apply --git` process (run to its end, or SIGKILLed at a chosen moment) and a seeded
//! random source. The checks of what is left afterwards live in `checks.rs`.

use crate::common::commit_all;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tether::sandbox::stack::Stack;

/// The fleet's `metadata.name`: the `tether/fleet` label of its servers.
pub const FLEET: &str = "chaos";

/// The name of the `i`-th agent ever created by a run.
pub fn agent_name(i: usize) -> String {
    format!("agent-{i:03}")
}

/// A git repository holding the fleet: `fleet.yaml` with budgets that let one pass delete the
/// whole fleet and quarantine off (the runs are about faults, not the breaker or the grace
/// period), and one minimal spec per agent.
pub struct FleetRepo {
    dir: tempfile::TempDir,
}

impl FleetRepo {
    /// A repository with `fleet.yaml` and no agents yet (nothing committed).
    pub fn new() -> FleetRepo {
        let dir = tempfile::tempdir().expect("temp dir for the fleet repository");
        let fleet = format!(
            "apiVersion: tether/v1\nkind: Fleet\nmetadata: {{name: {FLEET}}}\nspec:\n  defaults: {{server: {{type: cpx11, location: fsn1, image: ubuntu-24.04}}}}\n  tailscale: {{tags: [\"tag:agent\"]}}\n  policy: {{prune: true, quarantineGrace: \"0\", maxDeletionsPerRun: 1000, maxDeletionPercent: 100, maxDeletionsPerHour: 10000}}\n  catalog: {{serverTypes: [cpx11], locations: [fsn1], images: [ubuntu-24.04]}}\n"
        );
        std::fs::write(dir.path().join("fleet.yaml"), fleet).expect("write fleet.yaml");
        std::fs::create_dir(dir.path().join("agents")).expect("create agents/");
        std::fs::write(dir.path().join("agents/.gitkeep"), "").expect("write agents/.gitkeep");
        FleetRepo { dir }
    }

    /// The repository's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Makes `agents/` hold exactly one spec per name in `agents`, commits it on `main` and
    /// returns the commit id.
    pub fn commit_agents(&self, agents: &BTreeSet<String>, message: &str) -> String {
        let folder = self.path().join("agents");
        for entry in std::fs::read_dir(&folder).expect("read agents/") {
            let path = entry.expect("agents/ entry").path();
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if path.extension().is_some_and(|e| e == "yaml") && !agents.contains(name) {
                std::fs::remove_file(&path).expect("remove a spec");
            }
        }
        for name in agents {
            let spec = format!(
                "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: {name}}}\nspec: {{subscription: sub_{}, runtime: {{version: '1.0.0'}}}}\n",
                name.replace('-', "_")
            );
            std::fs::write(folder.join(format!("{name}.yaml")), spec).expect("write a spec");
        }
        commit_all(self.path(), "main", message)
    }
}

/// A small seeded random source (SplitMix64): the same seed gives the same run.
pub struct SeededRng(u64);

impl SeededRng {
    /// A source starting from `seed`.
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// How one `tether apply` run ended.
#[derive(Debug)]
pub struct ApplyRun {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Standard output (the account of the apply).
    pub stdout: String,
    /// Standard error (the plan and the log).
    pub stderr: String,
    /// Wall time of the process.
    pub elapsed: Duration,
}

impl ApplyRun {
    /// Whether tether said it had nothing left to do: exit 0 and an empty account.
    pub fn quiet(&self) -> bool {
        self.code == Some(0) && self.stdout.contains("Apply: 0 done, 0 failed, 0 skipped.")
    }

    /// The `Apply: …` line, or the last line of standard error when there is none.
    pub fn summary(&self) -> String {
        self.stdout
            .lines()
            .find(|l| l.starts_with("Apply: "))
            .or_else(|| self.stderr.lines().last())
            .unwrap_or("")
            .to_owned()
    }
}

/// `tether apply --git <repo> --rev main` against the emulators ([`crate::common::apply_command`]).
fn apply_command(stack: &Stack, repo: &Path, extra: &[&str]) -> tokio::process::Command {
    crate::common::apply_command(stack, repo, extra)
}

/// Runs one apply to its end.
pub async fn apply(stack: &Stack, repo: &Path, extra: &[&str]) -> ApplyRun {
    let mut cmd = apply_command(stack, repo, extra);
    let started = Instant::now();
    let out = cmd.output().await.expect("run tether apply");
    ApplyRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Starts an apply and SIGKILLs it after `delay`; returns whether it was still running then
/// (false: it had already exited, and nothing was killed).
pub async fn apply_killed_after(stack: &Stack, repo: &Path, delay: Duration) -> bool {
    let mut child = apply_command(stack, repo, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tether apply");
    tokio::time::sleep(delay).await;
    let running = child.try_wait().expect("poll tether apply").is_none();
    if running {
        child.start_kill().expect("SIGKILL tether apply");
    }
    child.wait().await.expect("reap tether apply");
    running
}

/// Applies again and again until a pass has nothing left to do, at most `max_passes` times.
pub struct Converged {
    /// Every run, in order (the last one is the quiet pass when `quiet`).
    pub runs: Vec<ApplyRun>,
    /// Whether a pass ended with nothing left to do.
    pub quiet: bool,
    /// Wall time of all passes (the processes' lifetimes).
    pub elapsed: Duration,
}

impl Converged {
    /// One line per pass: exit code, wall time and tether's summary.
    pub fn log(&self) -> String {
        self.runs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                format!(
                    "  pass {}: exit {:?} in {:.1?}: {}",
                    i + 1,
                    r.code,
                    r.elapsed,
                    r.summary()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs [`apply`] until a pass is quiet or `max_passes` ran.
pub async fn apply_until_quiet(
    stack: &Stack,
    repo: &Path,
    extra: &[&str],
    max_passes: usize,
) -> Converged {
    let mut runs = Vec::new();
    while runs.len() < max_passes {
        let run = apply(stack, repo, extra).await;
        let quiet = run.quiet();
        runs.push(run);
        if quiet {
            break;
        }
    }
    Converged {
        quiet: runs.last().is_some_and(ApplyRun::quiet),
        elapsed: runs.iter().map(|r| r.elapsed).sum(),
        runs,
    }
}
