//! A local bare mirror of a fleet's remote repository ([`RepoCache`]): opened once, kept in a
//! cache directory, refreshed with [`RepoCache::fetch`] and read with [`super::git::read`].
//!
//! Remotes: local paths, `file://`, `https://` (optionally with a token, sent as the password
//! of user `x-access-token`), `http://` (a token only to a loopback host) and `git://`.
//! `ssh://` and `user@host:path` are not supported yet. Credentials never appear in URLs we
//! accept, in error messages or in `Debug` output.

mod url;

use crate::secret::Secret;
use git2::{Cred, CredentialType, FetchOptions, RemoteCallbacks, Repository};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
pub use url::{RemoteUrl, redact};

/// The user name sent with a token; GitHub accepts any, and documents this one.
pub const TOKEN_USERNAME: &str = "x-access-token";
/// The remote name recorded in the cache repository's config.
const ORIGIN: &str = "origin";

/// How to authenticate to the remote.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// No credentials: public or local remotes.
    #[default]
    None,
    /// A token (e.g. `GITHUB_TOKEN`), offered when an http(s) remote asks for credentials.
    Token(Secret<String>),
}

/// Why the cache could not be opened or refreshed. URLs in it never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL's transport is not supported.
    #[error("remote `{url}` is not supported: {reason}")]
    UnsupportedUrl {
        /// The URL, credentials removed.
        url: String,
        /// Why, and what to use instead.
        reason: &'static str,
    },
    /// The URL holds a user name or password.
    #[error("remote `{url}` holds credentials in the URL")]
    InlineCredentials {
        /// The URL, credentials removed.
        url: String,
    },
    /// A token would be sent in clear text.
    #[error("refusing to send a token to `{url}` over plain http")]
    InsecureToken {
        /// The URL.
        url: String,
    },
    /// The cache directory cannot be created or opened as a bare repository.
    #[error("cannot use `{path}` as the repository cache: {message}")]
    CacheDir {
        /// The cache directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The cache directory mirrors a different remote.
    #[error("the cache `{path}` mirrors `{cached}`, not `{url}`")]
    CacheMismatch {
        /// The cache directory.
        path: PathBuf,
        /// The remote it mirrors.
        cached: String,
        /// The remote asked for.
        url: String,
    },
    /// The branch name is not a valid git ref name.
    #[error("`{branch}` is not a valid branch name")]
    InvalidBranch {
        /// The name given.
        branch: String,
    },
    /// Talking to the remote failed (network, authentication, a damaged repository).
    #[error("fetching `{refspec}` from `{url}` failed: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// What was fetched.
        refspec: String,
        /// libgit2's message, credentials removed.
        message: String,
    },
    /// The remote has no such branch.
    #[error("branch `{branch}` does not exist in `{url}`")]
    BranchNotFound {
        /// The URL.
        url: String,
        /// The branch asked for.
        branch: String,
    },
}

impl RemoteError {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            RemoteError::UnsupportedUrl { .. } => "use an https URL, a file:// URL or a path",
            RemoteError::InlineCredentials { .. } | RemoteError::InsecureToken { .. } => {
                "remove the credentials from the URL, use https, and pass the token in GITHUB_TOKEN"
            }
            RemoteError::CacheDir { .. } => {
                "point the cache at an empty or missing directory that tether may write"
            }
            RemoteError::CacheMismatch { .. } => {
                "use a separate cache directory per remote, or delete this one"
            }
            RemoteError::InvalidBranch { .. } => "name a branch such as `main`",
            RemoteError::Fetch { .. } => {
                "check the URL, the network and that the token may read the repository"
            }
            RemoteError::BranchNotFound { .. } => "push the branch or configure the right one",
        }
    }
}

/// A bare mirror of one remote in a cache directory. Cloning shares the serialisation of git
/// operations, so one process never runs two against the same cache at once.
#[derive(Debug, Clone)]
pub struct RepoCache {
    dir: PathBuf,
    url: RemoteUrl,
    credentials: Credentials,
    busy: Arc<Mutex<()>>,
}

impl RepoCache {
    /// Opens the mirror of `url` in `cache_dir`, creating a bare repository there when the
    /// directory is missing or empty. An existing mirror is reused, never cloned again.
    ///
    /// # Errors
    /// The URL is unsupported or holds credentials, a token would go over plain http, the
    /// directory is neither empty nor a bare repository, or it mirrors another remote.
    pub fn open(
        cache_dir: &Path,
        url: &str,
        credentials: Credentials,
    ) -> Result<RepoCache, RemoteError> {
        let url = RemoteUrl::parse(url)?;
        if matches!(credentials, Credentials::Token(_))
            && !url.token_allowed
            && url.as_str().starts_with("http")
        {
            return Err(RemoteError::InsecureToken {
                url: url.to_string(),
            });
        }
        let dir_err = |message: String| RemoteError::CacheDir {
            path: cache_dir.to_owned(),
            message,
        };
        let repo = match Repository::open_bare(cache_dir) {
            Ok(repo) => repo,
            Err(_) if is_missing_or_empty(cache_dir) => {
                Repository::init_bare(cache_dir).map_err(|e| dir_err(e.message().to_owned()))?
            }
            Err(_) => return Err(dir_err("not empty and not a bare git repository".into())),
        };
        match repo.find_remote(ORIGIN) {
            Ok(remote) if remote.url() == Some(url.as_str()) => {}
            Ok(remote) => {
                return Err(RemoteError::CacheMismatch {
                    path: cache_dir.to_owned(),
                    cached: redact(remote.url().unwrap_or("(not UTF-8)")),
                    url: url.to_string(),
                });
            }
            Err(_) => {
                repo.remote(ORIGIN, url.as_str())
                    .map_err(|e| dir_err(e.message().to_owned()))?;
            }
        }
        Ok(RepoCache {
            dir: cache_dir.to_owned(),
            url,
            credentials,
            busy: Arc::new(Mutex::new(())),
        })
    }

