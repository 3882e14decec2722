//! Test support: an HTTP server that expects calls in order, in the style of hcloud-go's mock
//! server. Each expectation names a method and a path (with query); an unexpected call is
//! answered 599 and recorded as a failure; [`Expectations::finish`] fails the test on any
//! failure or on expectations never called.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// One expected call and the response to give.
#[derive(Debug, Clone)]
pub struct Expect {
    method: Method,
    path_and_query: String,
    body_contains: Vec<String>,
    status: StatusCode,
    headers: Vec<(String, String)>,
    response: String,
}

/// Expects `method path_and_query`, answering `status` with the JSON `response`.
pub fn expect(method: Method, path_and_query: &str, status: u16, response: &str) -> Expect {
    Expect {
        method,
        path_and_query: path_and_query.to_owned(),
        body_contains: Vec::new(),
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        headers: Vec::new(),
        response: response.to_owned(),
    }
}

impl Expect {
    /// Also requires the request body to contain `fragment`.
    #[must_use]
    pub fn body_contains(mut self, fragment: &str) -> Self {
        self.body_contains.push(fragment.to_owned());
        self
    }

    /// Adds a response header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

#[derive(Debug, Default)]
struct Script {
    queue: VecDeque<Expect>,
    failures: Vec<String>,
    seen_headers: Vec<HeaderMap>,
}

/// A running ordered-expectation server.
#[derive(Debug)]
pub struct Expectations {
    script: Arc<Mutex<Script>>,
    server: tether_emulators::emulator::Server,
}

impl Expectations {
    /// Starts a server that expects exactly `calls`, in order.
    pub async fn start(calls: Vec<Expect>) -> Expectations {
        let script = Arc::new(Mutex::new(Script {
            queue: calls.into(),
            ..Script::default()
        }));
        let router = Router::new().fallback(answer).with_state(script.clone());
        let server = tether_emulators::emulator::Server::start(
            router,
            Arc::default(),
            Arc::default(),
            |s| s.into_response(),
        )
        .await
        .expect("bind expectation server");
        Expectations { script, server }
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The headers of every request received, in order.
    pub fn headers(&self) -> Vec<HeaderMap> {
        self.script
            .lock()
            .expect("script lock")
            .seen_headers
            .clone()
    }

    /// Panics on any unexpected call or any expectation left uncalled.
    pub fn finish(self) {
        let script = self.script.lock().expect("script lock");
        assert!(
            script.failures.is_empty(),
            "unexpected calls: {:#?}",
            script.failures
        );
        assert!(
            script.queue.is_empty(),
            "expected calls never made: {:#?}",
            script.queue
        );
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut script = script.lock().expect("script lock");
    script.seen_headers.push(headers);
    let got = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), ToString::to_string);
    let body = String::from_utf8_lossy(&body).into_owned();
    let matches = script.queue.front().is_some_and(|e| {
        e.method == method
            && e.path_and_query == got
            && e.body_contains.iter().all(|f| body.contains(f))
    });
    if !matches {
        let wanted = script.queue.front().map(|e| {
            format!(
                "{} {} (body containing {:?})",
                e.method, e.path_and_query, e.body_contains
            )
        });
        script.failures.push(format!(
            "got {method} {got} with body {body}; wanted {wanted:?}"
        ));
        return (
            StatusCode::from_u16(599).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "unexpected call",
        )
            .into_response();
    }
    let Some(e) = script.queue.pop_front() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = (e.status, e.response).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    for (name, value) in e.headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::try_from(name),
            http::HeaderValue::try_from(value),
        ) {
            response.headers_mut().insert(n, v);
        }
    }
    response
}
