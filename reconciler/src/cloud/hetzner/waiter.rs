//! Batched action polling: every caller waiting for actions registers its ids here, and one
//! poller asks `GET /actions?id=…&id=…` for all pending ids at once, 50 per request, each tick.
//! A hundred concurrent creates therefore cost a handful of polls, not a hundred per tick.

use super::Error;
use crate::cloud::{Action, ActionId};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use tokio::sync::oneshot;

/// Most ids in one `GET /actions` request.
pub const IDS_PER_REQUEST: usize = 50;

type Reply = oneshot::Sender<Result<Action, String>>;

/// Waiters by action id, and whether a poller is running.
#[derive(Debug, Default)]
pub struct Waiters {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    pending: HashMap<ActionId, Vec<Reply>>,
    polling: bool,
}

impl Waiters {
    /// Registers interest in `ids`. Returns the receivers and whether the caller must start
    /// the poller (no poller was running).
    pub fn register(
        &self,
        ids: &[ActionId],
    ) -> (Vec<oneshot::Receiver<Result<Action, String>>>, bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let receivers = ids
            .iter()
            .map(|id| {
                let (tx, rx) = oneshot::channel();
                state.pending.entry(*id).or_default().push(tx);
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

    /// Delivers finished actions of one batch, and fails ids the API did not return.
    pub fn deliver(&self, asked: &[ActionId], answered: Vec<Action>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut seen = Vec::with_capacity(answered.len());
        for action in answered {
            seen.push(action.id);
            if action.is_done() {
                for reply in state.pending.remove(&action.id).unwrap_or_default() {
                    let _ = reply.send(Ok(action.clone()));
                }
            }
        }
        for id in asked.iter().filter(|id| !seen.contains(id)) {
            for reply in state.pending.remove(id).unwrap_or_default() {
                let _ = reply.send(Err(Error::ActionMissing { id: id.0 }.to_string()));
            }
        }
    }

    /// Fails every waiter of `asked` with `error`.
    pub fn fail(&self, asked: &[ActionId], error: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for id in asked {
            for reply in state.pending.remove(id).unwrap_or_default() {
                let _ = reply.send(Err(error.to_owned()));
            }
        }
    }
}
