//! Remote URLs: which transports tether accepts ([`RemoteUrl::parse`]) and how a URL is shown
//! without credentials ([`redact`]).

use super::RemoteError;
use std::fmt;
use std::path::{Path, PathBuf};

/// A remote URL without credentials, classified by transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    url: String,
    local: Option<PathBuf>,
    pub(super) token_allowed: bool,
}

impl RemoteUrl {
    /// Parses a remote URL or path. Relative paths are made absolute.
    ///
    /// # Errors
    /// The URL carries credentials, or uses a transport that is not supported.
    pub fn parse(url: &str) -> Result<RemoteUrl, RemoteError> {
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(RemoteUrl::local(url, Path::new(path)));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            if is_scp_like(url) {
                return Err(unsupported(
                    url,
                    "ssh is not supported yet; use an https URL",
                ));
            }
            let path = std::path::absolute(url).unwrap_or_else(|_| PathBuf::from(url));
            return Ok(RemoteUrl::local(&path.to_string_lossy(), &path));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            return Err(RemoteError::InlineCredentials { url: redact(url) });
        }
        let host = authority
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(authority, |(host, _)| host);
        let token_allowed = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => is_loopback(host),
            "git" => false,
            "ssh" => {
                return Err(unsupported(
                    url,
                    "ssh is not supported yet; use an https URL",
                ));
            }
            _ => {
                return Err(unsupported(
                    url,
                    "use a path, file://, https://, http:// or git://",
                ));
            }
        };
        Ok(RemoteUrl {
            url: url.to_owned(),
            local: None,
            token_allowed,
        })
    }

    fn local(url: &str, path: &Path) -> RemoteUrl {
        RemoteUrl {
            url: url.to_owned(),
            local: Some(path.to_owned()),
            token_allowed: false,
        }
    }

    /// The URL as given (it holds no credentials).
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The repository's path when the remote is on this machine (a path or `file://`).
    pub fn local_path(&self) -> Option<&Path> {
        self.local.as_deref()
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

fn is_scp_like(url: &str) -> bool {
    match url.split_once(':') {
        Some((host, _)) => host.contains('@') && !host.contains('/'),
        None => false,
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn unsupported(url: &str, reason: &'static str) -> RemoteError {
    RemoteError::UnsupportedUrl {
        url: redact(url),
        reason,
    }
}

/// `url` with any `user:password@` replaced by `[redacted]@`.
pub fn redact(url: &str) -> String {
    let (prefix, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{prefix}[redacted]{}", &rest[at..]),
        None => url.to_owned(),
    }
}
