//! Who is calling and what they may do: API access tokens and OAuth clients, the
//! `/api/v2/oauth/token` exchange, scope checks, and the tag rules for tailnet-owned keys and
//! device tags.

use super::wire;
use super::{ApiError, ApiToken, KeyTagRule, OAuthClient, random_alnum};
use crate::Token;
use base64::Engine as _;
use rand::rngs::SmallRng;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

/// Lifetime of an OAuth access token.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Actor {
    /// An API access token: a user with full permissions (an admin).
    User {
        /// The user's login name.
        login: String,
    },
    /// A bearer token issued to an OAuth client.
    OAuth {
        /// The client's id.
        client_id: String,
        /// The scopes granted to this token.
        scopes: Vec<String>,
        /// The client's tags.
        tags: Vec<String>,
    },
}

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Read devices.
    DevicesRead,
    /// Change or remove devices.
    DevicesWrite,
    /// Read keys.
    KeysRead,
    /// Create or revoke keys.
    KeysWrite,
}

impl Actor {
    /// Refuses with 403 unless the actor's scopes grant `scope`. Users can do everything.
    pub(super) fn require(&self, scope: Scope) -> Result<(), ApiError> {
        let Actor::OAuth { scopes, .. } = self else {
            return Ok(());
        };
        if scopes.iter().any(|granted| grants(granted, scope)) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// The user who owns the keys this actor creates; `None` for tailnet-owned keys (OAuth).
    pub(super) fn owner(&self) -> Option<&str> {
        match self {
            Actor::User { login } => Some(login),
            Actor::OAuth { .. } => None,
        }
    }
}

/// Whether a granted scope covers what an endpoint needs. `devices`/`devices:read` are the
/// older names of `devices:core`/`devices:core:read`.
fn grants(granted: &str, needed: Scope) -> bool {
    match needed {
        Scope::DevicesRead => matches!(
            granted,
            "all" | "all:read" | "devices:core" | "devices:core:read" | "devices" | "devices:read"
        ),
        Scope::DevicesWrite => matches!(granted, "all" | "devices:core" | "devices"),
        Scope::KeysRead => matches!(granted, "all" | "all:read" | "auth_keys" | "auth_keys:read"),
        Scope::KeysWrite => matches!(granted, "all" | "auth_keys"),
    }
}

/// Whether a client holding `granted` may ask for `requested` when downscoping a token.
fn covers(granted: &str, requested: &str) -> bool {
    granted == requested
        || granted == "all"
        || requested.strip_suffix(":read").is_some_and(|write| {
            granted == write
                || granted == "all:read"
                || (write == "devices" && granted == "devices:core")
        })
}

/// A token issued by the token endpoint.
#[derive(Debug, Clone)]
struct Issued {
    client_id: String,
    scopes: Vec<String>,
    expires_at: SystemTime,
}

/// Credentials, issued tokens and the tag policy.
#[derive(Debug)]
pub(super) struct Access {
    tokens: Vec<ApiToken>,
    clients: Vec<OAuthClient>,
    tag_owners: BTreeMap<String, Vec<String>>,
    rule: KeyTagRule,
    issued: HashMap<String, Issued>,
}

impl Access {
    pub(super) fn new(
        tokens: Vec<ApiToken>,
        clients: Vec<OAuthClient>,
        tag_owners: BTreeMap<String, Vec<String>>,
        rule: KeyTagRule,
    ) -> Access {
        Access {
            tokens,
            clients,
            tag_owners,
            rule,
            issued: HashMap::new(),
        }
    }

    /// The caller behind an `Authorization` header: Basic `token:` or `Bearer token`, where
    /// the token is a configured API access token or an unexpired issued OAuth token.
    pub(super) fn authenticate(
        &self,
        authorization: Option<&str>,
        now: SystemTime,
    ) -> Result<Actor, ApiError> {
        let token = match authorization.and_then(|h| h.split_once(' ')) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim().to_owned(),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => match basic(rest) {
                Some((user, password)) if password.is_empty() => user,
                _ => return Err(ApiError::unauthorized()),
            },
            _ => return Err(ApiError::unauthorized()),
        };
        if let Some(t) = self.tokens.iter().find(|t| t.token.expose() == token) {
            return Ok(Actor::User {
                login: t.user.clone(),
            });
        }
        let issued = self
            .issued
            .get(&token)
            .filter(|i| now < i.expires_at)
            .ok_or_else(ApiError::unauthorized)?;
        let tags = self
            .clients
            .iter()
            .find(|c| c.id == issued.client_id)
            .map(|c| c.tags.clone())
            .unwrap_or_default();
        Ok(Actor::OAuth {
            client_id: issued.client_id.clone(),
            scopes: issued.scopes.clone(),
            tags,
        })
    }

