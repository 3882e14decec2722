//! The life of the auth keys tether mints: one key per attempt, each with a description that
//! names this fleet and the attempt, spent by the device it registers (a one-off key; decision
//! 028) or revoked: when its VM did not enrol in time, after a failed attempt, and by a sweep
//! at the start of every pass. Start at [`mint`]; [`revoke`] ends a key's use; [`sweep`] cleans
//! up after a crash.
//!
//! A key's description is `tether <fleet-id> <nonce> <agent>` (see [`FleetMarker`]): the fleet
//! id is a stable hash of the fleet's name, the nonce is new for every attempt, and the agent
//! name (cut to fit the API's 50 characters) is there for people reading the admin console.
//!
//! # Guarantees
//! - A mint attempt whose outcome is unclear (lost response, 5xx, timeout) is followed by a look
//!   for the key with that attempt's description and its revocation before any new attempt; a
//!   new attempt gets a new description. A key of a failed attempt is never left valid, unless
//!   even that look fails, in which case the next sweep revokes it.
//! - [`sweep`] revokes only keys that are still valid and whose description carries this
//!   fleet's marker: keys of other fleets, of people and of other tools are never touched.
//! - [`sweep`] spares a key that may still be in flight: its agent has a server that has not
//!   joined yet and the key is younger than [`ENROLMENT_WINDOW`]. So a run killed right after
//!   creating a server does not strand that server; once the window passes the key is revoked.
//!   An agent with a self-healing remedy in progress is not spared
//!   ([`crate::plan::heal::remedies_in_progress`]): its key belongs to a remedy a kill cut
//!   short, and the next pass revokes it at once (decision 032).
//!
//! # Assumptions
//! - The sweep runs under the single-writer lease (see `docs/decisions/004-single-writer-lock.md`):
//!   no other writer of this fleet is minting or using keys while it runs.
//! - The key list shows the keys the credential owns (tailnet-owned keys for an OAuth client,
//!   the user's keys for an API token), which includes every key tether minted with it.
//! - A key created by a request that failed is visible in the list by the time the caller looks
//!   for it; one that appears later carries the fleet's marker, and the next sweep revokes it.

#[cfg(test)]
mod tests;

use crate::cloud::ServerStatus;
use crate::cloud::retry::{Backoff, Clock, Retry};
use crate::cloud::tailscale::{
    AuthKey, AuthKeyId, CreatedAuthKey, DeviceId, Error, NewAuthKey, Tailnet, key_description,
};
use crate::plan::Observed;
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tether_schema::names::FleetName;
use tether_schema::{Agent, Fleet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How long after minting a key may still be waiting for its server to boot and enrol.
pub const ENROLMENT_WINDOW: time::Duration = time::Duration::minutes(10);

/// Mint attempts per key before giving up.
pub const MAX_MINT_ATTEMPTS: u32 = 4;

/// The longest lifetime of a key tether mints: time enough for a VM to boot.
pub const MAX_KEY_LIFETIME: Duration = Duration::from_secs(3600);

/// Pause between mint attempts (jittered, doubling).
const ATTEMPT_PAUSE: Backoff = Backoff {
    base: Duration::from_millis(200),
    cap: Duration::from_secs(2),
    max_retries: MAX_MINT_ATTEMPTS,
};

/// The first word of every description tether writes.
const PREFIX: &str = "tether";
/// Hex digits of the fleet id.
const FLEET_ID_LEN: usize = 10;
/// Letters and digits of the per-attempt nonce.
const NONCE_LEN: usize = 12;

/// The mark of one fleet's keys: `tether <fleet-id>` at the start of the description, where the
/// fleet id is the first 10 hex digits of the SHA-256 of the fleet's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetMarker {
    id: String,
}

impl FleetMarker {
    /// The marker of `fleet`: the same for every run, machine and version.
    pub fn of(fleet: &FleetName) -> FleetMarker {
        let digest = Sha256::digest(fleet.as_str().as_bytes());
        let id = digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .chars()
            .take(FLEET_ID_LEN)
            .collect();
        FleetMarker { id }
    }

    /// The fleet id, e.g. `3f2a9c01be`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The description of one attempt for `agent`: `tether <fleet-id> <nonce> <agent>`, the
    /// agent name cut so the whole fits the API's rule.
    pub fn description(&self, nonce: &str, agent: &str) -> String {
        key_description(&format!("{PREFIX} {} {nonce} {agent}", self.id))
    }

    /// The agent name (possibly cut) a description of this fleet names.
    pub fn agent_of<'d>(&self, description: &'d str) -> Option<&'d str> {
        self.owns(description)
            .then(|| description.splitn(4, ' ').nth(3))
            .flatten()
    }

    /// Whether `description` marks a key minted by tether for this fleet.
    pub fn owns(&self, description: &str) -> bool {
        let mut words = description.split(' ');
        words.next() == Some(PREFIX)
            && words.next() == Some(self.id.as_str())
            && words.next().is_some_and(|n| {
                n.len() == NONCE_LEN && n.bytes().all(|b| b.is_ascii_alphanumeric())
            })
    }
}

