//! What `tether-agent` reads at start: the variables cloud-init wrote to
//! `/etc/tether/agent-client.env` (its unit's `EnvironmentFile`) and the credential file they
//! name. See `tether_schema::cloud_init::agent`.

use crate::secret::Secret;
use std::path::PathBuf;
use tether_schema::cloud_init::agent::{CREDENTIAL_PATH, CREDENTIAL_VAR, NAME_VAR, URL_VAR};

/// The agent's configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The agent API's base URL.
    pub url: String,
    /// This VM's agent name.
    pub name: String,
    /// Where the credential is.
    pub credential_file: PathBuf,
}

/// Why the agent cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable is missing.
    #[error(
        "{0} is not set: tether-agent reads it from /etc/tether/agent-client.env, which cloud-init writes; run it through its systemd unit"
    )]
    Missing(&'static str),
    /// The credential file cannot be read.
    #[error("cannot read the agent credential {path}: {source}")]
    Credential {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl AgentConfig {
    /// Reads the configuration from the environment through `var`.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] names the first missing variable.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<AgentConfig, ConfigError> {
        Ok(AgentConfig {
            url: var(URL_VAR).ok_or(ConfigError::Missing(URL_VAR))?,
            name: var(NAME_VAR).ok_or(ConfigError::Missing(NAME_VAR))?,
            credential_file: var(CREDENTIAL_VAR)
                .unwrap_or_else(|| CREDENTIAL_PATH.to_owned())
                .into(),
        })
    }

    /// The credential, trimmed.
    ///
    /// # Errors
    /// [`ConfigError::Credential`] when the file cannot be read.
    pub fn credential(&self) -> Result<Secret<String>, ConfigError> {
        std::fs::read_to_string(&self.credential_file)
            .map(|text| Secret::new(text.trim().to_owned()))
            .map_err(|source| ConfigError::Credential {
                path: self.credential_file.clone(),
                source,
            })
    }
}
