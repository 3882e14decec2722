//! Batched action polling: every caller waiting for actions registers its ids here, and one
//! poller asks `GET /actions?id=…&id=…` for all pending ids at once, 50 per request, each tick.
//! A hundred concurrent creates therefore cost a handful of polls, not a hundred per tick.
//!
//! The ticks back off like Hetzner's own clients ([`Cadence`]: start at the poll interval,
//! double after every tick, up to [`CADENCE_CAP_FACTOR`] times the interval); when the running
//! actions' progress says they end later than that ([`remaining`]: the last of them), the tick
//! waits for them (up to the cap). Each tick
//! asks for the oldest ids first, stopping at the first request in which nothing finished
//! ([`Waiters::deliver`] says how many did): actions of one kind finish in the order they
//! started, so while the oldest are still running the younger ones need not be asked about.
//!
//! Every wait has a deadline: an action still `running` longer than the client's action
//! timeout after it was first waited for fails its waiters with [`WaitError::TimedOut`]
//! (naming the action and its command); the other actions keep being polled.

use super::Error;
use crate::cloud::{Action, ActionId};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;

/// Most ids in one `GET /actions` request.
pub const IDS_PER_REQUEST: usize = 50;

/// An estimated end is waited for this many times over, so the tick lands just after it.
const ETA_MARGIN: f64 = 1.1;

/// The poll interval grows up to this many times the configured interval.
pub const CADENCE_CAP_FACTOR: u32 = 20;

/// The time between ticks: `base` for the first, doubling after each, capped at
/// `base × CADENCE_CAP_FACTOR`; it starts again at `base` whenever the poller starts (nothing
/// was waiting before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    base: Duration,
    next: Duration,
}

impl Cadence {
    /// A cadence starting at `base`.
    pub fn new(base: Duration) -> Self {
        Cadence { base, next: base }
    }

    /// The pause before the next tick; the one after it is twice as long, up to the cap.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (pause * 2).min(self.cap());
        pause
    }

    /// The pause before the next tick: the doubling pause, or longer when the running
    /// actions' progress says they end later (`eta`: when the last of them should), up to the
    /// cap. Progress only ever saves polls: actions that started one after another finish
    /// together in one tick instead of one by one, each at most a cap later.
    pub fn pause_for(&mut self, eta: Option<Duration>) -> Duration {
        let pause = self.next_pause();
        eta.map_or(pause, |eta| {
            pause.max(eta.mul_f64(ETA_MARGIN).min(self.cap()))
        })
    }

    fn cap(&self) -> Duration {
        self.base * CADENCE_CAP_FACTOR
    }
}

/// Why a wait for one action ended without the action finishing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitError {
    /// The API did not return the action.
    Missing(ActionId),
    /// The action was still running when its deadline passed.
    TimedOut {
        /// The action.
        id: ActionId,
        /// Its command, e.g. `create_server`.
        command: String,
        /// How long it was waited for.
        waited: Duration,
    },
    /// Polling failed.
    Poll(String),
}

impl From<WaitError> for Error {
    fn from(e: WaitError) -> Error {
        match e {
            WaitError::Missing(id) => Error::ActionMissing { id: id.0 },
            WaitError::TimedOut {
                id,
                command,
                waited,
            } => Error::ActionTimedOut {
                id: id.0,
                command,
                waited,
            },
            WaitError::Poll(message) => Error::Decode {
                operation: "wait for actions".into(),
                message,
            },
        }
    }
}

/// What one poll request settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Asked actions delivered or failed.
    pub settled: usize,
    /// When the last still running action that shows progress should finish at its pace so
    /// far: the poller's next pause when known (within the cadence's bounds).
    pub eta: Option<Duration>,
}

/// The time left for an action at `progress` percent after `waited`, assuming it progresses
/// evenly; `None` before it shows any progress.
pub fn remaining(waited: Duration, progress: u8) -> Option<Duration> {
    let progress = u32::from(progress.min(100));
    (progress > 0).then(|| waited * (100 - progress) / progress)
}

/// The later of two estimates; either alone when the other is unknown.
pub fn latest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

type Reply = oneshot::Sender<Result<Action, WaitError>>;

/// Waiters by action id, and whether a poller is running.
#[derive(Debug, Default)]
pub struct Waiters {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    pending: HashMap<ActionId, Pending>,
    polling: bool,
}

/// The waiters of one action and when the first of them started waiting.
#[derive(Debug)]
struct Pending {
    since: SystemTime,
    replies: Vec<Reply>,
}

impl Waiters {
    /// Registers interest in `ids` at `now`. Returns the receivers and whether the caller must
    /// start the poller (no poller was running).
    pub fn register(
        &self,
        ids: &[ActionId],
        now: SystemTime,
    ) -> (Vec<oneshot::Receiver<Result<Action, WaitError>>>, bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let receivers = ids
            .iter()
            .map(|id| {
                let (tx, rx) = oneshot::channel();
                state
                    .pending
                    .entry(*id)
                    .or_insert_with(|| Pending {
                        since: now,
                        replies: Vec::new(),
                    })
                    .replies
                    .push(tx);
                rx
            })
            .collect();
        let start = !state.polling;
        state.polling = true;
        (receivers, start)
    }

