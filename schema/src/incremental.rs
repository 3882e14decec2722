//! Checking a fleet one file at a time, for callers that remember what they checked (billing's
//! index): the settings once ([`FleetCheck::new`]), then any agent file against them
//! ([`FleetCheck::agent`]), exactly as [`crate::load_fleet`] checks each file.
//!
//! The cross-file rules (unique names and subscriptions) stay the caller's: an agent file that
//! passes here is valid in a fleet where no other file has its name or subscription. A caller
//! that finds a problem should report [`crate::load_fleet`]'s diagnostics, which name every
//! problem at once.

use crate::diagnostic::Diagnostic;
use crate::load::{self, SourceFile};
use crate::model::Agent;
use crate::validate::FleetContext;

/// A valid `fleet.yaml`, ready to check agent files against.
pub struct FleetCheck {
    fleet: FleetContext,
}

impl std::fmt::Debug for FleetCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetCheck")
            .field("fleet", &self.fleet.settings.name)
            .finish_non_exhaustive()
    }
}

impl FleetCheck {
    /// Parses and validates the fleet file.
    ///
    /// # Errors
    /// Every problem of the fleet file.
    pub fn new(fleet_file: &SourceFile) -> Result<FleetCheck, Vec<Diagnostic>> {
        let mut out = Vec::new();
        match load::load_settings(fleet_file, &mut out) {
            Some(fleet) if out.is_empty() => Ok(FleetCheck { fleet }),
            _ => Err(out),
        }
    }

    /// Parses and validates one file under `agents/`: the agent it holds, or `None` for a file
    /// the loader skips (`.gitkeep`).
    ///
    /// # Errors
    /// Every problem of this file on its own.
    pub fn agent(&self, file: &SourceFile) -> Result<Option<Agent>, Vec<Diagnostic>> {
        let mut out = Vec::new();
        let agent = load::load_agent(file, Some(&self.fleet), &mut out);
        if !out.is_empty() {
            return Err(out);
        }
        Ok(agent.map(|(agent, _, _)| agent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{Content, load_fleet};

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.to_owned(),
            content: Content::Bytes(text.as_bytes().to_vec()),
        }
    }

    const FLEET: &str = "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: f}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  catalog: {serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}\n";

    #[test]
    fn an_agent_checked_alone_is_the_agent_the_whole_load_gives() {
        let agent = file(
            "agents/a.yaml",
            "apiVersion: tether/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  subscription: sub_a\n  runtime: {version: \"1.0.0\"}\n",
        );
        let check = FleetCheck::new(&file("fleet.yaml", FLEET)).expect("valid fleet");
        let alone = check.agent(&agent).expect("valid").expect("an agent");
        let fleet = load_fleet(&[file("fleet.yaml", FLEET), agent]).expect("valid");
        assert_eq!(fleet.agents.values().next(), Some(&alone));
        assert_eq!(check.agent(&file("agents/.gitkeep", "")), Ok(None));
    }

    #[test]
    fn problems_of_one_file_and_of_the_fleet_file_are_reported() {
        let check = FleetCheck::new(&file("fleet.yaml", FLEET)).expect("valid fleet");
        let bad = check
            .agent(&file(
                "agents/b.yaml",
                "apiVersion: tether/v1\nkind: Agent\nmetadata: {name: B!}\nspec: {}\n",
            ))
            .expect_err("invalid");
        assert!(bad.iter().all(|d| d.file == "agents/b.yaml"), "{bad:?}");
        let fleet = FleetCheck::new(&file("fleet.yaml", "kind: Fleet\n")).err();
        assert!(fleet.is_some_and(|d| !d.is_empty()));
    }
}
