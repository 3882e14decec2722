//! Auth keys: creation with the API's validation, their life (valid, used up, expired,
//! revoked), and their JSON. The secret (`tskey-auth-<id>-<random>`) leaves only in the
//! create response.

use super::access::{Access, Actor};
use super::wire;
use super::{ApiError, random_alnum, timestamp};
use crate::Token;
use rand::rngs::SmallRng;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// The longest key description the API accepts.
const MAX_DESCRIPTION_LEN: usize = 50;

/// Whether the API accepts `text` as a key description: at most 50 ASCII letters, digits,
/// hyphens and spaces.
fn is_valid_description(text: &str) -> bool {
    text.chars().count() <= MAX_DESCRIPTION_LEN
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ')
}

/// The default and longest lifetime of an auth key: 90 days.
pub const MAX_EXPIRY: Duration = Duration::from_secs(90 * 24 * 3600);

/// Why a key can no longer register devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spent {
    /// Deleted through the API.
    Revoked,
    /// Past its expiry.
    Expired,
    /// A single-use key that registered its device.
    UsedUp,
}

/// One auth key.
#[derive(Debug, Clone)]
pub(super) struct KeyRecord {
    pub id: String,
    secret: Token,
    pub created: SystemTime,
    pub expires: SystemTime,
    expiry_seconds: u64,
    pub capabilities: wire::CreateCapabilities,
    description: String,
    /// The owning user's login; `None` for tailnet-owned keys (created by OAuth clients).
    pub owner: Option<String>,
    revoked: Option<SystemTime>,
    pub uses: u32,
}

impl KeyRecord {
    /// Why the key is spent, if it is.
    pub(super) fn spent(&self, now: SystemTime) -> Option<Spent> {
        if self.revoked.is_some() {
            Some(Spent::Revoked)
        } else if now >= self.expires {
            Some(Spent::Expired)
        } else if !self.capabilities.reusable && self.uses > 0 {
            Some(Spent::UsedUp)
        } else {
            None
        }
    }

    /// The key's JSON; `with_secret` only for the create response.
    pub(super) fn to_wire(&self, now: SystemTime, with_secret: bool) -> wire::Key {
        wire::Key {
            id: self.id.clone(),
            key: with_secret.then(|| self.secret.clone()),
            key_type: "auth".to_owned(),
            created: timestamp(self.created),
            expires: timestamp(self.expires),
            expiry_seconds: Some(self.expiry_seconds),
            revoked: self.revoked.map(timestamp),
            capabilities: wire::KeyCapabilities {
                devices: wire::DeviceCapabilities {
                    create: self.capabilities.clone(),
                },
            },
            description: self.description.clone(),
            invalid: self.spent(now).is_some(),
            user_id: self.owner.as_ref().map(|login| user_id(login)),
        }
    }
}

/// A stable user id for a login, in the API's `u…CNTRL` style.
fn user_id(login: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in login.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("u{:010x}CNTRL", hash & 0xff_ffff_ffff)
}

/// Every key of the tailnet.
#[derive(Debug, Default)]
pub(super) struct Keys {
    by_id: BTreeMap<String, KeyRecord>,
}

