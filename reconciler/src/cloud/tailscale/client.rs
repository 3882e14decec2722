//! [`Client`]: the Tailscale API v2 over HTTPS, implementing [`Tailnet`]. Every call goes
//! through the one retry policy ([`crate::cloud::retry::retry`]) with [`Error::retry`] as the
//! classifier.

use super::auth::{Auth, Config, Credentials};
use super::error::{api_error, json_problem, retry_at};
use super::{
    AuthKey, AuthKeyId, CreatedAuthKey, Device, DeviceId, DeviceQuery, Error, NewAuthKey, Tailnet,
    wire,
};
use crate::cloud::retry::{Backoff, Clock, TokioClock, retry};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tether_schema::names::{Tailnet as TailnetName, TailnetTag};

/// The Tailscale API client. Cheap to share behind an `Arc`; the OAuth token cache is shared by
/// every call.
#[derive(Debug)]
pub struct Client<C: Clock = TokioClock> {
    http: reqwest::Client,
    api_url: String,
    tailnet: TailnetName,
    oauth: bool,
    auth: Auth,
    clock: C,
    backoff: Backoff,
}

/// One request, before credentials are added.
#[derive(Debug)]
struct Call {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

impl Call {
    fn new(method: Method, path: String) -> Call {
        Call {
            method,
            path,
            query: Vec::new(),
            body: None,
        }
    }

    fn json(mut self, body: &impl serde::Serialize) -> Result<Call, Error> {
        let body = serde_json::to_vec(body).map_err(|e| Error::Decode {
            operation: self.operation(),
            message: format!("request body: {}", json_problem(&e)),
        })?;
        self.body = Some(body);
        Ok(self)
    }

    fn operation(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

impl Client<TokioClock> {
    /// A client with the real clock and the default backoff.
    ///
    /// # Errors
    /// The HTTP client cannot be built (TLS backend failure).
    pub fn new(config: Config) -> Result<Client, Error> {
        Client::with_clock(config, TokioClock, Backoff::default())
    }
}

impl<C: Clock> Client<C> {
    /// A client whose retries and token expiry run on `clock`.
    ///
    /// # Errors
    /// The HTTP client cannot be built (TLS backend failure).
    pub fn with_clock(config: Config, clock: C, backoff: Backoff) -> Result<Client<C>, Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| Error::Transport {
                operation: "build HTTP client".into(),
                source,
            })?;
        Ok(Client {
            http,
            api_url: config.api_url.trim_end_matches('/').to_owned(),
            tailnet: config.tailnet,
            oauth: matches!(config.credentials, Credentials::OAuth { .. }),
            auth: Auth::new(config.credentials),
            clock,
            backoff,
        })
    }

    /// The tailnet this client manages.
    pub fn tailnet(&self) -> &TailnetName {
        &self.tailnet
    }

    fn tailnet_path(&self, rest: &str) -> String {
        format!("/api/v2/tailnet/{}/{rest}", segment(self.tailnet.as_str()))
    }

    /// Sends `call` until it succeeds or the retry policy gives up; returns the body.
    async fn call(&self, call: &Call) -> Result<Bytes, Error> {
        self.call_classified(call, Error::retry).await
    }

    /// [`Client::call`] with another classifier, for calls that must not be repeated blindly.
    async fn call_classified(
        &self,
        call: &Call,
        classify: fn(&Error) -> crate::cloud::retry::Retry,
    ) -> Result<Bytes, Error> {
        let operation = call.operation();
        retry(
            &self.backoff,
            &self.clock,
            "tailscale",
            &operation,
            classify,
            || self.attempt(call, &operation),
        )
        .await
    }

    async fn attempt(&self, call: &Call, operation: &str) -> Result<Bytes, Error> {
        let authorization = self
            .auth
            .authorization(&self.http, &self.api_url, &self.clock)
            .await?;
        let mut request = self
            .http
            .request(
                call.method.clone(),
                format!("{}{}", self.api_url, call.path),
            )
            .query(&call.query)
            .header(http::header::ACCEPT, "application/json");
        if let Some(body) = &call.body {
            request = request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let transport = |source| Error::Transport {
            operation: operation.to_owned(),
            source,
        };
        let response = authorization
            .apply(request)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let retry_at = retry_at(&response, self.clock.now());
        let body = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(body);
        }
        if status == StatusCode::UNAUTHORIZED && self.oauth {
            self.auth.forget_token().await;
        }
        Err(api_error(operation.to_owned(), status, &body, retry_at))
    }

    async fn get_json<T: DeserializeOwned>(&self, call: &Call) -> Result<T, Error> {
        let body = self.call(call).await?;
        decode(&call.operation(), &body)
    }