    /// `POST /api/v2/oauth/token`: client credentials (form fields or Basic) for a one-hour
    /// bearer token, optionally downscoped with `scope` (space- or comma-separated).
    pub(super) fn issue_token(
        &mut self,
        form: &[(String, String)],
        authorization: Option<&str>,
        rng: &mut SmallRng,
        now: SystemTime,
    ) -> Result<wire::AccessToken, ApiError> {
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        if let Some((unknown, _)) = form.iter().find(|(k, _)| {
            !matches!(
                k.as_str(),
                "client_id" | "client_secret" | "grant_type" | "scope" | "tags"
            )
        }) {
            return Err(ApiError::bad_request(format!(
                "unsupported parameter {unknown:?}"
            )));
        }
        if let Some(grant) = field("grant_type").filter(|g| g != "client_credentials") {
            return Err(ApiError::bad_request(format!(
                "unsupported grant_type {grant:?}"
            )));
        }
        let from_header = authorization
            .and_then(|h| {
                h.strip_prefix("Basic ")
                    .or_else(|| h.strip_prefix("basic "))
            })
            .and_then(basic);
        let (id, secret) = match (field("client_id"), field("client_secret"), from_header) {
            (Some(id), Some(secret), _) => (id, secret),
            (None, None, Some(pair)) => pair,
            _ => {
                return Err(ApiError::bad_request(
                    "client_id and client_secret are required".to_owned(),
                ));
            }
        };
        let client = self
            .clients
            .iter()
            .find(|c| c.id == id && c.secret.expose() == secret)
            .ok_or_else(|| ApiError::unauthorized_with("invalid client credentials"))?;
        let scopes = match field("scope") {
            None => client.scopes.clone(),
            Some(requested) => downscope(&client.scopes, &requested)?,
        };
        let token = format!(
            "tskey-api-{}CNTRL-{}",
            random_alnum(rng, 10),
            random_alnum(rng, 32)
        );
        self.issued.insert(
            token.clone(),
            Issued {
                client_id: client.id.clone(),
                scopes: scopes.clone(),
                expires_at: now + TOKEN_LIFETIME,
            },
        );
        Ok(wire::AccessToken {
            access_token: Token::new(token),
            token_type: "Bearer".to_owned(),
            expires_in: TOKEN_LIFETIME.as_secs(),
            scope: scopes.join(" "),
        })
    }

    /// Refuses tags the actor may not put on a key or a device, with the API's 400 message.
    ///
    /// Every tag must be a syntactically valid tag known to the policy (a `tag_owners` entry or
    /// an OAuth client's tag). Users (API tokens) may use any known tag. OAuth clients must ask
    /// for at least one tag, and the set must pass the configured [`KeyTagRule`].
    pub(super) fn check_tags(&self, actor: &Actor, tags: &[String]) -> Result<(), ApiError> {
        let refused = || {
            ApiError::bad_request(format!(
                "requested tags [{}] are invalid or not permitted",
                tags.join(" ")
            ))
        };
        let known = |t: &String| {
            self.tag_owners.contains_key(t) || self.clients.iter().any(|c| c.tags.contains(t))
        };
        if !tags.iter().all(|t| valid_tag(t) && known(t)) {
            return Err(refused());
        }
        let Actor::OAuth {
            tags: client_tags, ..
        } = actor
        else {
            return Ok(());
        };
        if tags.is_empty() {
            return Err(ApiError::bad_request(
                "auth keys and devices of an OAuth client must carry tags".to_owned(),
            ));
        }
        let owned = |t: &String| {
            self.tag_owners
                .get(t)
                .is_some_and(|owners| owners.iter().any(|o| client_tags.contains(o)))
        };
        let permitted = match self.rule {
            KeyTagRule::ExactOrOwned => {
                let asked: BTreeSet<&String> = tags.iter().collect();
                let held: BTreeSet<&String> = client_tags.iter().collect();
                asked == held || tags.iter().all(owned)
            }
            KeyTagRule::EachHeldOrOwned => tags.iter().all(|t| client_tags.contains(t) || owned(t)),
        };
        if permitted { Ok(()) } else { Err(refused()) }
    }
}

