//! The GitHub client's configuration: the API URL, the token and the fleet repository, from
//! `GITHUB_API_URL`, `GITHUB_TOKEN` and `GITHUB_REPOSITORY` (the variables GitHub Actions sets).

use super::error::Error;
use crate::cloud::retry::Backoff;
use crate::secret::Secret;
use std::fmt;
use std::time::Duration;

/// The public API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// A repository, `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// User or organisation.
    pub owner: String,
    /// Repository name.
    pub name: String,
}

impl Repository {
    /// Parses `owner/name` as GitHub allows them (owner: letters, digits, `-`; name: letters,
    /// digits, `.`, `_`, `-`).
    ///
    /// # Errors
    /// Anything else, with a hint.
    pub fn parse(full: &str) -> Result<Repository, Error> {
        let bad = || Error::Config(format!("GITHUB_REPOSITORY `{full}` is not `owner/name`"));
        let (owner, name) = full.split_once('/').ok_or_else(bad)?;
        let owner_ok = (1..=39).contains(&owner.len())
            && owner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let name_ok = (1..=100).contains(&name.len())
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !(owner_ok && name_ok) {
            return Err(bad());
        }
        Ok(Repository {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// How to reach GitHub.
#[derive(Debug, Clone)]
pub struct Config {
    /// API base URL (`https://api.github.com`, a GHES `…/api/v3`, or an emulator).
    pub api_url: String,
    /// Token: a PAT, or the Actions `GITHUB_TOKEN`.
    pub token: Secret<String>,
    /// The fleet repository.
    pub repository: Repository,
    /// Retry policy for requests.
    pub backoff: Backoff,
    /// Connect timeout of one request.
    pub connect_timeout: Duration,
    /// Read timeout of one request.
    pub read_timeout: Duration,
}

impl Config {
    /// A configuration with default policies.
    pub fn new(api_url: impl Into<String>, token: Secret<String>, repository: Repository) -> Self {
        Config {
            api_url: api_url.into().trim_end_matches('/').to_owned(),
            token,
            repository,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        }
    }

    /// Reads `GITHUB_TOKEN` and `GITHUB_REPOSITORY` (both required; GitHub Actions sets them)
    /// and `GITHUB_API_URL` (default: the public API).
    ///
    /// # Errors
    /// A required variable is unset or empty, or the repository is not `owner/name`.
    pub fn from_env() -> Result<Self, Error> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], reading variables through `var`.
    ///
    /// # Errors
    /// As [`Config::from_env`].
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let required = |name: &str, hint: &str| {
            var(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("{name} is not set: {hint}")))
        };
        let token = required(
            "GITHUB_TOKEN",
            "export a token that may write issues, pull requests and commit statuses",
        )?;
        let repository = required(
            "GITHUB_REPOSITORY",
            "export the fleet repository as owner/name",
        )?;
        let api_url = var("GITHUB_API_URL")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        Ok(Config::new(
            api_url,
            Secret::new(token),
            Repository::parse(&repository)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_comes_from_the_actions_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let config = Config::from_lookup(vars(&[
            ("GITHUB_TOKEN", "t"),
            ("GITHUB_REPOSITORY", "acme/fleet"),
        ]))
        .expect("config");
        assert_eq!(
            (config.api_url.as_str(), config.repository.to_string()),
            (DEFAULT_API_URL, "acme/fleet".to_owned())
        );
        let err =
            Config::from_lookup(vars(&[("GITHUB_REPOSITORY", "acme/fleet")])).expect_err("token");
        assert!(err.to_string().contains("GITHUB_TOKEN is not set"), "{err}");
        for bad in ["acme", "acme/", "a/b/c", "ac me/fleet", "acme/.."] {
            assert!(Repository::parse(bad).is_err(), "{bad}");
        }
    }
}
