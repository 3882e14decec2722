//! Single writer: a [`Lease`] stored as a ref in the fleet repository, so two daemons pointed
//! at the same fleet never act at once. Start at [`Lease::acquire`], then keep the lease alive
//! and fence the provider clients with [`LeaseGuard`]; the design is recorded in
//! `docs/decisions/004-single-writer-lock.md` and `docs/decisions/011-lease-guard.md`.
//!
//! The ref `refs/tether/locks/<fleet>` points at a parentless commit with an empty tree whose
//! message holds the lease ([`LeaseRecord`]) as trailers. Every change is a compare-and-swap
//! of that ref ([`LockStore`]): in a repository on this machine with libgit2's checked ref update,
//! on a remote with a push whose expected old value is verified before upload (in the
//! `push_negotiation` callback) and again, atomically, by the receiving server.
//!
//! # Guarantees
//! - At most one holder has a lease that has not expired: a write succeeds only if the ref
//!   still holds the value its writer read, and a valid lease is never overwritten by anyone
//!   but its holder.
//! - A crashed holder's lease can be taken over once its `expires_at` has passed; a released
//!   lease at once.
//! - A holder learns that its lease was taken over on its next [`Lease::renew`] or
//!   [`Lease::release`] ([`LockError::Lost`]).
//!
//! # Assumptions
//! - The daemons' clocks agree to well within [`Lease::margin`] (a quarter of the TTL): expiry
//!   is judged by the taker's clock against the time the holder wrote.
//! - The holder renews every [`Lease::renew_every`] (also while it waits for provider actions
//!   to complete) and checks [`Lease::is_valid`] before each mutating API request; one request
//!   takes less than the margin. A lease cannot stop a request already in flight when it runs
//!   out.
//! - Nobody but tether writes `refs/tether/locks/*`, and the remote verifies the old value of
//!   a pushed ref (git's receive-pack, GitHub and GitLab do).

mod guard;
mod store;

use crate::cloud::retry::Clock;
use crate::source::remote::RepoCache;
pub use guard::{LeaseFence, LeaseGuard};
use std::time::{Duration, SystemTime};
pub use store::LockStore;
pub(in crate::daemon) use store::{lost_race, push_checked};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Where leases live in the fleet repository.
pub const LOCK_REF_PREFIX: &str = "refs/tether/locks/";
/// The default TTL: renewed every 40 s, with a 30 s margin for clock skew and a request in
/// flight.
pub const DEFAULT_TTL: Duration = Duration::from_secs(120);
const HOLDER: &str = "Tether-Lease-Holder";
const ACQUIRED: &str = "Tether-Lease-Acquired-At";
const EXPIRES: &str = "Tether-Lease-Expires-At";
const RELEASED: &str = "Tether-Lease-Released";

/// The content of one lease commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Who holds it: a unique id per daemon process (e.g. `host-a/4711/9f3c`).
    pub holder: String,
    /// When the holder first acquired it.
    pub acquired_at: SystemTime,
    /// When it ends unless renewed.
    pub expires_at: SystemTime,
    /// Whether the holder gave it up.
    pub released: bool,
}

impl LeaseRecord {
    /// Whether the lease still excludes everyone else at `now`.
    pub fn is_live(&self, now: SystemTime) -> bool {
        !self.released && now < self.expires_at
    }

    fn message(&self, fleet: &str) -> String {
        let mut message = format!(
            "tether lease for fleet {fleet}\n\n{HOLDER}: {}\n{ACQUIRED}: {}\n{EXPIRES}: {}\n",
            self.holder,
            rfc3339(self.acquired_at),
            rfc3339(self.expires_at)
        );
        if self.released {
            message.push_str(&format!("{RELEASED}: true\n"));
        }
        message
    }

    fn parse(message: &str) -> Result<LeaseRecord, String> {
        let field = |key: &str| {
            message
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(": "))
                .ok_or_else(|| format!("no `{key}` trailer"))
        };
        let time = |key: &str| {
            let text = field(key)?;
            OffsetDateTime::parse(text, &Rfc3339)
                .map(SystemTime::from)
                .map_err(|e| format!("`{key}: {text}`: {e}"))
        };
        Ok(LeaseRecord {
            holder: field(HOLDER)?.to_owned(),
            acquired_at: time(ACQUIRED)?,
            expires_at: time(EXPIRES)?,
            released: field(RELEASED).is_ok_and(|v| v == "true"),
        })
    }
}