    /// Runs `call`; a 404 becomes `None`.
    async fn found(&self, call: &Call) -> Result<Option<Bytes>, Error> {
        match self.call(call).await {
            Ok(body) => Ok(Some(body)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<C: Clock> Tailnet for Client<C> {
    async fn list_devices(&self, query: &DeviceQuery) -> Result<Vec<Device>, Error> {
        let mut call = Call::new(Method::GET, self.tailnet_path("devices"));
        call.query
            .extend(query.tags.iter().map(|t| ("tags", t.as_str().to_owned())));
        if let Some(hostname) = &query.hostname {
            call.query.push(("hostname", hostname.clone()));
        }
        if query.all_fields {
            call.query.push(("fields", "all".to_owned()));
        }
        let list: wire::DeviceList = self.get_json(&call).await?;
        list.devices
            .into_iter()
            .map(|d| Device::try_from(d).map_err(|message| decode_error(&call, message)))
            .collect()
    }

    async fn get_device(&self, id: &DeviceId) -> Result<Option<Device>, Error> {
        let call = Call::new(Method::GET, format!("/api/v2/device/{}", segment(&id.0)));
        let Some(body) = self.found(&call).await? else {
            return Ok(None);
        };
        let device: wire::Device = decode(&call.operation(), &body)?;
        Device::try_from(device)
            .map(Some)
            .map_err(|message| decode_error(&call, message))
    }

    async fn delete_device(&self, id: &DeviceId) -> Result<bool, Error> {
        let call = Call::new(Method::DELETE, format!("/api/v2/device/{}", segment(&id.0)));
        let existed = self.found(&call).await?.is_some();
        tracing::info!(provider = "tailscale", device = %id, existed, "deleted device");
        Ok(existed)
    }

    async fn set_tags(&self, id: &DeviceId, tags: &[TailnetTag]) -> Result<(), Error> {
        let body = wire::SetTags {
            tags: tags.iter().map(|t| t.as_str().to_owned()).collect(),
        };
        let call = Call::new(
            Method::POST,
            format!("/api/v2/device/{}/tags", segment(&id.0)),
        )
        .json(&body)?;
        self.call(&call).await?;
        tracing::info!(provider = "tailscale", device = %id, tags = %body.tags.join(","), "set device tags");
        Ok(())
    }

    async fn set_authorized(&self, id: &DeviceId, authorized: bool) -> Result<(), Error> {
        let body = wire::SetAuthorized { authorized };
        let call = Call::new(
            Method::POST,
            format!("/api/v2/device/{}/authorized", segment(&id.0)),
        )
        .json(&body)?;
        self.call(&call).await?;
        tracing::info!(provider = "tailscale", device = %id, authorized, "set device authorization");
        Ok(())
    }

    /// # Guarantees
    /// The key is single-use, pre-authorized, not ephemeral, and carries exactly `new.tags`.
    /// The request is repeated only when it certainly created nothing ([`Error::retry_create`]),
    /// so one call creates at most one key.
    ///
    /// # Errors
    /// When [`Error::may_have_applied`] holds, the key may exist: find it by its description.
    async fn create_auth_key(&self, new: &NewAuthKey) -> Result<CreatedAuthKey, Error> {
        let body = wire::CreateKey {
            key_type: Some("auth".to_owned()),
            capabilities: wire::KeyCapabilities {
                devices: wire::DeviceCapabilities {
                    create: wire::CreateCapabilities {
                        reusable: false,
                        ephemeral: false,
                        preauthorized: true,
                        tags: new.tags.iter().map(|t| t.as_str().to_owned()).collect(),
                    },
                },
            },
            expiry_seconds: Some(new.expiry.as_secs().max(1)),
            description: Some(super::key_description(&new.description)),
        };
        let call = Call::new(Method::POST, self.tailnet_path("keys")).json(&body)?;
        let response = self.call_classified(&call, Error::retry_create).await?;
        let mut key: wire::Key = decode(&call.operation(), &response)?;
        let Some(secret) = key.key.take() else {
            return Err(decode_error(&call, "the response holds no key".into()));
        };
        let key = AuthKey::from(key);
        tracing::info!(provider = "tailscale", key = %key.id, description = %key.description, "created auth key");
        Ok(CreatedAuthKey { key, secret })
    }

    async fn list_keys(&self) -> Result<Vec<AuthKey>, Error> {
        let call = Call::new(Method::GET, self.tailnet_path("keys"));
        let list: wire::KeyList = self.get_json(&call).await?;
        Ok(list.keys.into_iter().map(AuthKey::from).collect())
    }

    async fn get_key(&self, id: &AuthKeyId) -> Result<Option<AuthKey>, Error> {
        let call = Call::new(
            Method::GET,
            self.tailnet_path(&format!("keys/{}", segment(&id.0))),
        );
        let Some(body) = self.found(&call).await? else {
            return Ok(None);
        };
        let key: wire::Key = decode(&call.operation(), &body)?;
        Ok(Some(AuthKey::from(key)))
    }

    async fn delete_key(&self, id: &AuthKeyId) -> Result<bool, Error> {
        let call = Call::new(
            Method::DELETE,
            self.tailnet_path(&format!("keys/{}", segment(&id.0))),
        );
        let existed = self.found(&call).await?.is_some();
        tracing::info!(provider = "tailscale", key = %id, existed, "revoked auth key");
        Ok(existed)
    }
}

fn decode<T: DeserializeOwned>(operation: &str, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        operation: operation.to_owned(),
        message: json_problem(&e),
    })
}

fn decode_error(call: &Call, message: String) -> Error {
    Error::Decode {
        operation: call.operation(),
        message,
    }
}

/// Percent-encodes a path segment (ids come from the API, but never trust them to be clean).
fn segment(value: &str) -> String {
    if value == "." || value == ".." {
        return value.replace('.', "%2E");
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