impl Keys {
    /// `POST /tailnet/-/keys`: validates `request` for `actor` and stores the new key.
    pub(super) fn create(
        &mut self,
        request: wire::CreateKey,
        actor: &Actor,
        access: &Access,
        rng: &mut SmallRng,
        now: SystemTime,
    ) -> Result<&KeyRecord, ApiError> {
        if let Some(kind) = request.key_type.as_deref().filter(|k| *k != "auth") {
            return Err(ApiError::not_implemented(format!(
                "keyType {kind:?}: the emulator creates only auth keys"
            )));
        }
        let expiry = match request.expiry_seconds {
            None | Some(0) => MAX_EXPIRY,
            Some(s) if s > MAX_EXPIRY.as_secs() => {
                return Err(ApiError::bad_request(format!(
                    "expirySeconds must be at most {} (90 days)",
                    MAX_EXPIRY.as_secs()
                )));
            }
            Some(s) => Duration::from_secs(s),
        };
        let description = request.description.unwrap_or_default();
        if !is_valid_description(&description) {
            return Err(ApiError::bad_request(
                "description must be at most 50 characters of letters, digits, hyphens and spaces"
                    .to_owned(),
            ));
        }
        let capabilities = request.capabilities.devices.create;
        access.check_tags(actor, &capabilities.tags)?;
        let id = loop {
            let id = format!("k{}CNTRL", random_alnum(rng, 11));
            if !self.by_id.contains_key(&id) {
                break id;
            }
        };
        let secret = format!("tskey-auth-{id}-{}", random_alnum(rng, 32));
        let record = KeyRecord {
            id: id.clone(),
            secret: Token::new(secret),
            created: now,
            expires: now + expiry,
            expiry_seconds: expiry.as_secs(),
            capabilities,
            description,
            owner: actor.owner().map(str::to_owned),
            revoked: None,
            uses: 0,
        };
        Ok(self.by_id.entry(id).or_insert(record))
    }

    /// The key with `id`.
    pub(super) fn get(&self, id: &str) -> Option<&KeyRecord> {
        self.by_id.get(id)
    }

    /// The key whose secret is `secret`: looked up by the id inside it, then compared whole.
    pub(super) fn by_secret_mut(&mut self, secret: &str) -> Option<&mut KeyRecord> {
        let id = secret.strip_prefix("tskey-auth-")?.split('-').next()?;
        self.by_id
            .get_mut(id)
            .filter(|k| k.secret.expose() == secret)
    }

    /// Keys `actor` lists: its own (a user's keys, or the tailnet's for OAuth), or all of them
    /// with `?all=true`.
    pub(super) fn visible<'a>(
        &'a self,
        actor: &'a Actor,
        all: bool,
    ) -> impl Iterator<Item = &'a KeyRecord> + 'a {
        self.by_id
            .values()
            .filter(move |k| all || k.owner.as_deref() == actor.owner())
    }

    /// Every key.
    pub(super) fn all(&self) -> impl Iterator<Item = &KeyRecord> {
        self.by_id.values()
    }

    /// Revokes the key; `false` when there is no such key. Revoking twice is allowed.
    pub(super) fn revoke(&mut self, id: &str, now: SystemTime) -> bool {
        let Some(key) = self.by_id.get_mut(id) else {
            return false;
        };
        key.revoked.get_or_insert(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tailscale::KeyTagRule;
    use rand::SeedableRng;

    fn request(expiry: Option<u64>, description: &str) -> wire::CreateKey {
        wire::CreateKey {
            key_type: None,
            capabilities: wire::KeyCapabilities::default(),
            expiry_seconds: expiry,
            description: Some(description.to_owned()),
        }
    }

    #[test]
    fn keys_default_to_ninety_days_and_refuse_bad_descriptions() {
        let access = Access::new(
            Vec::new(),
            Vec::new(),
            BTreeMap::new(),
            KeyTagRule::ExactOrOwned,
        );
        let user = Actor::User {
            login: "admin@example.com".into(),
        };
        let mut rng = SmallRng::seed_from_u64(1);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut keys = Keys::default();
        let key = keys
            .create(request(Some(0), "ok key"), &user, &access, &mut rng, now)
            .expect("create");
        assert_eq!(key.expires, now + MAX_EXPIRY);
        let id = key.id.clone();
        assert!(id.starts_with('k') && id.ends_with("CNTRL"));
        let bad = keys
            .create(
                request(None, "no_underscores"),
                &user,
                &access,
                &mut rng,
                now,
            )
            .expect_err("underscore");
        assert_eq!(bad.status, http::StatusCode::BAD_REQUEST);
        assert!(
            keys.create(
                request(Some(MAX_EXPIRY.as_secs() + 1), ""),
                &user,
                &access,
                &mut rng,
                now
            )
            .is_err()
        );
        assert!(keys.revoke(&id, now) && keys.revoke(&id, now));
        assert_eq!(
            keys.get(&id).and_then(|k| k.spent(now)),
            Some(Spent::Revoked)
        );
    }
}