/// `at` as RFC 3339 in UTC.
pub fn rfc3339(at: SystemTime) -> String {
    OffsetDateTime::from(at)
        .format(&Rfc3339)
        .unwrap_or_else(|_| format!("{at:?}"))
}

/// Why a lease could not be acquired, renewed or released.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another holder's lease is valid.
    #[error("fleet `{fleet}` is locked by `{holder}` until {}", rfc3339(*expires_at))]
    Held {
        /// The fleet.
        fleet: String,
        /// The current holder.
        holder: String,
        /// When its lease expires unless renewed.
        expires_at: SystemTime,
    },
    /// Our lease was taken over or removed: stop acting at once.
    #[error("the lease on fleet `{fleet}` was lost (now held by {})", holder.as_deref().unwrap_or("nobody"))]
    Lost {
        /// The fleet.
        fleet: String,
        /// Who holds the ref now, when anyone does.
        holder: Option<String>,
    },
    /// Another daemon wrote the lock at the same moment and no valid lease resulted.
    #[error("fleet `{fleet}`'s lock changed while we wrote it")]
    Contended {
        /// The fleet.
        fleet: String,
    },
    /// The fleet name or holder id cannot be used.
    #[error("invalid lease: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// The lock ref points at something that is not a lease commit.
    #[error("`{ref_name}` in `{url}` points at {commit}, which is not a tether lease: {reason}")]
    Unreadable {
        /// The repository (no credentials).
        url: String,
        /// The lock ref.
        ref_name: String,
        /// Its commit.
        commit: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing the repository failed.
    #[error("lock `{ref_name}` in `{url}`: {message}")]
    Git {
        /// The repository (no credentials).
        url: String,
        /// The lock ref.
        ref_name: String,
        /// What failed, credentials removed.
        message: String,
    },
}

impl LockError {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            LockError::Held { .. } => {
                "another tether daemon manages this fleet; stop it, or wait until its lease expires"
            }
            LockError::Lost { .. } => "another daemon took over; this one must stop acting",
            LockError::Contended { .. } => "try again",
            LockError::Invalid { .. } => {
                "use a fleet name without `/` and a one-line holder id up to 200 characters"
            }
            LockError::Unreadable { .. } => {
                "delete the ref (`git push origin :refs/tether/locks/<fleet>`) if no daemon runs"
            }
            LockError::Git { .. } => {
                "check that the repository is reachable and that the token may push to it"
            }
        }
    }
}

/// A held lease. Blocking: in async code call its methods from `spawn_blocking`.
#[derive(Debug)]
pub struct Lease<C: Clock> {
    store: LockStore,
    fleet: String,
    ttl: Duration,
    clock: C,
    record: LeaseRecord,
    commit: git2::Oid,
}

impl<C: Clock> Lease<C> {
    /// Takes the lease on `fleet` for `holder` for `ttl`, if nobody holds a valid one.
    ///
    /// # Errors
    /// [`LockError::Held`] while another valid lease exists (whoever holds it, including the
    /// same holder id); [`LockError::Contended`] when a concurrent writer won without leaving a
    /// valid lease; repository errors.
    pub fn acquire(
        store: &LockStore,
        fleet: &str,
        holder: &str,
        ttl: Duration,
        clock: C,
    ) -> Result<Lease<C>, LockError> {
        validate(fleet, holder)?;
        let current = store.read(fleet)?;
        let now = clock.now();
        if let Some((_, record)) = &current
            && record.is_live(now)
        {
            return Err(held(fleet, record));
        }
        let record = LeaseRecord {
            holder: holder.to_owned(),
            acquired_at: now,
            expires_at: now + ttl,
            released: false,
        };
        let expected = current.map(|(id, _)| id);
        match store.swap(fleet, expected, &record, now)? {
            Some(commit) => {
                tracing::info!(fleet, holder, expires_at = %rfc3339(record.expires_at), "lease acquired");
                Ok(Lease {
                    store: store.clone(),
                    fleet: fleet.to_owned(),
                    ttl,
                    clock,
                    record,
                    commit,
                })
            }
            None => match store.read(fleet)? {
                Some((_, winner)) if winner.is_live(clock.now()) => Err(held(fleet, &winner)),
                _ => Err(LockError::Contended {
                    fleet: fleet.to_owned(),
                }),
            },
        }
    }

