//! The failure matrix (deterministic simulation, in the way FoundationDB and TigerBeetle test
//! themselves): every multi-step operation tether performs is run once without faults to list
//! its provider calls, then once per call and per fault — an error answer, a lost answer, a
//! process kill right after the call — followed by fault-free passes until they are quiet. The
//! oracle (`oracle.rs`) then checks, from the emulators and the status branch: the desired
//! state, no duplicate, no orphan, no live key, no half state reported healthy, a complete
//! record, and a foreign server and device untouched.
//!
//! Each failing case prints its identifier `<operation>/<step>:<call>/<fault>` (the case is
//! deterministic: run it again with `MATRIX_CASE=<identifier>`) with every broken promise;
//! the test fails with all of them at once. Cases that fail because of a known bug being fixed
//! elsewhere are listed in [`EXPECTED_FAILURES`], each naming its bug; such a case that starts
//! passing fails the test too, so the list cannot rot.

mod answers;
mod inject;
mod operations;
mod oracle;
mod random;
mod world;

use inject::{Call, Fault, Script};
use operations::Operation;
use oracle::ForeignBaseline;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether::sandbox::stack::StackOptions;
use world::{PassEnd, World};

/// Fault-free passes after the faulted one before the world must be quiet.
const MAX_PASSES: usize = 6;
/// Quiet passes while the world still moves before it must be as desired.
const MAX_WAITS: usize = 10;
/// Cases run at once.
const PARALLEL: usize = 8;
/// Longest a case may take before it counts as hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(90);

/// Cases that fail today because of a known bug another change fixes: `(case, bug)`. Delete
/// an entry once its fix is merged; an entry whose case passes fails the matrix.
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

/// One case: an operation, a step of it and the fault injected there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Case {
    op: Operation,
    step: usize,
    call: &'static str,
    fault: Fault,
}

impl Case {
    fn id(&self) -> String {
        format!(
            "{}/{}:{}/{}",
            self.op.as_str(),
            self.step,
            self.call,
            self.fault.as_str()
        )
    }
}

/// What one run of an operation showed.
struct Run {
    /// The steps of the operation's pass.
    steps: Vec<Call>,
    /// Every broken promise.
    problems: Vec<String>,
    /// One line per pass.
    log: Vec<String>,
    /// Faults that hit a call, in every pass.
    injected: usize,
}

/// Prepares `op`'s world, runs its pass with `faults` (by step; more than one map: the passes
/// after it too) on the emulators of `options`, then fault-free passes until quiet, and checks
/// everything the oracle knows. A quiet pass while the world is still moving (a server
/// starting, a VM booting) is followed, after a pause of the world's own timing, by another
/// pass, at most [`MAX_WAITS`] times: only what stays wrong is a broken promise.
/// `seconds_apart` starts every pass in a new second of the wall clock ([`world::next_second`]),
/// for worlds whose VMs boot in less than a second.
async fn run(
    op: Operation,
    options: StackOptions,
    faults: Vec<BTreeMap<usize, Fault>>,
    seconds_apart: bool,
) -> Run {
    let settle = options.latencies.create + options.latencies.start + options.boot_delay;
    let mut world = World::start(options, op.policy()).await;
    let mut log: Vec<String> = op
        .prepare(&mut world)
        .await
        .into_iter()
        .map(|l| format!("prepare: {l}"))
        .collect();
    let foreign = ForeignBaseline::take(&world);
    world::next_second().await;
    let mut answered = BTreeSet::new();
    let mut problems = Vec::new();
    let mut steps = Vec::new();
    let (mut quiet, mut injected, mut busy, mut waits) = (false, 0, 0, 0);
    let mut scripts = faults
        .into_iter()
        .map(Script::new)
        .chain(std::iter::repeat_with(Script::clean));
    for i in 0.. {
        let script = scripts.next().expect("endless scripts");
        if seconds_apart {
            world::next_second().await;
        }
        let end = world.pass(&script).await;
        log.push(format!("pass {}: {}", i + 1, end.summary()));
        injected += script.calls().iter().filter(|c| c.fault.is_some()).count();
        if let PassEnd::Done(_) = end {
            answered.extend(script.answered_actions());
            problems.extend(
                oracle::truth_problems(&world, if i == 0 { op.target() } else { op.after() })
                    .into_iter()
                    .map(|p| format!("after pass {}: {p}", i + 1)),
            );
        }
        if i == 0 {
            steps = script.calls();
            op.interlude(&world);
        } else if end.quiet() {
            if waits < MAX_WAITS
                && !oracle::world_problems(&world, op.desired(), &foreign).is_empty()
            {
                waits += 1;
                tokio::time::sleep(settle).await;
                continue;
            }
            quiet = true;
            break;
        }
        busy += 1;
        if busy > MAX_PASSES {
            break;
        }
    }
    if !quiet {
        problems.push(format!(
            "not quiet after {MAX_PASSES} passes after the faulted one"
        ));
    }
    problems.extend(oracle::world_problems(&world, op.desired(), &foreign));
    problems.extend(oracle::record_problems(&world, &answered));
    world.stack.shutdown().await;
    Run {
        steps,
        problems,
        log,
        injected,
    }
}

/// Runs `case`: its fault at its step, and checks the step is the call the recording saw.
async fn run_case(case: Case) -> Vec<String> {
    let faults = vec![BTreeMap::from([(case.step, case.fault)])];
    let ran =
        tokio::time::timeout(CASE_TIMEOUT, run(case.op, world::instant(), faults, false)).await;
    let Ok(mut ran) = ran else {
        return vec![format!("hung for more than {CASE_TIMEOUT:?}")];
    };
    match ran.steps.get(case.step) {
        Some(call) if call.method == case.call => {}
        Some(call) => ran.problems.insert(
            0,
            format!(
                "nondeterministic: step {} was {call}, the recording saw {}",
                case.step, case.call
            ),
        ),
        None => ran.problems.insert(
            0,
            format!("nondeterministic: step {} was never reached", case.step),
        ),
    }
    if !ran.problems.is_empty() {
        ran.problems
            .push(format!("passes:\n    {}", ran.log.join("\n    ")));
    }
    ran.problems
}

