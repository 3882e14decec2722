//! [`Compute`] for the Hetzner [`Client`]: each call as the request it makes. Creation lives in
//! `create.rs`, the action poller in `poller.rs`.

use super::{Client, Error, wire};
use crate::cloud::retry::Clock;
use crate::cloud::{self, Action, ActionId, Compute, Created, NewServer, ServerId};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

impl<C: Clock + Clone + 'static> Compute for Client<C> {
    async fn list_servers(
        &self,
        label_selector: Option<&str>,
    ) -> Result<Vec<cloud::Server>, Error> {
        let query: Vec<(&str, String)> = label_selector
            .map(|s| ("label_selector", s.to_owned()))
            .into_iter()
            .collect();
        self.list_all(
            "list servers",
            "/servers",
            &query,
            |r: wire::ServersResponse| {
                (
                    r.servers.into_iter().map(cloud::Server::from).collect(),
                    r.meta.pagination,
                )
            },
        )
        .await
    }

    async fn find_server(&self, name: &str) -> Result<Option<cloud::Server>, Error> {
        let operation = format!("find server {name}");
        let r: wire::ServersResponse = self
            .call(
                &operation,
                Method::GET,
                "/servers",
                &[("name", name.to_owned())],
                None,
            )
            .await?;
        Ok(r.servers
            .into_iter()
            .map(cloud::Server::from)
            .find(|s| s.name == name))
    }

    async fn get_server(&self, id: ServerId) -> Result<Option<cloud::Server>, Error> {
        match self
            .call::<wire::ServerResponse>(
                &format!("get server {id}"),
                Method::GET,
                &format!("/servers/{id}"),
                &[],
                None,
            )
            .await
        {
            Ok(r) => Ok(Some(r.server.into())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a server, never blindly twice: the guarantees are written down where they are
    /// kept, on `Client::create` in `create.rs`.
    async fn create_server(&self, new: &NewServer) -> Result<Created, Error> {
        self.create(new).await
    }

    async fn delete_server(&self, id: ServerId) -> Result<Option<Action>, Error> {
        match self
            .call::<wire::ActionResponse>(
                &format!("delete server {id}"),
                Method::DELETE,
                &format!("/servers/{id}"),
                &[],
                None,
            )
            .await
        {
            Ok(r) => Ok(Some(r.action.into())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn update_server(
        &self,
        id: ServerId,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<cloud::Server, Error> {
        let mut body = json!({ "labels": labels });
        if let Some(name) = name {
            body["name"] = Value::String(name.to_owned());
        }
        let r: wire::ServerResponse = self
            .call(
                &format!("update server {id}"),
                Method::PUT,
                &format!("/servers/{id}"),
                &[],
                Some(&body),
            )
            .await?;
        Ok(r.server.into())
    }

    async fn power_on(&self, id: ServerId) -> Result<Action, Error> {
        self.server_action(id, "poweron", None).await
    }

    async fn power_off(&self, id: ServerId) -> Result<Action, Error> {
        self.server_action(id, "poweroff", None).await
    }

    async fn shutdown(&self, id: ServerId) -> Result<Action, Error> {
        self.server_action(id, "shutdown", None).await
    }

    async fn rebuild(
        &self,
        id: ServerId,
        image: &str,
        user_data: &crate::secret::Secret<String>,
    ) -> Result<Action, Error> {
        let body = json!({ "image": image, "user_data": user_data.expose() });
        self.server_action(id, "rebuild", Some(&body)).await
    }

    async fn reset(&self, id: ServerId) -> Result<Action, Error> {
        self.server_action(id, "reset", None).await
    }

    async fn change_type(
        &self,
        id: ServerId,
        server_type: &str,
        upgrade_disk: bool,
    ) -> Result<Action, Error> {
        let body = json!({ "server_type": server_type, "upgrade_disk": upgrade_disk });
        self.server_action(id, "change_type", Some(&body)).await
    }

    async fn wait_for_actions(&self, ids: &[ActionId]) -> Result<Vec<Action>, Error> {
        self.wait(ids).await
    }

    async fn server_types(&self) -> Result<Vec<cloud::ServerType>, Error> {
        self.list_all(
            "list server types",
            "/server_types",
            &[],
            |r: wire::ServerTypesResponse| {
                (
                    r.server_types.into_iter().map(Into::into).collect(),
                    r.meta.pagination,
                )
            },
        )
        .await
    }

    async fn locations(&self) -> Result<Vec<cloud::Location>, Error> {
        self.list_all(
            "list locations",
            "/locations",
            &[],
            |r: wire::LocationsResponse| {
                (
                    r.locations.into_iter().map(Into::into).collect(),
                    r.meta.pagination,
                )
            },
        )
        .await
    }

    async fn images(&self) -> Result<Vec<cloud::Image>, Error> {
        self.list_all(
            "list images",
            "/images",
            &[("type", "system".to_owned())],
            |r: wire::ImagesResponse| {
                (
                    r.images.into_iter().map(Into::into).collect(),
                    r.meta.pagination,
                )
            },
        )
        .await
    }

    async fn ssh_keys(&self) -> Result<Vec<cloud::SshKey>, Error> {
        self.list_all(
            "list ssh keys",
            "/ssh_keys",
            &[],
            |r: wire::SshKeysResponse| {
                (
                    r.ssh_keys.into_iter().map(Into::into).collect(),
                    r.meta.pagination,
                )
            },
        )
        .await
    }
}
