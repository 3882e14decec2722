//! The one action poller of a client: every caller's pending actions asked for together,
//! `GET /actions?id=…`, at the backing-off cadence of [`waiter::Cadence`].

use super::{Client, Error, PER_PAGE, waiter, wire};
use crate::cloud::retry::Clock;
use crate::cloud::{Action, ActionId};
use reqwest::Method;

impl<C: Clock + Clone + 'static> Client<C> {
    /// Waits for every action in `ids` through the one shared poller, starting it when nobody
    /// else is waiting.
    pub(super) async fn wait(&self, ids: &[ActionId]) -> Result<Vec<Action>, Error> {
        let (receivers, start) = self.inner.waiters.register(ids, self.inner.clock.now());
        if start {
            tokio::spawn(self.clone().poll());
        }
        let mut actions = Vec::with_capacity(ids.len());
        for rx in receivers {
            match rx.await {
                Ok(Ok(action)) => actions.push(action),
                Ok(Err(failure)) => return Err(failure.into()),
                Err(_) => {
                    return Err(Error::Decode {
                        operation: "wait for actions".into(),
                        message: "the action poller stopped".into(),
                    });
                }
            }
        }
        Ok(actions)
    }

    /// The poller: each tick (at the backing-off [`waiter::Cadence`], or when the running
    /// actions' progress says they should have ended), `GET /actions?id=…` for
    /// the pending ids, 50 per request, oldest first, until a request in which nothing
    /// finished; it stops when nobody waits.
    async fn poll(self) {
        let mut cadence = waiter::Cadence::new(self.inner.config.poll_interval);
        let mut eta = None;
        loop {
            self.inner.clock.sleep(cadence.pause_for(eta)).await;
            let Some(batches) = self.inner.waiters.batches() else {
                return;
            };
            eta = None;
            for ids in batches {
                let mut query: Vec<(&str, String)> =
                    ids.iter().map(|id| ("id", id.to_string())).collect();
                query.push(("per_page", PER_PAGE.to_string()));
                let delivered = match self
                    .call::<wire::ActionsResponse>(
                        "poll actions",
                        Method::GET,
                        "/actions",
                        &query,
                        None,
                    )
                    .await
                {
                    Ok(r) => self.inner.waiters.deliver(
                        &ids,
                        r.actions.into_iter().map(Action::from).collect(),
                        self.inner.clock.now(),
                        self.inner.config.action_timeout,
                    ),
                    Err(e) => {
                        self.inner.waiters.fail(&ids, &e.to_string());
                        waiter::Delivered {
                            settled: ids.len(),
                            eta: None,
                        }
                    }
                };
                eta = waiter::latest(eta, delivered.eta);
                if delivered.settled == 0 {
                    break;
                }
            }
        }
    }
}