    /// Extends the lease to `now + ttl`.
    ///
    /// # Errors
    /// [`LockError::Lost`] when the ref no longer holds our lease; [`LockError::Contended`]
    /// when another writer held the ref at that moment (the lease is intact: try again);
    /// repository errors.
    pub fn renew(&mut self) -> Result<(), LockError> {
        let now = self.clock.now();
        let record = LeaseRecord {
            expires_at: now + self.ttl,
            ..self.record.clone()
        };
        self.commit = self.write(&record, now)?;
        self.record = record;
        Ok(())
    }

    /// Gives the lease up so another daemon can acquire it at once.
    ///
    /// # Errors
    /// [`LockError::Lost`] when the ref no longer holds our lease; repository errors.
    pub fn release(self) -> Result<(), LockError> {
        let now = self.clock.now();
        let record = LeaseRecord {
            expires_at: now,
            released: true,
            ..self.record.clone()
        };
        self.write(&record, now)?;
        tracing::info!(fleet = %self.fleet, holder = %self.record.holder, "lease released");
        Ok(())
    }

    fn write(&self, record: &LeaseRecord, now: SystemTime) -> Result<git2::Oid, LockError> {
        match self
            .store
            .swap(&self.fleet, Some(self.commit), record, now)?
        {
            Some(commit) => Ok(commit),
            None => {
                let current = self.store.read(&self.fleet)?;
                if current.as_ref().is_some_and(|(id, _)| *id == self.commit) {
                    // Another writer held the ref's lock for a moment; our lease is untouched.
                    return Err(LockError::Contended {
                        fleet: self.fleet.clone(),
                    });
                }
                let holder = current.map(|(_, r)| r.holder);
                tracing::warn!(fleet = %self.fleet, holder = holder.as_deref().unwrap_or("nobody"), "lease lost");
                Err(LockError::Lost {
                    fleet: self.fleet.clone(),
                    holder,
                })
            }
        }
    }

    /// The lease as last written.
    pub fn record(&self) -> &LeaseRecord {
        &self.record
    }

    /// How long before `expires_at` the holder stops considering the lease valid: a quarter of
    /// the TTL, the budget for clock skew and for an action in flight.
    pub fn margin(&self) -> Duration {
        self.ttl / 4
    }

    /// How often to renew: a third of the TTL.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// Whether the holder may start an action now: the lease has more than
    /// [`Lease::margin`] left.
    pub fn is_valid(&self) -> bool {
        self.clock.now() + self.margin() < self.record.expires_at
    }
}

/// The lease currently stored for `fleet`, if any (for status displays).
///
/// # Errors
/// The fleet name is invalid, or the repository cannot be read.
pub fn current(store: &LockStore, fleet: &str) -> Result<Option<LeaseRecord>, LockError> {
    validate(fleet, "reader")?;
    Ok(store.read(fleet)?.map(|(_, record)| record))
}

fn held(fleet: &str, record: &LeaseRecord) -> LockError {
    LockError::Held {
        fleet: fleet.to_owned(),
        holder: record.holder.clone(),
        expires_at: record.expires_at,
    }
}

fn validate(fleet: &str, holder: &str) -> Result<(), LockError> {
    let invalid = |reason: String| Err(LockError::Invalid { reason });
    if fleet.is_empty()
        || fleet.contains('/')
        || !git2::Reference::is_valid_name(&format!("{LOCK_REF_PREFIX}{fleet}"))
    {
        return invalid(format!("`{fleet}` cannot name a git ref"));
    }
    if holder.trim().is_empty() || holder.len() > 200 || holder.contains(['\n', '\r']) {
        return invalid(format!(
            "holder id `{}` is empty, too long or multi-line",
            holder.escape_debug()
        ));
    }
    Ok(())
}

impl LockStore {
    /// Leases kept in the remote that `cache` mirrors: in the repository itself when it is on
    /// this machine, else pushed through the cache.
    pub fn for_cache(cache: &RepoCache) -> LockStore {
        match cache.url().local_path() {
            Some(path) => LockStore::Local(path.to_owned()),
            None => LockStore::Remote(cache.clone()),
        }
    }
}

#[cfg(test)]
mod tests;
