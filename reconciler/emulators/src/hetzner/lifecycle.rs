//! How servers move through their states over time. Each operation records its actions and
//! returns timed [`Step`]s; one tokio task per operation sleeps until each step and applies it
//! under the model lock, then calls the machine hooks with the lock released.
//!
//! create → `initializing` → (`starting` → `running`) or `off`; poweron → `starting` →
//! `running`; poweroff → `off`; shutdown → `stopping` → `off`; reboot and reset keep the
//! status but restart the machine (`stopped`, then `booted` again); rebuild → `rebuilding` →
//! `running` with a wiped disk (`rebuilt`, then a first boot); change_type keeps `off`;
//! delete → `deleting` → gone. `booted` fires `boot_delay` after a server reaches `running`;
//! `stopped` when a booted server goes `off` or away.

use super::catalog::ServerType;
use super::shared::Shared;
use super::state::{Command, Effect, HookEvent, Model};
use super::timing::Timing;
use crate::hetzner::ServerStatus;
use std::sync::Arc;
use tokio::time::{Instant, sleep_until};

/// Effects to apply at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// When.
    pub at: Instant,
    /// What, in order.
    pub effects: Vec<Effect>,
}

/// The actions an operation started and the steps that finish it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// Action ids, the main one first (a create's `start_server` second).
    pub actions: Vec<u64>,
    /// Timed steps, in order.
    pub steps: Vec<Step>,
}

impl Scheduled {
    /// The main action as the API answers it (`{"action": …}` of the request that scheduled it).
    pub fn main_action(&self, model: &Model, now: Instant) -> Option<serde_json::Value> {
        self.actions
            .first()
            .and_then(|a| model.actions.get(a))
            .map(|a| super::wire::action(a, now))
    }
}

fn step(at: Instant, effects: Vec<Effect>) -> Step {
    Step { at, effects }
}

/// Starts a server that is `off`: `starting` now, `running` after `start`, then `booted`.
fn start_steps(server: u64, action: u64, from: Instant, t: &Timing) -> Vec<Step> {
    let running = from + t.latencies.start;
    vec![
        step(
            running,
            vec![
                Effect::Finish(action),
                Effect::Status(server, ServerStatus::Running),
            ],
        ),
        step(running + t.boot_delay, vec![Effect::Boot(server)]),
    ]
}

/// A new server (already inserted as `initializing`) is created, then started if asked.
pub fn create(model: &mut Model, server: u64, start: bool, t: &Timing, now: Instant) -> Scheduled {
    let created = now + t.latencies.create;
    let create = model.new_action(server, Command::CreateServer, now, created);
    let after = if start {
        ServerStatus::Starting
    } else {
        ServerStatus::Off
    };
    let mut steps = vec![step(
        created,
        vec![Effect::Finish(create), Effect::Status(server, after)],
    )];
    let mut actions = vec![create];
    if start {
        let ends = created + t.latencies.start;
        let action = model.new_action(server, Command::StartServer, created, ends);
        steps.extend(start_steps(server, action, created, t));
        actions.push(action);
    }
    Scheduled { actions, steps }
}

/// One of the power actions: `poweron`, `poweroff`, `shutdown`, `reboot`, `reset`.
pub fn power(
    model: &mut Model,
    server: u64,
    command: Command,
    t: &Timing,
    now: Instant,
) -> Scheduled {
    let status = model.servers.get(&server).map(|s| s.status);
    let l = &t.latencies;
    let duration = match command {
        Command::StartServer => l.start,
        Command::StopServer => l.stop,
        Command::ShutdownServer => l.shutdown,
        _ => l.reboot,
    };
    let action = model.new_action(server, command, now, now + duration);
    let done = now + duration;
    let steps = match (command, status) {
        (Command::StartServer, Some(ServerStatus::Off)) => {
            set_status(model, server, ServerStatus::Starting);
            start_steps(server, action, now, t)
        }
        (Command::StopServer, _) => vec![step(
            done,
            vec![
                Effect::Finish(action),
                Effect::Status(server, ServerStatus::Off),
            ],
        )],
        (Command::ShutdownServer, Some(ServerStatus::Running)) => {
            set_status(model, server, ServerStatus::Stopping);
            vec![step(
                done,
                vec![
                    Effect::Finish(action),
                    Effect::Status(server, ServerStatus::Off),
                ],
            )]
        }
        // A reboot or reset of a running server restarts the machine: its node drops off and
        // comes back once it has booted again.
        (Command::RebootServer | Command::ResetServer, Some(ServerStatus::Running)) => vec![
            step(done, vec![Effect::Finish(action), Effect::Halt(server)]),
            step(done + t.boot_delay, vec![Effect::Boot(server)]),
        ],
        _ => vec![step(done, vec![Effect::Finish(action)])],
    };
    Scheduled {
        actions: vec![action],
        steps,
    }
}