    /// The bare repository's path, for [`super::git::read`].
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The remote this cache mirrors.
    pub fn url(&self) -> &RemoteUrl {
        &self.url
    }

    /// The ref `branch` is fetched into: `refs/remotes/origin/<branch>`.
    pub fn tracking_ref(branch: &str) -> String {
        format!("refs/remotes/{ORIGIN}/{branch}")
    }

    /// Fetches `branch` into [`RepoCache::tracking_ref`] and returns its commit id. Blocking:
    /// call it from `tokio::task::spawn_blocking` in async code.
    ///
    /// # Errors
    /// The branch name is invalid, the remote cannot be reached or refuses us, or it has no
    /// such branch.
    pub fn fetch(&self, branch: &str) -> Result<String, RemoteError> {
        let source = format!("refs/heads/{branch}");
        if !git2::Reference::is_valid_name(&source) {
            return Err(RemoteError::InvalidBranch {
                branch: branch.to_owned(),
            });
        }
        let refspec = format!("+{source}:{}", RepoCache::tracking_ref(branch));
        let _busy = self.serialise();
        let found = self.fetch_refspec(&self.repository()?, &refspec, &source)?;
        found
            .map(|id| id.to_string())
            .ok_or_else(|| RemoteError::BranchNotFound {
                url: self.url.to_string(),
                branch: branch.to_owned(),
            })
    }

    /// Fetches `refspec` into `repo` (the cache, opened by the caller, who holds
    /// [`RepoCache::serialise`]) and returns the remote's value of `source`, `None` when the
    /// remote does not have it.
    pub(crate) fn fetch_refspec(
        &self,
        repo: &Repository,
        refspec: &str,
        source: &str,
    ) -> Result<Option<git2::Oid>, RemoteError> {
        let fail = |e: git2::Error| self.fetch_error(refspec, &e);
        let mut remote = repo.find_remote(ORIGIN).map_err(fail)?;
        let mut options = FetchOptions::new();
        options.remote_callbacks(self.callbacks());
        remote
            .fetch(&[refspec], Some(&mut options), None)
            .map_err(fail)?;
        let head = remote
            .list()
            .map_err(fail)?
            .iter()
            .find(|h| h.name() == source)
            .map(|h| h.oid());
        Ok(head)
    }

    /// The cache's remote `origin` in `repo` (the cache, opened by the caller).
    pub(crate) fn origin<'r>(&self, repo: &'r Repository) -> Result<git2::Remote<'r>, git2::Error> {
        repo.find_remote(ORIGIN)
    }

    /// Opens the cache repository.
    pub(crate) fn repository(&self) -> Result<Repository, RemoteError> {
        Repository::open_bare(&self.dir).map_err(|e| RemoteError::CacheDir {
            path: self.dir.clone(),
            message: e.message().to_owned(),
        })
    }

    /// Holds the cache's operation lock (one git operation per cache at a time in this
    /// process) for the lifetime of the guard.
    pub(crate) fn serialise(&self) -> std::sync::MutexGuard<'_, ()> {
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Callbacks offering the token once when the remote asks for credentials.
    pub(crate) fn callbacks<'a>(&self) -> RemoteCallbacks<'a> {
        let mut callbacks = RemoteCallbacks::new();
        let token = match &self.credentials {
            Credentials::Token(token) if self.url.token_allowed => Some(token.clone()),
            _ => None,
        };
        let mut offered = false;
        callbacks.credentials(move |_, _, allowed| match &token {
            Some(token) if !offered && allowed.contains(CredentialType::USER_PASS_PLAINTEXT) => {
                offered = true;
                Cred::userpass_plaintext(TOKEN_USERNAME, token.expose())
            }
            Some(_) => Err(git2::Error::from_str("the remote refused the token")),
            None => Err(git2::Error::from_str(
                "the remote asks for credentials and no token is configured",
            )),
        });
        callbacks
    }

    /// A [`RemoteError::Fetch`] whose message cannot hold the token.
    pub(crate) fn fetch_error(&self, refspec: &str, e: &git2::Error) -> RemoteError {
        RemoteError::Fetch {
            url: self.url.to_string(),
            refspec: refspec.to_owned(),
            message: self.scrub(e.message()),
        }
    }

    /// `message` with the token, should it appear, replaced by `[redacted]`.
    pub(crate) fn scrub(&self, message: &str) -> String {
        match &self.credentials {
            Credentials::Token(token) if !token.expose().is_empty() => {
                message.replace(token.expose().as_str(), "[redacted]")
            }
            _ => message.to_owned(),
        }
    }
}

fn is_missing_or_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none())
}

#[cfg(test)]
mod tests;