/// The scopes of a downscoped token: each requested scope must be covered by the client's.
fn downscope(granted: &[String], requested: &str) -> Result<Vec<String>, ApiError> {
    let asked: Vec<String> = requested
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if asked.is_empty() {
        return Ok(granted.to_vec());
    }
    match asked.iter().find(|a| !granted.iter().any(|g| covers(g, a))) {
        Some(extra) => Err(ApiError::bad_request(format!(
            "requested scope {extra:?} is not granted to this client"
        ))),
        None => Ok(asked),
    }
}

/// `tag:` followed by a letter, then letters, digits and hyphens.
pub(super) fn valid_tag(tag: &str) -> bool {
    tag.strip_prefix("tag:").is_some_and(|name| {
        name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// The user and password of a Basic credential.
fn basic(encoded: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(rule: KeyTagRule) -> Access {
        let owners = BTreeMap::from([
            ("tag:tether".to_owned(), vec!["autogroup:admin".to_owned()]),
            ("tag:agent".to_owned(), vec!["tag:tether".to_owned()]),
            ("tag:agent-eu".to_owned(), vec!["tag:tether".to_owned()]),
            ("tag:other".to_owned(), vec!["autogroup:admin".to_owned()]),
        ]);
        Access::new(Vec::new(), Vec::new(), owners, rule)
    }

    fn oauth(tags: &[&str]) -> Actor {
        Actor::OAuth {
            client_id: "k".into(),
            scopes: vec!["auth_keys".into()],
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn oauth_keys_need_the_clients_exact_tags_or_tags_it_owns() {
        let a = access(KeyTagRule::ExactOrOwned);
        let client = oauth(&["tag:tether", "tag:other"]);
        assert!(
            a.check_tags(&client, &tags(&["tag:other", "tag:tether"]))
                .is_ok()
        );
        assert!(
            a.check_tags(&client, &tags(&["tag:agent", "tag:agent-eu"]))
                .is_ok()
        );
        let subset = a
            .check_tags(&client, &tags(&["tag:other"]))
            .expect_err("subset");
        assert_eq!(
            subset.message,
            "requested tags [tag:other] are invalid or not permitted"
        );
        assert!(
            a.check_tags(&client, &tags(&["tag:tether", "tag:agent"]))
                .is_err()
        );
        assert!(a.check_tags(&client, &[]).is_err());
        assert!(a.check_tags(&client, &tags(&["tag:madeup"])).is_err());

        let lenient = access(KeyTagRule::EachHeldOrOwned);
        assert!(lenient.check_tags(&client, &tags(&["tag:other"])).is_ok());
        assert!(
            lenient
                .check_tags(&client, &tags(&["tag:tether", "tag:agent"]))
                .is_ok()
        );
    }

    #[test]
    fn users_may_use_any_known_tag_or_none() {
        let a = access(KeyTagRule::ExactOrOwned);
        let user = Actor::User {
            login: "admin@example.com".into(),
        };
        assert!(a.check_tags(&user, &[]).is_ok());
        assert!(
            a.check_tags(&user, &tags(&["tag:other", "tag:agent"]))
                .is_ok()
        );
        assert!(a.check_tags(&user, &tags(&["tag:unknown"])).is_err());
        assert!(a.check_tags(&user, &tags(&["tag:bad_name"])).is_err());
    }

    #[test]
    fn scopes_cover_their_read_halves_and_all_covers_everything() {
        assert!(grants("devices:core", Scope::DevicesRead));
        assert!(!grants("devices:core:read", Scope::DevicesWrite));
        assert!(grants("all:read", Scope::KeysRead) && !grants("all:read", Scope::KeysWrite));
        assert!(covers("auth_keys", "auth_keys:read") && covers("all", "devices:core"));
        assert!(!covers("auth_keys:read", "auth_keys"));
        assert_eq!(
            downscope(
                &tags(&["devices:core", "auth_keys"]),
                "auth_keys,devices:core:read"
            )
            .expect("subset"),
            tags(&["auth_keys", "devices:core:read"])
        );
        assert!(downscope(&tags(&["auth_keys:read"]), "auth_keys").is_err());
    }
}
