//! The `dashboard:` block: the optional read token (from `TETHER_DASHBOARD_TOKEN` or the file
//! `dashboard.readTokenFile`, never inline) and the base URL status commits link to
//! (`dashboard.commitUrl`).

use super::check::Check;
use crate::secret::Secret;
use serde::Deserialize;
use tether_schema::spanned::Spanned;

/// The environment variable holding the dashboard's read token.
pub const DASHBOARD_TOKEN_ENV: &str = "TETHER_DASHBOARD_TOKEN";

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

/// `dashboard:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawDashboard {
    read_token_file: Option<Spanned<String>>,
    commit_url: Option<Spanned<String>>,
}

impl RawDashboard {
    /// The keys given, dotted.
    pub(super) fn entries(self) -> [(&'static str, Option<Spanned<String>>); 2] {
        [
            ("dashboard.readTokenFile", self.read_token_file),
            ("dashboard.commitUrl", self.commit_url),
        ]
    }
}

impl Check<'_> {
    /// The dashboard settings; a commit URL that is not http(s) is reported.
    pub(super) fn dashboard(&mut self) -> DashboardConfig {
        let read_token = self.secret(DASHBOARD_TOKEN_ENV, "dashboard.readTokenFile");
        let commit_url = self.text("dashboard.commitUrl").map(|u| u.trim().to_owned());
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