/// Changes the type of a server that is `off`, with its new disk size.
pub fn change_type(
    model: &mut Model,
    server: u64,
    new_type: ServerType,
    disk: u64,
    t: &Timing,
    now: Instant,
) -> Scheduled {
    let done = now + t.latencies.change_type;
    let action = model.new_action(server, Command::ChangeServerType, now, done);
    Scheduled {
        actions: vec![action],
        steps: vec![step(
            done,
            vec![
                Effect::Finish(action),
                Effect::ChangeType(server, Box::new(new_type), disk),
            ],
        )],
    }
}

/// Rebuilds a server from `image` with `user_data` (as long as a create takes): powered off
/// and `rebuilding` now, its disk wiped (the `rebuilt` hook), then `running` and booted
/// again, a first boot that runs the new cloud-init. Returns the hook calls to make now.
pub fn rebuild(
    model: &mut Model,
    server: u64,
    image: super::catalog::Image,
    user_data: Option<String>,
    t: &Timing,
    now: Instant,
) -> (Scheduled, Vec<HookEvent>) {
    let done = now + t.latencies.create;
    let action = model.new_action(server, Command::RebuildServer, now, done);
    let mut events: Vec<HookEvent> = model.apply(&Effect::Halt(server)).into_iter().collect();
    if let Some(s) = model.servers.get_mut(&server) {
        s.status = ServerStatus::Rebuilding;
        s.image = image;
        s.user_data = user_data;
        events.push(HookEvent::Rebuilt(server));
    }
    let steps = vec![
        step(
            done,
            vec![
                Effect::Finish(action),
                Effect::Status(server, ServerStatus::Running),
            ],
        ),
        step(done + t.boot_delay, vec![Effect::Boot(server)]),
    ];
    (
        Scheduled {
            actions: vec![action],
            steps,
        },
        events,
    )
}

/// Deletes a server: `deleting` now, gone after `delete`.
pub fn delete(model: &mut Model, server: u64, t: &Timing, now: Instant) -> Scheduled {
    let done = now + t.latencies.delete;
    let action = model.new_action(server, Command::DeleteServer, now, done);
    set_status(model, server, ServerStatus::Deleting);
    Scheduled {
        actions: vec![action],
        steps: vec![step(
            done,
            vec![Effect::Finish(action), Effect::Remove(server)],
        )],
    }
}

fn set_status(model: &mut Model, server: u64, status: ServerStatus) {
    if let Some(s) = model.servers.get_mut(&server) {
        s.status = status;
    }
}

/// Runs `steps` on a tokio task, stopping early when the emulator shuts down.
pub fn run(shared: &Arc<Shared>, steps: Vec<Step>) {
    let shared = shared.clone();
    let mut stop = shared.stop.subscribe();
    if *stop.borrow() {
        return;
    }
    tokio::spawn(async move {
        for step in steps {
            tokio::select! {
                () = sleep_until(step.at) => {}
                _ = stop.changed() => return,
            }
            let events: Vec<_> = {
                let mut model = shared.model();
                step.effects.iter().filter_map(|e| model.apply(e)).collect()
            };
            shared.fire(events);
        }
    });
}
