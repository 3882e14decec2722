//! What follows a receiver's commit and what repairs one that never came: the daemon asked for
//! a pass, a checked-out clone kept consistent, and `tether billing sync`.

use super::harness::{KEY, event, harness, receiver_on};
use crate::secret::Secret;

#[tokio::test]
async fn each_commit_asks_the_daemon_for_a_pass_with_its_token() {
    use std::sync::{Arc, Mutex, PoisonError};
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = asked.clone();
    let daemon = axum::Router::new().route(
        "/reconcile",
        axum::routing::post(move |headers: http::HeaderMap| {
            let sink = sink.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(auth);
                http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, daemon).await;
    });
    let dir = tempfile::tempdir().expect("temp dir");
    super::harness::seeded(dir.path()).expect("seed");
    let stripe =
        tether_emulators::stripe::StripeEmulator::start(tether_emulators::Token::from(KEY))
            .await
            .expect("start");
    let trigger =
        super::trigger::Trigger::new(&base, Secret::from("reconcile-token")).expect("trigger");
    let h = super::harness::receiver_with(dir, Arc::new(stripe), 50, 100, Some(trigger)).await;
    h.stripe_says("sub_n", "active", "pro_monthly");
    let body = event(
        "evt_n1",
        "customer.subscription.created",
        100,
        "sub_n",
        "active",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&body).await.1["status"], "applied");
    let mut waited = 0;
    while asked
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_empty()
        && waited < 50
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(
        asked.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        vec!["Bearer reconcile-token".to_owned()]
    );
    assert_eq!(h.redeliver(&body, 3).await.1["status"], "duplicate");
    server.abort();
}

#[tokio::test]
async fn a_commit_into_a_checked_out_clone_survives_a_later_commit_all_there() {
    let dir = tempfile::tempdir().expect("temp dir");
    super::harness::seeded_clone(dir.path()).expect("seed a clone");
    let stripe =
        tether_emulators::stripe::StripeEmulator::start(tether_emulators::Token::from(KEY))
            .await
            .expect("start");
    let h = receiver_on(dir, std::sync::Arc::new(stripe), 50, 100).await;
    h.stripe_says("sub_w", "active", "pro_monthly");
    let body = event(
        "evt_w1",
        "customer.subscription.created",
        100,
        "sub_w",
        "active",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&body).await.1["status"], "applied");
    let work = h.dir.path();
    let spec = work.join("agents/cus-sub-w/sub-w.yaml");
    assert!(spec.is_file(), "the work tree has the new spec");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(work)
            .args([
                "-c",
                "user.name=someone",
                "-c",
                "user.email=someone@example.com",
            ])
            .args(args)
            .output()
            .expect("git runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        git(&["status", "--porcelain"]),
        "",
        "index and work tree follow the branch"
    );
    std::fs::write(work.join("NOTES"), "an operator's edit\n").expect("edit");
    git(&["add", "NOTES"]);
    git(&["commit", "-qam", "an unrelated commit in the clone"]);
    assert!(
        h.spec("sub_w").is_some(),
        "`git commit -am` in the clone kept the paying customer's spec"
    );
    std::fs::write(&spec, "edited by hand\n").expect("edit the spec");
    h.stripe_says("sub_w", "unpaid", "pro_monthly");
    let body = event(
        "evt_w2",
        "customer.subscription.updated",
        200,
        "sub_w",
        "unpaid",
        "pro_monthly",
    );
    let (status, answer) = h.deliver(&body).await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("sub-w.yaml")),
        "{answer}"
    );
}

#[tokio::test]
async fn sync_repairs_a_spec_whose_webhook_never_came_and_one_whose_cancellation_was_lost() {
    use super::sync;
    use crate::billing::stripe::{API_KEY_ENV, API_URL_ENV, StripeApi};
    let h = harness(50).await;
    h.stripe_says("sub_kept", "active", "pro_monthly");
    h.stripe_says("sub_lost", "active", "pro_monthly");
    for sub in ["sub_kept", "sub_lost"] {
        let body = event(
            &format!("evt_{sub}"),
            "customer.subscription.created",
            100,
            sub,
            "active",
            "pro_monthly",
        );
        assert_eq!(h.deliver(&body).await.1["status"], "applied");
    }
    // Never delivered: a new sign-up, and sub_lost's cancellation.
    h.stripe_says("sub_missed", "active", "big_monthly");
    h.stripe_says("sub_lost", "canceled", "pro_monthly");
    let url = h.stripe.url();
    let api = StripeApi::from_env(&|var| match var {
        API_KEY_ENV => Some(KEY.to_owned()),
        API_URL_ENV => Some(url.clone()),
        _ => None,
    })
    .expect("api");
    let mapping =
        super::mapping::Mapping::parse(std::path::Path::new("m.yaml"), super::harness::MAPPING)
            .expect("mapping");
    let identity = crate::audit::commit::Identity {
        name: "tether billing".into(),
        email: "billing@tether.invalid".into(),
        signer: None,
    };
    let target = crate::billing::Target {
        repo: h.dir.path(),
        branch: "main",
        base: None,
        push: None,
        identity: &identity,
    };
    let commits = h.commits();
    let listed = sync::list_all(&api).await.expect("list");
    let plan = sync::plan(&target, &mapping, listed, 1_000).expect("plan");
    let shown: Vec<String> = plan.corrections.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(
        shown
            .iter()
            .any(|c| c.starts_with("write agents/cus-sub-missed/sub-missed.yaml")),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(
            |c| c.starts_with("remove agents/cus-sub-lost/sub-lost.yaml")
                && c.contains("`canceled`")
        ),
        "{shown:?}"
    );
    assert_eq!(h.commits(), commits, "planning changes nothing");
    let applied = sync::apply(&target, &plan).expect("apply");
    assert!(
        applied
            .iter()
            .all(|(_, o)| matches!(o, super::queue::Outcome::Applied { .. })),
        "{applied:?}"
    );
    assert!(
        h.spec("sub_missed")
            .is_some_and(|s| s.contains("type: cpx31"))
    );
    assert!(h.spec("sub_lost").is_none());
    assert!(h.spec("sub_kept").is_some());
    assert_eq!(h.commits(), commits + 1);
    let again = sync::plan(
        &target,
        &mapping,
        sync::list_all(&api).await.expect("list"),
        1_001,
    )
    .expect("plan");
    assert!(
        again.corrections.is_empty(),
        "a second sync finds nothing to correct"
    );
    // A webhook created before the listing is stale against the sync's record.
    let late = event(
        "evt_late",
        "customer.subscription.updated",
        900,
        "sub_lost",
        "active",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&late).await.1["status"], "stale");
}