/// A fresh nonce: 12 random letters and digits.
fn nonce() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..NONCE_LEN)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// Why a key could not be minted, revoked or swept. No variant holds a key's secret.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Tailscale refused the key (a 4xx, or a failure that will not change on retry): nothing
    /// was created.
    #[error("minting the auth key for `{agent}`: {source}")]
    Refused {
        /// The agent.
        agent: String,
        /// The refusal.
        #[source]
        source: Error,
    },
    /// Every attempt ended unclear; each attempt's key, if it existed, was revoked.
    #[error(
        "minting the auth key for `{agent}` failed {attempts} times (every key those attempts may have created was revoked): {source}"
    )]
    GaveUp {
        /// The agent.
        agent: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's failure.
        #[source]
        source: Error,
    },
    /// An attempt ended unclear and looking for its key failed as well.
    #[error(
        "minting the auth key for `{agent}`: {source}; looking for a key that attempt may have created failed too ({cleanup}); the sweep at the start of the next pass revokes it"
    )]
    Orphaned {
        /// The agent.
        agent: String,
        /// The attempt's failure.
        #[source]
        source: Error,
        /// Why the look or the revocation failed.
        cleanup: Error,
    },
    /// Revoking a key after use failed.
    #[error(
        "auth key {key} could not be revoked: {source}; the sweep at the start of the next pass revokes it"
    )]
    Revoke {
        /// The key.
        key: AuthKeyId,
        /// Why.
        #[source]
        source: Error,
    },
    /// The sweep could not list the keys.
    #[error("sweeping the auth keys of fleet `{fleet}`: listing keys: {source}")]
    List {
        /// The fleet.
        fleet: String,
        /// Why.
        #[source]
        source: Error,
    },
}

/// Mints the single-use key for one VM of `agent`, valid for `lifetime` (at most an hour),
/// pausing between attempts on `clock`.
///
/// # Guarantees
/// - Each attempt carries a description no other attempt has; the request of an attempt is
///   never repeated.
/// - After an attempt whose outcome is unclear, the key with its description is revoked before
///   the next attempt (at most [`MAX_MINT_ATTEMPTS`]); when that clean-up fails,
///   [`KeyError::Orphaned`] says the next sweep revokes it.
/// - On success, exactly one valid key of this call exists: the one returned.
///
/// # Errors
/// [`KeyError::Refused`], [`KeyError::GaveUp`] or [`KeyError::Orphaned`].
pub async fn mint<T: Tailnet>(
    tailnet: &T,
    fleet: &FleetName,
    agent: &Agent,
    lifetime: Duration,
    clock: &impl Clock,
) -> Result<CreatedAuthKey, KeyError> {
    let marker = FleetMarker::of(fleet);
    let name = agent.name.as_str();
    let mut attempt = 1;
    loop {
        let new = NewAuthKey {
            description: marker.description(&nonce(), name),
            tags: agent.tags.clone(),
            expiry: lifetime.min(MAX_KEY_LIFETIME),
        };
        let source = match tailnet.create_auth_key(&new).await {
            Ok(key) => return Ok(key),
            Err(e) => e,
        };
        let agent = name.to_owned();
        if !source.may_have_applied() {
            return Err(KeyError::Refused { agent, source });
        }
        match revoke_described(tailnet, &new.description).await {
            Ok(revoked) => {
                tracing::warn!(attempt, revoked, error = %source, "minting the auth key ended unclear; revoked that attempt's key if it existed");
            }
            Err(cleanup) => {
                return Err(KeyError::Orphaned {
                    agent,
                    source,
                    cleanup,
                });
            }
        }
        if source.retry() == Retry::Terminal || attempt >= MAX_MINT_ATTEMPTS {
            return Err(KeyError::GaveUp {
                agent,
                attempts: attempt,
                source,
            });
        }
        // The pause is drawn before the wait: a thread-local generator held across an
        // `.await` would make the pass a future that cannot move between threads.
        let pause = ATTEMPT_PAUSE.delay(attempt - 1, &mut rand::rng());
        clock.sleep(pause).await;
        attempt += 1;
    }
}

/// Revokes every still-valid key described exactly `description`; returns how many.
async fn revoke_described<T: Tailnet>(tailnet: &T, description: &str) -> Result<usize, Error> {
    let mut revoked = 0;
    for key in tailnet.list_keys().await? {
        if !key.invalid && key.description == description {
            tailnet.delete_key(&key.id).await?;
            revoked += 1;
        }
    }
    Ok(revoked)
}

