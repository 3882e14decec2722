use super::*;
use crate::cloud::retry::ManualClock;
use crate::daemon::lock::{LockStore, current};
use std::time::UNIX_EPOCH;

const TTL: Duration = Duration::from_secs(120);

fn bare() -> (tempfile::TempDir, LockStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    git2::Repository::init_bare(dir.path()).expect("init");
    let store = LockStore::Local(dir.path().to_owned());
    (dir, store)
}

fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
}

/// Waits (real time, bounded) until `clock` has moved `far` past `from`.
async fn until_advanced(clock: &ManualClock, from: SystemTime, far: Duration) {
    for _ in 0..2000 {
        if clock.now() >= from + far {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the renewer did not advance the clock by {far:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarded_lease_outlives_many_ttls_and_excludes_others_throughout() {
    let (_dir, store) = bare();
    let clock = clock();
    let start = clock.now();
    let lease = Lease::acquire(&store, "prod", "host-a", TTL, clock.clone()).expect("acquire");
    let guard = LeaseGuard::start(lease, clock.clone());
    until_advanced(&clock, start, TTL * 10).await;

    let other = Lease::acquire(&store, "prod", "host-b", TTL, clock.clone());
    assert!(
        matches!(&other, Err(LockError::Held { holder, .. }) if holder == "host-a"),
        "{other:?}"
    );
    assert_eq!(guard.fence().check(), Ok(()));
    assert_eq!(guard.lost_reason(), None);
    let sleeps = clock.sleeps();
    assert!(
        sleeps.iter().all(|s| *s <= TTL / 3),
        "renewed at least every third of the TTL: {sleeps:?}"
    );
    guard.release().await.expect("release");
    let record = current(&store, "prod").expect("read").expect("record");
    assert!(record.released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_taken_over_is_lost_for_good_and_the_fence_names_the_new_holder() {
    use crate::cloud::retry::TokioClock;
    let (_dir, store) = bare();
    // Real time with a short TTL: renewals every 200 ms, as they would run.
    let ttl = Duration::from_millis(600);
    let lease = Lease::acquire(&store, "prod", "host-a", ttl, TokioClock).expect("acquire");
    let guard = LeaseGuard::start(lease, TokioClock);
    // host-b's clock is far ahead: it sees host-a's lease as expired and takes it over.
    let b_clock = ManualClock::new(SystemTime::now() + Duration::from_secs(365 * 24 * 3600));
    let mut taken = None;
    for _ in 0..100 {
        match Lease::acquire(&store, "prod", "host-b", TTL, b_clock.clone()) {
            Ok(lease) => {
                taken = Some(lease);
                break;
            }
            Err(LockError::Contended { .. }) => continue,
            Err(e) => panic!("b cannot take over: {e}"),
        }
    }
    assert!(taken.is_some(), "b takes over");

    let reason = tokio::time::timeout(Duration::from_secs(10), guard.lost())
        .await
        .expect("the loss is noticed");
    assert!(reason.contains("now held by host-b"), "{reason}");
    let refused = guard.fence().check().expect_err("mutations refused");
    assert!(
        refused.contains("`host-a` no longer holds the single-writer lease on fleet `prod`"),
        "{refused}"
    );
    assert!(refused.contains("host-b"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_that_keep_failing_stop_mutations_at_the_margin() {
    let (dir, store) = bare();
    let clock = clock();
    let lease = Lease::acquire(&store, "prod", "host-a", TTL, clock.clone()).expect("acquire");
    let expires = lease.record().expires_at;
    let margin = lease.margin();
    std::fs::remove_dir_all(dir.path()).expect("the repository becomes unreachable");
    let guard = LeaseGuard::start(lease, clock.clone());

    let reason = tokio::time::timeout(Duration::from_secs(10), guard.lost())
        .await
        .expect("the loss is noticed");
    assert!(reason.contains("could not be renewed"), "{reason}");
    assert!(
        clock.now() >= expires - margin && clock.now() < expires,
        "lost at the margin, before anyone else could take it over"
    );
    assert!(guard.fence().check().is_err());
}