    /// The ids to poll this tick, in chunks; `None` (and the poller stops) when nothing waits.
    pub fn batches(&self) -> Option<Vec<Vec<ActionId>>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.pending.is_empty() {
            state.polling = false;
            return None;
        }
        let mut ids: Vec<ActionId> = state.pending.keys().copied().collect();
        ids.sort();
        Some(
            ids.chunks(IDS_PER_REQUEST)
                .map(<[ActionId]>::to_vec)
                .collect(),
        )
    }

    /// Delivers finished actions of one batch, fails ids the API did not return, and fails
    /// actions still running `timeout` after they were first waited for (at `now`). Says how
    /// many of `asked` are settled and when the first still running one should end.
    pub fn deliver(
        &self,
        asked: &[ActionId],
        answered: Vec<Action>,
        now: SystemTime,
        timeout: Duration,
    ) -> Delivered {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut seen = Vec::with_capacity(answered.len());
        let mut delivered = Delivered::default();
        for action in answered {
            seen.push(action.id);
            let waited = state
                .pending
                .get(&action.id)
                .map(|p| now.duration_since(p.since).unwrap_or_default());
            let result = match waited {
                _ if action.is_done() => Ok(action.clone()),
                Some(waited) if waited >= timeout => Err(WaitError::TimedOut {
                    id: action.id,
                    command: action.command.clone(),
                    waited,
                }),
                Some(waited) => {
                    delivered.eta = latest(delivered.eta, remaining(waited, action.progress));
                    continue;
                }
                None => continue,
            };
            if let Some(pending) = state.pending.remove(&action.id) {
                delivered.settled += 1;
                for reply in pending.replies {
                    let _ = reply.send(result.clone());
                }
            }
        }
        for id in asked.iter().filter(|id| !seen.contains(id)) {
            if let Some(pending) = state.pending.remove(id) {
                delivered.settled += 1;
                for reply in pending.replies {
                    let _ = reply.send(Err(WaitError::Missing(*id)));
                }
            }
        }
        delivered
    }

    /// Fails every waiter of `asked` with `error`.
    pub fn fail(&self, asked: &[ActionId], error: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for id in asked {
            if let Some(pending) = state.pending.remove(id) {
                for reply in pending.replies {
                    let _ = reply.send(Err(WaitError::Poll(error.to_owned())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ActionStatus;

    fn running(id: u64) -> Action {
        Action {
            id: ActionId(id),
            command: "create_server".into(),
            status: ActionStatus::Running,
            progress: 40,
        }
    }

    #[test]
    fn the_poll_cadence_doubles_from_the_interval_up_to_twenty_times_it() {
        let mut cadence = Cadence::new(Duration::from_millis(500));
        let pauses: Vec<u64> = (0..7)
            .map(|_| cadence.next_pause().as_millis() as u64)
            .collect();
        assert_eq!(pauses, [500, 1000, 2000, 4000, 8000, 10000, 10000]);
    }

    #[test]
    fn progress_stretches_the_pause_to_just_after_the_estimated_end_never_past_the_cap() {
        let mut cadence = Cadence::new(Duration::from_millis(500));
        let ms = |d: Duration| d.as_millis() as u64;
        assert_eq!(ms(cadence.pause_for(Some(Duration::from_secs(5)))), 5500);
        assert_eq!(
            ms(cadence.pause_for(Some(Duration::from_millis(100)))),
            1000
        );
        assert_eq!(ms(cadence.pause_for(Some(Duration::from_secs(60)))), 10000);
        assert_eq!(ms(cadence.pause_for(None)), 4000);
    }

    #[test]
    fn a_delivery_counts_the_asked_actions_it_settled() {
        let waiters = Waiters::default();
        let start = SystemTime::UNIX_EPOCH;
        let (_rx, _) = waiters.register(&[ActionId(1), ActionId(2), ActionId(3)], start);
        let mut done = running(1);
        done.status = ActionStatus::Success;
        let asked = [ActionId(1), ActionId(2), ActionId(3)];
        let later = start + Duration::from_secs(4);
        let timeout = Duration::from_secs(600);
        let delivered = waiters.deliver(&asked, vec![done, running(2)], later, timeout);
        assert_eq!(
            delivered,
            Delivered {
                settled: 2,
                eta: Some(Duration::from_secs(6)),
            },
            "1 finished, 3 is missing, 2 still runs at 40% after 4 s"
        );
        let again = waiters.deliver(&[ActionId(2)], vec![running(2)], later, timeout);
        assert_eq!(again.settled, 0);
    }

    #[test]
    fn an_action_running_past_its_deadline_fails_alone_naming_its_id_and_command() {
        let waiters = Waiters::default();
        let start = SystemTime::UNIX_EPOCH;
        let (mut stuck, _) = waiters.register(&[ActionId(7)], start);
        let later = start + Duration::from_secs(300);
        let (mut fresh, start_poller) = waiters.register(&[ActionId(8)], later);
        assert!(!start_poller, "one poller serves both");
        let timeout = Duration::from_secs(600);

        let now = start + Duration::from_secs(599);
        waiters.deliver(
            &[ActionId(7), ActionId(8)],
            vec![running(7), running(8)],
            now,
            timeout,
        );
        assert!(stuck[0].try_recv().is_err(), "still within its deadline");

        let now = start + Duration::from_secs(601);
        waiters.deliver(
            &[ActionId(7), ActionId(8)],
            vec![running(7), running(8)],
            now,
            timeout,
        );
        let failure = stuck[0].try_recv().expect("delivered");
        assert_eq!(
            failure,
            Err(WaitError::TimedOut {
                id: ActionId(7),
                command: "create_server".into(),
                waited: Duration::from_secs(601),
            })
        );
        let message = Error::from(failure.expect_err("timed out")).to_string();
        assert!(message.contains("action 7 (create_server)"), "{message}");
        assert!(message.contains("10m 1s"), "{message}");
        assert!(
            fresh[0].try_recv().is_err(),
            "the younger action still waits"
        );
        assert_eq!(waiters.batches(), Some(vec![vec![ActionId(8)]]));
    }
}
