//! Leases in real bare repositories: exclusion, expiry, release, races, and a remote reached
//! over the git protocol (`git daemon` on 127.0.0.1) when the `git` binary is installed.

use super::*;
use crate::cloud::retry::ManualClock;
use git2::Repository;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::UNIX_EPOCH;

const TTL: Duration = Duration::from_secs(120);

fn at(seconds: u64) -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds))
}

fn bare() -> (tempfile::TempDir, LockStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    Repository::init_bare(dir.path()).expect("init");
    let store = LockStore::Local(dir.path().to_owned());
    (dir, store)
}

#[test]
fn a_second_holder_is_refused_while_the_first_lease_is_valid() {
    let (_dir, store) = bare();
    let a = Lease::acquire(&store, "prod", "host-a", TTL, at(0)).expect("a acquires");
    assert_eq!(a.record().holder, "host-a");
    let err = Lease::acquire(&store, "prod", "host-b", TTL, at(60)).expect_err("b refused");
    assert!(
        matches!(&err, LockError::Held { holder, .. } if holder == "host-a"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "fleet `prod` is locked by `host-a` until 2027-01-15T08:02:00Z"
    );
    let again = Lease::acquire(&store, "prod", "host-a", TTL, at(60));
    assert!(
        matches!(again, Err(LockError::Held { .. })),
        "the same holder id is refused too"
    );
    let other_fleet = Lease::acquire(&store, "staging", "host-b", TTL, at(60));
    assert!(other_fleet.is_ok(), "leases are per fleet");
}

#[test]
fn an_expired_lease_is_taken_over_and_its_old_holder_learns_it_lost() {
    let (_dir, store) = bare();
    let mut a = Lease::acquire(&store, "prod", "host-a", TTL, at(0)).expect("a acquires");
    let b = Lease::acquire(&store, "prod", "host-b", TTL, at(121)).expect("b takes over");
    assert_eq!(
        current(&store, "prod").expect("read").map(|r| r.holder),
        Some("host-b".to_owned())
    );
    let err = a.renew().expect_err("a lost it");
    assert!(
        matches!(&err, LockError::Lost { holder: Some(h), .. } if h == "host-b"),
        "{err}"
    );
    assert!(matches!(a.release(), Err(LockError::Lost { .. })));
    assert_eq!(
        current(&store, "prod").expect("read").map(|r| r.holder),
        Some("host-b".to_owned()),
        "a's release did not touch b's lease"
    );
    drop(b);
}

#[tokio::test]
async fn renewing_extends_the_lease_and_validity_keeps_a_margin() {
    let (_dir, store) = bare();
    let clock = at(0);
    let mut a = Lease::acquire(&store, "prod", "host-a", TTL, clock.clone()).expect("acquire");
    assert_eq!(
        (a.margin(), a.renew_every()),
        (Duration::from_secs(30), Duration::from_secs(40))
    );
    clock.sleep(Duration::from_secs(89)).await;
    assert!(a.is_valid(), "31 s left, more than the 30 s margin");
    clock.sleep(Duration::from_secs(2)).await;
    assert!(!a.is_valid(), "29 s left: no new action may start");
    a.renew().expect("renew");
    assert!(a.is_valid());
    let err = Lease::acquire(&store, "prod", "host-b", TTL, at(150)).expect_err("renewed");
    assert!(matches!(err, LockError::Held { .. }), "{err}");
    assert!(Lease::acquire(&store, "prod", "host-b", TTL, at(212)).is_ok());
}

#[test]
fn release_lets_another_holder_acquire_at_once() {
    let (_dir, store) = bare();
    let a = Lease::acquire(&store, "prod", "host-a", TTL, at(0)).expect("a acquires");
    a.release().expect("release");
    let released = current(&store, "prod").expect("read").expect("a record");
    assert!(released.released && !released.is_live(UNIX_EPOCH));
    let b = Lease::acquire(&store, "prod", "host-b", TTL, at(1)).expect("b acquires");
    b.release().expect("release");
}

#[test]
fn concurrent_acquires_have_exactly_one_winner() {
    let (_dir, store) = bare();
    for round in 0..5 {
        let contenders = 8;
        let barrier = Arc::new(Barrier::new(contenders));
        let threads: Vec<_> = (0..contenders)
            .map(|n| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let fleet = format!("fleet-{round}");
                    Lease::acquire(&store, &fleet, &format!("host-{n}"), TTL, at(0)).map(|_| n)
                })
            })
            .collect();
        let results: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let holder = current(&store, &format!("fleet-{round}"))
            .expect("read")
            .map(|r| r.holder);
        assert_eq!(holder, Some(format!("host-{}", winners[0])));
        for loser in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(loser, LockError::Held { .. } | LockError::Contended { .. }),
                "{loser}"
            );
        }
    }
}

