//! `tether sandbox hetzner`: prints where it listens, serves the API, stops on SIGTERM.

use crate::common::tether_bin;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// A raw HTTP/1.1 GET (the e2e crate has no HTTP client): returns the whole response.
fn http_get(addr: &str, path: &str, token: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the sandbox");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
}

#[test]
fn sandbox_hetzner_prints_its_endpoint_serves_the_api_and_stops_on_sigterm() {
    let mut child = Command::new(tether_bin())
        .args(["sandbox", "hetzner", "--token", "e2e-token"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the sandbox");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a first line").expect("utf-8");
    let url = first
        .strip_prefix("listening on http://")
        .expect("`listening on <url>` comes first")
        .to_owned();
    let addr = url.strip_suffix("/v1").expect("the url ends in /v1");
    let token_line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("HCLOUD_TOKEN="));
    assert_eq!(token_line.as_deref(), Some("HCLOUD_TOKEN=e2e-token"));

    let ok = http_get(addr, "/v1/locations?name=fsn1", "e2e-token");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("\"Falkenstein\""), "{ok}");
    let denied = http_get(addr, "/v1/servers", "wrong");
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = child.wait().expect("wait for the sandbox");
    assert!(status.success(), "exit status {status}");
}
