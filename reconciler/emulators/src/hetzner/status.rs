//! [`ServerStatus`]: a server's lifecycle state, with the names of the Hetzner Cloud API's
//! `server.status` enum.

use serde::{Deserialize, Serialize};

/// A server's lifecycle state, as the API reports it in `server.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerStatus {
    /// `initializing`: being created.
    Initializing,
    /// `starting`: booting.
    Starting,
    /// `running`.
    Running,
    /// `stopping`: shutting down.
    Stopping,
    /// `off`: powered off.
    Off,
    /// `deleting`.
    Deleting,
    /// `migrating`: moving between hosts.
    Migrating,
    /// `rebuilding`: its disk is being re-imaged.
    Rebuilding,
    /// `unknown`.
    Unknown,
}

impl ServerStatus {
    /// The wire name, e.g. `running`.
    pub fn name(self) -> &'static str {
        match self {
            ServerStatus::Initializing => "initializing",
            ServerStatus::Starting => "starting",
            ServerStatus::Running => "running",
            ServerStatus::Stopping => "stopping",
            ServerStatus::Off => "off",
            ServerStatus::Deleting => "deleting",
            ServerStatus::Migrating => "migrating",
            ServerStatus::Rebuilding => "rebuilding",
            ServerStatus::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for status in [
            ServerStatus::Initializing,
            ServerStatus::Starting,
            ServerStatus::Running,
            ServerStatus::Stopping,
            ServerStatus::Off,
            ServerStatus::Deleting,
            ServerStatus::Migrating,
            ServerStatus::Rebuilding,
            ServerStatus::Unknown,
        ] {
            assert_eq!(
                serde_json::to_value(status).expect("serializes"),
                serde_json::Value::String(status.name().to_owned())
            );
        }
    }
}