/// Revokes `key` once its VM no longer needs it (enrolled, or given up on).
///
/// # Errors
/// [`KeyError::Revoke`]: the key stays valid until the next sweep or its expiry.
pub async fn revoke<T: Tailnet>(tailnet: &T, key: &AuthKeyId) -> Result<(), KeyError> {
    tailnet.delete_key(key).await.map(|_| ()).map_err(|source| {
        tracing::warn!(%key, error = %source, "revoking the auth key failed; the next sweep revokes it");
        KeyError::Revoke {
            key: key.clone(),
            source,
        }
    })
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Keys revoked.
    pub revoked: Vec<AuthKeyId>,
    /// Keys whose revocation failed, with why; the next sweep tries again.
    pub failed: Vec<(AuthKeyId, String)>,
    /// Keys left valid because their server may still enrol with them.
    pub spared: Vec<AuthKeyId>,
}

/// Revokes every still-valid key that tether minted for `fleet`: the keys of attempts cut short
/// by a crash, a kill or a failed revocation. Call it at the start of a pass, under the lease.
///
/// # Guarantees
/// Only keys that are valid and whose description carries [`FleetMarker::of`]`(fleet)` are
/// revoked; every other key is left as it is, and so is a key whose agent is in `awaiting`
/// (its server exists but has not joined) while it is younger than [`ENROLMENT_WINDOW`].
///
/// # Errors
/// [`KeyError::List`] when the keys cannot be listed; nothing was revoked then. A failed
/// revocation is not an error: it is in [`SweepReport::failed`].
pub async fn sweep<T: Tailnet>(
    tailnet: &T,
    fleet: &FleetName,
    awaiting: &BTreeSet<String>,
    now: OffsetDateTime,
) -> Result<SweepReport, KeyError> {
    let marker = FleetMarker::of(fleet);
    let keys = tailnet.list_keys().await.map_err(|source| KeyError::List {
        fleet: fleet.as_str().to_owned(),
        source,
    })?;
    let mut report = SweepReport::default();
    for key in keys
        .into_iter()
        .filter(|k| !k.invalid && marker.owns(&k.description))
    {
        if in_flight(&marker, &key, awaiting, now) {
            report.spared.push(key.id);
            continue;
        }
        match tailnet.delete_key(&key.id).await {
            Ok(_) => {
                tracing::info!(key = %key.id, description = %key.description, "swept a leftover auth key");
                report.revoked.push(key.id);
            }
            Err(e) => {
                tracing::warn!(key = %key.id, error = %e, "sweeping a leftover auth key failed");
                report.failed.push((key.id, e.to_string()));
            }
        }
    }
    Ok(report)
}

/// Whether `key` may still be about to enrol a server: its agent has a server of this fleet
/// that has not joined the tailnet yet (`awaiting`), and the key is younger than
/// [`ENROLMENT_WINDOW`]. A cut agent name in the description matches every agent it begins;
/// that spares more keys, never fewer, and each expires within the hour anyway.
pub fn in_flight(
    marker: &FleetMarker,
    key: &AuthKey,
    awaiting: &BTreeSet<String>,
    now: OffsetDateTime,
) -> bool {
    let Some(agent) = marker.agent_of(&key.description) else {
        return false;
    };
    let young = OffsetDateTime::parse(&key.created, &Rfc3339)
        .is_ok_and(|created| now - created < ENROLMENT_WINDOW);
    young && awaiting.iter().any(|a| a.starts_with(agent))
}

/// Agents whose server of this fleet is being created, booting or running without an online
/// device of its own (`owned`: the devices the fleet owns, id → agent): a key minted for them
/// by a run that was cut short may still be used.
pub fn awaiting_enrolment(
    fleet: &Fleet,
    observed: &Observed,
    owned: &BTreeMap<DeviceId, String>,
) -> BTreeSet<String> {
    let online: BTreeSet<&str> = observed
        .devices
        .iter()
        .filter(|d| d.online)
        .filter_map(|d| owned.get(&d.id).map(String::as_str))
        .collect();
    crate::plan::managed_servers(fleet, observed)
        .into_iter()
        .filter(|(agent, s)| {
            matches!(
                s.status,
                ServerStatus::Initializing | ServerStatus::Starting | ServerStatus::Running
            ) && !online.contains(agent)
        })
        .map(|(agent, _)| agent.to_owned())
        .collect()
}

/// [`sweep`] at `now`, with its outcome logged (counts and key ids, never secrets): what a pass
/// runs before it applies. A sweep that fails does not stop the pass; the next pass sweeps
/// again.
pub async fn sweep_logged<T: Tailnet>(
    tailnet: &T,
    fleet: &FleetName,
    awaiting: &BTreeSet<String>,
    now: OffsetDateTime,
) {
    match sweep(tailnet, fleet, awaiting, now).await {
        Ok(swept) => tracing::info!(
            revoked = swept.revoked.len(),
            spared = swept.spared.len(),
            failed = swept.failed.len(),
            "swept leftover auth keys"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "sweeping leftover auth keys failed; the next pass tries again")
        }
    }
}