#[test]
fn a_lock_ref_that_is_not_a_lease_is_reported_and_left_alone() {
    let (dir, store) = bare();
    let repo = Repository::open(dir.path()).expect("open");
    let tree = repo
        .find_tree(repo.treebuilder(None).expect("tb").write().expect("tree"))
        .expect("find");
    let sig = git2::Signature::now("someone", "someone@example.com").expect("sig");
    let foreign = repo
        .commit(
            Some("refs/tether/locks/prod"),
            &sig,
            &sig,
            "hello",
            &tree,
            &[],
        )
        .expect("commit");
    let err = Lease::acquire(&store, "prod", "host-a", TTL, at(0)).expect_err("unreadable");
    assert!(matches!(err, LockError::Unreadable { .. }), "{err}");
    assert!(
        err.to_string().contains("no `Tether-Lease-Holder` trailer"),
        "{err}"
    );
    let still = repo
        .refname_to_id("refs/tether/locks/prod")
        .expect("ref kept");
    assert_eq!(still, foreign);
}

#[test]
fn fleet_names_and_holders_that_cannot_be_stored_are_refused() {
    let (_dir, store) = bare();
    for (fleet, holder) in [
        ("a/b", "h"),
        ("", "h"),
        ("bad..name", "h"),
        ("ok", ""),
        ("ok", "two\nlines"),
    ] {
        let err = Lease::acquire(&store, fleet, holder, TTL, at(0)).expect_err("invalid");
        assert!(
            matches!(err, LockError::Invalid { .. }),
            "{fleet:?} {holder:?}: {err}"
        );
    }
}

#[test]
fn lease_records_round_trip_through_commit_messages() {
    let record = LeaseRecord {
        holder: "host-a/4711".into(),
        acquired_at: UNIX_EPOCH + Duration::from_millis(1_800_000_000_250),
        expires_at: UNIX_EPOCH + Duration::from_secs(1_800_000_120),
        released: true,
    };
    let message = record.message("prod");
    assert_eq!(
        message,
        "tether lease for fleet prod\n\n\
         Tether-Lease-Holder: host-a/4711\n\
         Tether-Lease-Acquired-At: 2027-01-15T08:00:00.25Z\n\
         Tether-Lease-Expires-At: 2027-01-15T08:02:00Z\n\
         Tether-Lease-Released: true\n"
    );
    assert_eq!(LeaseRecord::parse(&message), Ok(record));
}

/// A git server for a bare `fleet.git` with pushes enabled, on a port that cannot race: the
/// test binds `127.0.0.1:0` and keeps the listener, and each connection it accepts is served by
/// `git-daemon --inetd` on that socket. Stops accepting, and ends its servers, on drop.
struct GitDaemon {
    url: String,
    addr: std::net::SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    acceptor: Option<std::thread::JoinHandle<()>>,
    _base: tempfile::TempDir,
}

