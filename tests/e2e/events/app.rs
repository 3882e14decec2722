//! The app's event endpoint, served by the test on 127.0.0.1: it can be up (200), down (its
//! port closed: connections refused) or failing (500), and keeps every event it accepted with
//! its raw body and `Tether-Signature` header, so the test verifies each one with the
//! documented verifier.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// 200 to everything.
    Up = 0,
    /// The port is closed.
    Down = 1,
    /// 500 to everything.
    Failing = 2,
}

/// An event the endpoint accepted (answered 200).
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The raw body.
    pub body: Vec<u8>,
    /// The `Tether-Signature` header.
    pub signature: String,
    /// When it arrived.
    pub at: Instant,
}

impl Accepted {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// The endpoint.
pub struct App {
    /// Its URL.
    pub url: String,
    mode: Arc<AtomicU8>,
    accepted: Arc<Mutex<Vec<Accepted>>>,
    attempts: Arc<AtomicUsize>,
}

impl App {
    /// Serves on a free port, in `mode`.
    pub fn start(mode: Mode) -> App {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = App {
            url: format!("http://{addr}/hooks/tether"),
            mode: Arc::new(AtomicU8::new(mode as u8)),
            accepted: Arc::default(),
            attempts: Arc::default(),
        };
        let (mode, accepted, attempts) =
            (app.mode.clone(), app.accepted.clone(), app.attempts.clone());
        std::thread::spawn(move || serve(listener, addr, &mode, &accepted, &attempts));
        app
    }

    /// Switches how it answers from now on.
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// The events accepted so far, in arrival order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().expect("lock").clone()
    }

    /// Requests that reached it, whatever it answered.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    /// Waits up to `limit` for an accepted event matching `wanted`; on a timeout the panic
    /// shows what was received and `context()` (the daemon's log).
    pub async fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        wanted: impl Fn(&serde_json::Value) -> bool,
        context: impl Fn() -> String,
    ) -> Accepted {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(a) = self.accepted().into_iter().find(|a| wanted(&a.json())) {
                return a;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not received within {limit:?}; received: {:?}\n{}",
                self.accepted()
                    .iter()
                    .map(|a| {
                        let j = a.json();
                        format!("{} {}", j["type"], j["subject"])
                    })
                    .collect::<Vec<_>>(),
                context()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn serve(
    first: TcpListener,
    addr: std::net::SocketAddr,
    mode: &AtomicU8,
    accepted: &Mutex<Vec<Accepted>>,
    attempts: &AtomicUsize,
) {
    let mut listener = Some(first);
    loop {
        let now = mode.load(Ordering::SeqCst);
        if now == Mode::Down as u8 {
            listener = None;
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let Some(l) = &listener else {
            listener = TcpListener::bind(addr).ok();
            if let Some(l) = &listener {
                l.set_nonblocking(true).expect("nonblocking");
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        l.set_nonblocking(true).expect("nonblocking");
        let stream = match l.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
        };
        stream.set_nonblocking(false).expect("blocking");
        let Some((signature, body)) = read_request(&stream) else {
            continue;
        };
        attempts.fetch_add(1, Ordering::SeqCst);
        let mut stream = stream;
        if mode.load(Ordering::SeqCst) == Mode::Failing as u8 {
            let _ = stream.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            continue;
        }
        accepted.lock().expect("lock").push(Accepted {
            body,
            signature,
            at: Instant::now(),
        });
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
    }
}

/// One HTTP/1.1 request's `Tether-Signature` header and raw body.
fn read_request(stream: &std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    let mut signature = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            } else if name.eq_ignore_ascii_case("tether-signature") {
                value.trim().clone_into(&mut signature);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((signature, body))
}
