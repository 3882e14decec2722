//! What a failed HTTP request says to people: the endpoint and the root cause ("connection
//! refused", "timed out", a DNS failure), found by walking the error's source chain instead of
//! reqwest's generic "error sending request".

use std::error::Error as StdError;
use std::io::ErrorKind;

/// `cannot connect: connection refused (http://127.0.0.1:9/v1/servers)`: how the request
/// failed, its root cause, and the URL without its query (which never carries credentials).
pub fn describe(e: &reqwest::Error) -> String {
    let how = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "no answer in time"
    } else if e.is_builder() {
        "invalid request URL"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let url = e.url().map(|u| {
        let mut u = u.clone();
        u.set_query(None);
        u.to_string()
    });
    match (root_cause(e), url) {
        (Some(cause), Some(url)) => format!("{how}: {cause} ({url})"),
        (Some(cause), None) => format!("{how}: {cause}"),
        (None, Some(url)) => format!("{how} ({url})"),
        (None, None) => how.to_owned(),
    }
}

/// The innermost cause of `e` in words: an I/O error kind as a short phrase, else the
/// innermost error's own message. `None` when `e` has no source.
pub fn root_cause(e: &(dyn StdError + 'static)) -> Option<String> {
    let mut innermost = e.source()?;
    let mut io_kind = None;
    loop {
        if let Some(io) = innermost.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        match innermost.source() {
            Some(next) => innermost = next,
            None => break,
        }
    }
    let phrase = match io_kind {
        Some(ErrorKind::ConnectionRefused) => Some("connection refused"),
        Some(ErrorKind::ConnectionReset) => Some("connection reset by the peer"),
        Some(ErrorKind::ConnectionAborted) => Some("connection aborted"),
        Some(ErrorKind::TimedOut) => Some("timed out"),
        Some(ErrorKind::HostUnreachable) => Some("host unreachable"),
        Some(ErrorKind::NetworkUnreachable) => Some("network unreachable"),
        _ => None,
    };
    Some(phrase.map_or_else(|| innermost.to_string(), str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_named_with_connection_refused() {
        // Bound but never listening: the kernel answers a connection with a reset (refused), and
        // the port stays ours for the whole test, so nothing else can start listening there.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("bind 127.0.0.1:0");
        let port = socket.local_addr().expect("addr").port();
        let url = format!("http://127.0.0.1:{port}/v1/servers?page=1");
        let err = reqwest::get(&url).await.expect_err("nothing listens");
        assert_eq!(
            describe(&err),
            format!("cannot connect: connection refused (http://127.0.0.1:{port}/v1/servers)")
        );
    }

    #[tokio::test]
    async fn a_malformed_url_is_named_as_such() {
        let err = reqwest::get("htp://example.invalid/v1")
            .await
            .expect_err("unknown scheme");
        assert!(
            describe(&err).starts_with("invalid request URL"),
            "{}",
            describe(&err)
        );
    }
}
