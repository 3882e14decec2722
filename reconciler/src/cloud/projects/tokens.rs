//! Where each project's Hetzner token comes from: `HCLOUD_TOKEN_<PROJECT>`, the project name
//! in capitals with `-` as `_` (`eu-1` → `HCLOUD_TOKEN_EU_1`). Tokens never live in the fleet
//! repository; the one-shot commands and the daemon read them the same way. Every project uses
//! the one Hetzner endpoint unless `HCLOUD_ENDPOINT_<PROJECT>` names another (emulators: one
//! instance per project).

use super::Projects;
use crate::cloud::hetzner;
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// The environment variable holding `project`'s token.
pub fn token_var(project: &str) -> String {
    format!("HCLOUD_TOKEN_{}", suffix(project))
}

/// The environment variable that points `project` at its own endpoint.
pub fn endpoint_var(project: &str) -> String {
    format!("HCLOUD_ENDPOINT_{}", suffix(project))
}

fn suffix(project: &str) -> String {
    project.to_ascii_uppercase().replace('-', "_")
}

/// One client per project, each with its own token (from `env`) and rate-limit bucket, and
/// otherwise `base`'s settings (endpoint unless [`endpoint_var`] is set, timeouts, backoff).
///
/// # Errors
/// [`hetzner::Error::Config`] naming every project without a token and the variable to set;
/// or a client cannot be built.
pub fn clients(
    projects: &[String],
    base: &hetzner::Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, hetzner::Client)>, hetzner::Error> {
    let missing: Vec<String> = projects
        .iter()
        .filter(|p| env(&token_var(p)).is_none_or(|t| t.is_empty()))
        .map(|p| format!("`{p}` (set {})", token_var(p)))
        .collect();
    if !missing.is_empty() {
        return Err(hetzner::Error::Config(format!(
            "fleet.yaml declares Hetzner projects without a token: {}; export each project's API token (read/write) in its variable",
            missing.join(", ")
        )));
    }
    projects
        .iter()
        .map(|p| {
            let mut config = base.clone();
            config.token = Secret::new(env(&token_var(p)).unwrap_or_default());
            if let Some(url) = env(&endpoint_var(p)).filter(|u| !u.is_empty()) {
                url.trim_end_matches('/').clone_into(&mut config.endpoint);
            }
            hetzner::Client::new(config).map(|c| (p.clone(), c))
        })
        .collect()
}

/// The daemon's clients, kept across passes so each project's rate-limit bucket is tracked for
/// as long as the daemon runs; [`Registry::prepare`] fits the shared [`Projects`] to the fleet
/// of each pass.
#[derive(Debug)]
pub struct Registry {
    base: hetzner::Config,
    single: hetzner::Client,
    built: Mutex<BTreeMap<String, hetzner::Client>>,
    /// The composite every pass uses (clones share it).
    pub compute: Projects<hetzner::Client>,
}

impl Registry {
    /// Starts single-project, with `single` (the `HCLOUD_TOKEN` client) and `base` for the
    /// clients of projects.
    pub fn new(base: hetzner::Config, single: hetzner::Client) -> Registry {
        Registry {
            base,
            compute: Projects::single(single.clone()),
            single,
            built: Mutex::default(),
        }
    }

    /// Sets the composite to `projects` (those fleet.yaml declares; none: the single token),
    /// building clients for projects seen for the first time with tokens from `env`.
    ///
    /// # Errors
    /// A declared project has no token ([`clients`]); the composite is then left with no
    /// projects, so nothing is read or changed until the token is given.
    pub fn prepare(
        &self,
        projects: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), hetzner::Error> {
        if projects.is_empty() {
            self.compute.set(None, Some(self.single.clone()));
            return Ok(());
        }
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let new: Vec<String> = projects
            .iter()
            .filter(|p| !built.contains_key(*p))
            .cloned()
            .collect();
        match clients(&new, &self.base, env) {
            Ok(made) => built.extend(made),
            Err(e) => {
                self.compute.set(None, None);
                return Err(e);
            }
        }
        let members = projects
            .iter()
            .filter_map(|p| built.get(p).map(|c| (p.clone(), c.clone())))
            .collect();
        self.compute.set(Some(members), None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_variables_are_named_after_the_project() {
        assert_eq!(token_var("eu-1"), "HCLOUD_TOKEN_EU_1");
        assert_eq!(token_var("fsn"), "HCLOUD_TOKEN_FSN");
        assert_eq!(endpoint_var("eu-1"), "HCLOUD_ENDPOINT_EU_1");
    }

    #[test]
    fn a_project_without_a_token_is_named_with_its_variable_and_no_token_leaks() {
        let base = hetzner::Config::new("http://127.0.0.1:9", Secret::new(String::new()));
        let env = |var: &str| (var == "HCLOUD_TOKEN_EU_1").then(|| "sekrit-eu-1".to_owned());
        let err = clients(&["eu-1".into(), "eu-2".into()], &base, &env)
            .expect_err("eu-2 has no token")
            .to_string();
        assert!(err.contains("`eu-2` (set HCLOUD_TOKEN_EU_2)"), "{err}");
        assert!(!err.contains("eu-1`"), "{err}");
        assert!(!err.contains("sekrit"), "{err}");
        let made = clients(&["eu-1".into()], &base, &env).expect("eu-1 has a token");
        assert_eq!(made.len(), 1);
    }

    #[test]
    fn the_registry_follows_the_fleet_and_keeps_clients_across_passes() {
        let base = hetzner::Config::new("http://127.0.0.1:9", Secret::new(String::new()));
        let single = hetzner::Client::new(base.clone()).expect("client");
        let registry = Registry::new(base, single);
        let env = |var: &str| var.starts_with("HCLOUD_TOKEN_EU").then(|| "t".to_owned());
        registry
            .prepare(&["eu-1".into(), "eu-2".into()], &env)
            .expect("both have tokens");
        assert_eq!(registry.compute.names(), ["eu-1", "eu-2"]);
        let err = registry
            .prepare(&["eu-1".into(), "us-1".into()], &env)
            .expect_err("us-1 has no token");
        assert!(err.to_string().contains("HCLOUD_TOKEN_US_1"), "{err}");
        assert!(registry.compute.names().is_empty(), "nothing to act on");
        registry.prepare(&[], &env).expect("single");
        assert!(registry.compute.names().is_empty());
        assert!(
            registry.compute.member("").is_some(),
            "the single token's client"
        );
    }
}
