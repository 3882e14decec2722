//! The `dashboard:` block: the optional read token (from `TETHER_DASHBOARD_TOKEN` or the file
//! `dashboard.readTokenFile`, never inline) and the base URL status commits link to
//! (`dashboard.commitUrl`).

use super::check::Check;
use super::raw::DASHBOARD_TOKEN_ENV;
use crate::secret::Secret;

/// How the dashboard is served.
#[derive(Debug, Clone, Default)]
pub struct DashboardConfig {
    /// When set, every dashboard request needs `Authorization: Bearer <token>` or
    /// `?token=<token>`.
    pub read_token: Option<Secret<String>>,
    /// The URL a commit id is appended to for a link (e.g.
    /// `https://github.com/acme/fleet/commit/`); without it commits are shown unlinked.
    pub commit_url: Option<String>,
}

impl Check<'_> {
    /// The dashboard settings; a commit URL that is not http(s) is reported.
    pub(super) fn dashboard(&mut self) -> DashboardConfig {
        let read_token = self.secret(DASHBOARD_TOKEN_ENV, "dashboard.readTokenFile");
        let commit_url = self
            .text("dashboard.commitUrl")
            .map(|u| u.trim().to_owned());
        let commit_url = match commit_url {
            Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                self.bad(
                    "dashboard.commitUrl",
                    format!("`{url}` is not an http(s) URL"),
                    "write the URL a commit id is appended to, e.g. `https://github.com/acme/fleet/commit/`",
                );
                None
            }
            url => url,
        };
        DashboardConfig {
            read_token,
            commit_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ConfigError, DaemonConfig};
    use std::path::Path;

    const BASE: &str = "fleet: aura-prod\nsource:\n  path: fleet\n";

    fn parse(text: &str, vars: &[(&str, &str)]) -> Result<DaemonConfig, ConfigError> {
        let vars: Vec<(String, String)> =
            [("HCLOUD_TOKEN", "hc-secret"), ("TS_API_KEY", "tskey-api-x")]
                .iter()
                .chain(vars)
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        let env = move |var: &str| vars.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone());
        DaemonConfig::parse(Path::new("/etc/tether/tether.yaml"), text, &env)
    }

    fn problems(text: &str) -> Vec<(String, String, String)> {
        match parse(text, &[]) {
            Err(ConfigError::Invalid { problems, .. }) => problems
                .into_iter()
                .map(|p| (p.key, p.message, p.hint))
                .collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn the_read_token_comes_from_the_environment_or_a_file_and_never_shows() {
        let open = parse(BASE, &[]).expect("valid");
        assert!(open.dashboard.read_token.is_none());
        assert!(open.dashboard.commit_url.is_none());

        let text =
            format!("{BASE}dashboard:\n  commitUrl: https://github.com/acme/fleet/commit/\n");
        let config = parse(&text, &[(super::DASHBOARD_TOKEN_ENV, "dash-secret")]).expect("valid");
        assert_eq!(
            config
                .dashboard
                .read_token
                .as_ref()
                .map(|t| t.expose().as_str()),
            Some("dash-secret")
        );
        assert_eq!(
            config.dashboard.commit_url.as_deref(),
            Some("https://github.com/acme/fleet/commit/")
        );
        let printed = config.to_yaml();
        assert!(!printed.contains("dash-secret"), "{printed}");
        assert!(
            printed.contains("dashboard:\n  commitUrl: \"https://github.com/acme/fleet/commit/\"")
                || printed
                    .contains("dashboard:\n  commitUrl: https://github.com/acme/fleet/commit/"),
            "{printed}"
        );
        assert!(
            printed.contains("#   dashboard.readToken: set"),
            "{printed}"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("read-token"), "from-file\n").expect("write");
        let file = dir.path().join("tether.yaml");
        let text = format!("{BASE}dashboard:\n  readTokenFile: read-token\n");
        let config = DaemonConfig::parse(&file, &text, &|var| match var {
            "HCLOUD_TOKEN" => Some("hc".to_owned()),
            "TS_API_KEY" => Some("ts".to_owned()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(
            config
                .dashboard
                .read_token
                .as_ref()
                .map(|t| t.expose().as_str()),
            Some("from-file")
        );
    }

    #[test]
    fn an_inline_token_and_a_commit_url_that_is_not_http_are_refused() {
        let found = problems(&format!(
            "{BASE}dashboard:\n  readToken: inline-secret\n  commitUrl: github.com/acme\n"
        ));
        let keys: Vec<&str> = found.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["dashboard.readToken", "dashboard.commitUrl"],
            "{found:?}"
        );
        assert_eq!(found[0].1, "holds a secret inline");
        assert!(
            found[0].2.contains("TETHER_DASHBOARD_TOKEN"),
            "{}",
            found[0].2
        );
        assert!(
            found[0].2.contains("dashboard.readTokenFile"),
            "{}",
            found[0].2
        );
        assert_eq!(found[1].1, "`github.com/acme` is not an http(s) URL");
    }
}
