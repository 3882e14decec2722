//! Server creation, never blindly twice: after an unclear outcome the server is looked up by
//! name and adopted when its labels are ours ([`Client::create`]).

use super::{Client, Error, wire};
use crate::cloud::retry::{self, Clock};
use crate::cloud::{Action, Compute, Created, NewServer};
use reqwest::Method;
use serde_json::{Value, json};

impl<C: Clock + Clone + 'static> Client<C> {
    /// Creates a server, never blindly twice.
    ///
    /// # Guarantees
    /// - At most one server named `new.name` exists because of this call: a request whose
    ///   outcome is unclear (timeout, broken connection, 5xx) is followed by a lookup by name
    ///   before anything else. A server with that name and exactly `new.labels` is adopted
    ///   (`Created::adopted`), with its real `create_server` action.
    /// - A retry only follows a lookup that found nothing; if that retry meets
    ///   `uniqueness_error` (the first attempt landed late), the server is looked up and
    ///   adopted the same way.
    /// - A server with the name but other labels is never adopted: [`Error::NameTaken`].
    ///
    /// # Assumptions
    /// Server names are unique per project (Hetzner enforces it with `uniqueness_error`).
    ///
    /// # Errors
    /// Terminal API errors (`invalid_input`, quota, …), [`Error::NameTaken`], or the last
    /// error once the retry budget is spent.
    pub(super) async fn create(&self, new: &NewServer) -> Result<Created, Error> {
        let operation = format!("create server {}", new.name);
        let body = create_body(new);
        let backoff = self.inner.config.backoff;
        let mut unclear_before = false;
        let mut attempt = 0;
        loop {
            let err = match self
                .send::<wire::CreateServerResponse>(
                    &operation,
                    Method::POST,
                    "/servers",
                    &[],
                    Some(&body),
                )
                .await
            {
                Ok(r) => {
                    return Ok(Created {
                        server: r.server.into(),
                        action: r.action.into(),
                        next_actions: r.next_actions.into_iter().map(Action::from).collect(),
                        adopted: false,
                    });
                }
                Err(e) => e,
            };
            let landed_late = unclear_before && err.code() == Some("uniqueness_error");
            if err.outcome_unclear() || landed_late {
                tracing::warn!(provider = "hetzner", operation, error = %err, "create outcome unclear; looking the server up by name");
                if let Some(created) = self.adopt(new).await? {
                    return Ok(created);
                }
                unclear_before = true;
            }
            let Some((delay, reason)) =
                retry::next_delay(&backoff, err.retry(), attempt, self.inner.clock.now())
            else {
                return Err(err);
            };
            attempt += 1;
            tracing::warn!(provider = "hetzner", operation, attempt, delay_ms = delay.as_millis() as u64, %reason, "retrying create after lookup found nothing");
            self.inner.clock.sleep(delay).await;
        }
    }

    /// After an unclear create, finds the server by name: ours (same labels) is adopted with
    /// its actions, anyone else's is [`Error::NameTaken`], none is `Ok(None)`.
    async fn adopt(&self, new: &NewServer) -> Result<Option<Created>, Error> {
        let Some(server) = self.find_server(&new.name).await? else {
            return Ok(None);
        };
        if server.labels != new.labels {
            return Err(Error::NameTaken {
                name: new.name.clone(),
                id: server.id.0,
            });
        }
        let operation = format!("list actions of server {}", server.id);
        let mut actions: Vec<Action> = self
            .list_all(
                &operation,
                &format!("/servers/{}/actions", server.id),
                &[("sort", "id:asc".to_owned())],
                |r: wire::ActionsResponse| {
                    (
                        r.actions.into_iter().map(Action::from).collect(),
                        r.meta.pagination,
                    )
                },
            )
            .await?;
        let position = actions.iter().position(|a| a.command == "create_server");
        let action = match position {
            Some(i) => actions.remove(i),
            None => {
                return Err(Error::Decode {
                    operation,
                    message: "adopted server has no create_server action".into(),
                });
            }
        };
        tracing::info!(provider = "hetzner", server = %server.id, name = %new.name, "adopted a server created by an earlier attempt");
        Ok(Some(Created {
            server,
            action,
            next_actions: actions,
            adopted: true,
        }))
    }
}

fn create_body(new: &NewServer) -> Value {
    let mut body = json!({
        "name": new.name,
        "server_type": new.server_type,
        "image": new.image,
        "location": new.location,
        "ssh_keys": new.ssh_keys,
        "labels": new.labels,
        "start_after_create": new.start_after_create,
    });
    if let Some(user_data) = &new.user_data {
        body["user_data"] = Value::String(user_data.expose().clone());
    }
    if !new.public_net.is_default() {
        body["public_net"] = json!({
            "enable_ipv4": new.public_net.ipv4,
            "enable_ipv6": new.public_net.ipv6,
        });
    }
    body
}