/// The fault-free run of `op`: its steps, and its own problems.
async fn record(op: Operation) -> (Operation, Run) {
    let ran = tokio::time::timeout(CASE_TIMEOUT, run(op, world::instant(), Vec::new(), false))
        .await
        .unwrap_or_else(|_| Run {
            steps: Vec::new(),
            problems: vec![format!("hung for more than {CASE_TIMEOUT:?}")],
            log: Vec::new(),
            injected: 0,
        });
    (op, ran)
}

/// A case or a recording, to run alongside others.
type Job<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Runs `jobs` with at most [`PARALLEL`] at once; their results in the jobs' order.
async fn in_parallel<T: Send + 'static>(jobs: Vec<Job<T>>) -> Vec<T> {
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut set = tokio::task::JoinSet::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let permits = permits.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore open");
            (i, job.await)
        });
    }
    let mut results: Vec<(usize, T)> = set.join_all().await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Whether `id` is selected by `MATRIX_CASE` (a prefix of case identifiers), when set.
fn selected(id: &str) -> bool {
    std::env::var("MATRIX_CASE").map_or(true, |want| id.starts_with(&want))
}

/// Whether `MATRIX_CASE`, when set, selects cases of `op`.
fn wanted(op: Operation) -> bool {
    std::env::var("MATRIX_CASE").map_or(true, |want| {
        want == op.as_str() || want.starts_with(&format!("{}/", op.as_str()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_survives_an_error_a_lost_answer_and_a_kill_at_every_provider_call() {
    let started = Instant::now();
    let ops: Vec<Operation> = Operation::ALL
        .into_iter()
        .filter(|op| wanted(*op))
        .collect();
    let recordings = in_parallel(
        ops.into_iter()
            .map(|op| Box::pin(record(op)) as Job<(Operation, Run)>)
            .collect(),
    )
    .await;
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cases = Vec::new();
    for (op, ran) in &recordings {
        if !ran.problems.is_empty() {
            let mut problems = ran.problems.clone();
            problems.push(format!("passes:\n    {}", ran.log.join("\n    ")));
            failures.insert(format!("{}/clean", op.as_str()), problems);
        }
        for (step, call) in ran.steps.iter().enumerate() {
            for fault in Fault::ALL {
                let case = Case {
                    op: *op,
                    step,
                    call: call.method,
                    fault,
                };
                if selected(&case.id()) {
                    cases.push(case);
                }
            }
        }
    }
    let results = in_parallel(
        cases
            .iter()
            .cloned()
            .map(|case| Box::pin(run_case(case)) as Job<Vec<String>>)
            .collect(),
    )
    .await;
    for (case, problems) in cases.iter().zip(results) {
        if !problems.is_empty() {
            failures.insert(case.id(), problems);
        }
    }
    let steps: usize = recordings.iter().map(|(_, r)| r.steps.len()).sum();
    println!(
        "failure matrix: {} operations, {steps} steps × {} faults = {} cases in {:.1?}",
        recordings.len(),
        Fault::ALL.len(),
        cases.len(),
        started.elapsed()
    );
    for (op, ran) in &recordings {
        let calls: Vec<String> = ran.steps.iter().map(ToString::to_string).collect();
        println!("  {}: {}", op.as_str(), calls.join(" → "));
    }
    let expected: BTreeMap<&str, &str> = EXPECTED_FAILURES.iter().copied().collect();
    let unexpected: Vec<String> = failures
        .iter()
        .filter(|(id, _)| !expected.contains_key(id.as_str()))
        .map(|(id, problems)| format!("{id}:\n  {}", problems.join("\n  ")))
        .collect();
    let ran: BTreeSet<String> = cases.iter().map(Case::id).collect();
    let whole = std::env::var("MATRIX_CASE").is_err();
    let mended: Vec<String> = expected
        .iter()
        .filter(|(id, _)| !failures.contains_key(**id) && (whole || ran.contains(**id)))
        .map(|(id, bug)| {
            if ran.contains(*id) || id.ends_with("/clean") {
                format!("{id} passes now ({bug}): delete it from EXPECTED_FAILURES")
            } else {
                format!("{id} is no case of the matrix any more ({bug}): delete it from EXPECTED_FAILURES")
            }
        })
        .collect();
    for (id, bug) in &expected {
        if let Some(problems) = failures.get(*id) {
            let first = problems.first().map_or("", String::as_str);
            println!(
                "expected failure {id} ({bug}): {first} (and {} more)",
                problems.len().saturating_sub(1)
            );
        }
    }
    assert!(
        unexpected.is_empty() && mended.is_empty(),
        "{} failing cases, {} expected failures passing:\n{}\n{}",
        unexpected.len(),
        mended.len(),
        unexpected.join("\n"),
        mended.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remedy_is_not_held_back_by_another_fleets_device_with_the_agents_hostname() {
    // The world of every case holds another fleet's online device named like the agent, with
    // its tag; the agent's own VM never enrolled.
    let ran = run(Operation::Rekey, world::instant(), Vec::new(), false).await;
    let log = ran.log.join("\n");
    assert!(
        ran.problems.is_empty(),
        "{}\n{log}",
        ran.problems.join("\n")
    );
    assert!(log.contains("heal alpha done"), "the re-key ran:\n{log}");
    assert!(!log.contains("online again"), "{log}");
}