impl GitDaemon {
    fn start() -> GitDaemon {
        let base = tempfile::tempdir().expect("tempdir");
        Repository::init_bare(base.path().join("fleet.git")).expect("init");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let exec_path = std::process::Command::new("git")
            .arg("--exec-path")
            .output()
            .expect("the git binary (CI checks it is installed)");
        let exec_path = String::from_utf8_lossy(&exec_path.stdout).trim().to_owned();
        let git_daemon = Path::new(&exec_path).join("git-daemon");
        let base_path = base.path().to_owned();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let acceptor = std::thread::spawn(move || {
            let mut children = Vec::new();
            for stream in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                if let Some(child) = stream.ok().and_then(|s| serve(&git_daemon, &base_path, s)) {
                    children.push(child);
                }
            }
            for mut child in children {
                let _ = child.kill();
                let _ = child.wait();
            }
        });
        GitDaemon {
            url: format!("git://{addr}/fleet.git"),
            addr,
            stop,
            acceptor: Some(acceptor),
            _base: base,
        }
    }

    /// A lock store reaching the daemon through a cache of its own, as another host would.
    fn store(&self) -> (tempfile::TempDir, LockStore) {
        let cache_dir = tempfile::tempdir().expect("tempdir");
        let cache = RepoCache::open(
            cache_dir.path(),
            &self.url,
            crate::source::remote::Credentials::None,
        )
        .expect("cache");
        let store = LockStore::for_cache(&cache);
        assert!(matches!(store, LockStore::Remote(_)));
        (cache_dir, store)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the acceptor, which sees `stop` and ends the servers it started.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// `git-daemon --inetd` answering the one connection `stream` (its stdin and stdout).
fn serve(
    git_daemon: &Path,
    base: &Path,
    stream: std::net::TcpStream,
) -> Option<std::process::Child> {
    let input = std::os::fd::OwnedFd::from(stream.try_clone().ok()?);
    std::process::Command::new(git_daemon)
        .args(["--inetd", "--export-all", "--enable=receive-pack"])
        .arg("--log-destination=none")
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdin(input)
        .stdout(std::os::fd::OwnedFd::from(stream))
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()
}

#[test]
fn leases_on_a_remote_are_compare_and_swapped_by_push() {
    let daemon = GitDaemon::start();
    let (_a_cache, a_store) = daemon.store();
    let (_b_cache, b_store) = daemon.store();

    let mut a = Lease::acquire(&a_store, "prod", "host-a", TTL, at(0)).expect("a acquires");
    let err = Lease::acquire(&b_store, "prod", "host-b", TTL, at(60)).expect_err("held");
    assert!(
        matches!(&err, LockError::Held { holder, .. } if holder == "host-a"),
        "{err}"
    );
    a.renew().expect("a renews");
    let b = Lease::acquire(&b_store, "prod", "host-b", TTL, at(121)).expect("b takes over");
    assert!(matches!(a.renew(), Err(LockError::Lost { .. })));
    b.release().expect("b releases");
    let a = Lease::acquire(&a_store, "prod", "host-a", TTL, at(122)).expect("a again");
    a.release().expect("a releases");
}

#[test]
fn concurrent_acquires_over_the_network_have_exactly_one_winner() {
    let daemon = GitDaemon::start();
    let contenders = 4;
    let stores: Vec<_> = (0..contenders).map(|_| daemon.store()).collect();
    let barrier = Arc::new(Barrier::new(contenders));
    let results: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(n, (_, store))| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    Lease::acquire(store, "prod", &format!("host-{n}"), TTL, at(0)).map(|_| n)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect()
    });
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
}

#[test]
fn a_ref_lock_file_left_by_a_killed_writer_blocks_only_until_it_is_stale() {
    let (dir, store) = bare();
    let lock_file = dir.path().join("refs/tether/locks/prod.lock");
    std::fs::create_dir_all(lock_file.parent().expect("parent")).expect("mkdir");
    let file = std::fs::File::create(&lock_file).expect("lock file");

    file.set_modified(std::time::SystemTime::now())
        .expect("mtime");
    let err = Lease::acquire(&store, "prod", "host-a", TTL, at(0))
        .expect_err("a writer may still hold a fresh ref lock");
    assert!(
        matches!(err, LockError::Held { .. } | LockError::Contended { .. }),
        "{err}"
    );
    assert!(lock_file.exists());

    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .expect("mtime");
    let lease = Lease::acquire(&store, "prod", "host-a", TTL, at(1))
        .expect("a lock file a minute old is left by a dead process, removed, and the lease taken");
    assert_eq!(lease.record().holder, "host-a");
    assert!(!lock_file.exists());
}
