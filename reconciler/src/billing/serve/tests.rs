//! The receiver over real HTTP against a real bare repository and the Stripe emulator's API:
//! signed deliveries in, commits and answers out, each spec from Stripe's state.

use super::harness::{Harness, KEY, SECRET, event, harness, receiver_on};
use super::http::MAX_BODY_BYTES;
use super::signature;
use crate::secret::Secret;
use std::time::SystemTime;

#[tokio::test]
async fn a_sign_up_becomes_a_spec_in_one_commit_with_its_trailer() {
    let h = harness(50).await;
    h.stripe_says("sub_a", "active", "pro_monthly");
    let (status, body) = h
        .deliver(&event(
            "evt_1",
            "customer.subscription.created",
            100,
            "sub_a",
            "active",
            "pro_monthly",
        ))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    let spec = h.spec("sub_a").expect("the spec exists");
    for part in [
        "subscription: sub_a",
        "type: cpx21",
        "location: fsn1",
        "version: \"1.4.2\"",
        "plan: \"pro\"",
    ] {
        assert!(spec.contains(part), "{part} missing from\n{spec}");
    }
    assert!(
        h.head_message()
            .contains("Tether-Stripe-Event: evt_1 sub_a 100"),
        "{}",
        h.head_message()
    );
    h.stripe_says("sub_a", "unpaid", "pro_monthly");
    let (status, body) = h
        .deliver(&event(
            "evt_2",
            "customer.subscription.updated",
            200,
            "sub_a",
            "unpaid",
            "pro_monthly",
        ))
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("applied")));
    assert!(h.spec("sub_a").is_some_and(|s| s.contains("power: off")));
    assert_eq!(h.commits(), 2);
}

#[tokio::test]
async fn a_cancellation_before_a_delayed_retry_of_the_sign_up_recreates_nothing() {
    let h = harness(50).await;
    h.stripe_says("sub_b", "active", "pro_monthly");
    let created = event(
        "evt_c",
        "customer.subscription.created",
        100,
        "sub_b",
        "active",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&created).await.0, 200);
    h.stripe_says("sub_b", "canceled", "pro_monthly");
    let deleted = event(
        "evt_d",
        "customer.subscription.deleted",
        300,
        "sub_b",
        "canceled",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&deleted).await.1["status"], "applied");
    assert!(h.spec("sub_b").is_none());
    // A sign-up update from before the cancellation, delivered late, and a retry of the
    // sign-up itself: neither brings the VM back.
    let late = event(
        "evt_u",
        "customer.subscription.updated",
        200,
        "sub_b",
        "active",
        "big_monthly",
    );
    let (status, body) = h.deliver(&late).await;
    assert_eq!(
        (status, body["status"].as_str(), body["last"].as_str()),
        (200, Some("stale"), Some("evt_d"))
    );
    assert_eq!(h.redeliver(&created, 60).await.1["status"], "duplicate");
    assert!(h.spec("sub_b").is_none());
    assert_eq!(h.commits(), 2, "stale and duplicate events commit nothing");
}

#[tokio::test]
async fn order_and_idempotency_survive_a_restart() {
    let h = harness(50).await;
    h.stripe_says("sub_s", "canceled", "pro_monthly");
    let created = event(
        "evt_s1",
        "customer.subscription.created",
        100,
        "sub_s",
        "active",
        "pro_monthly",
    );
    let deleted = event(
        "evt_s2",
        "customer.subscription.deleted",
        200,
        "sub_s",
        "canceled",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&deleted).await.1["status"], "applied");
    let Harness {
        dir,
        server,
        stripe,
        ..
    } = h;
    server.abort();
    let restarted = receiver_on(dir, stripe, 50, 100).await;
    assert_eq!(
        restarted.redeliver(&created, 10).await.1["status"],
        "stale",
        "the order came back from the trailers"
    );
    assert_eq!(
        restarted.redeliver(&deleted, 10).await.1["status"],
        "duplicate"
    );
    assert!(restarted.spec("sub_s").is_none());
    assert_eq!(restarted.commits(), 1);
}

#[tokio::test]
async fn a_redelivery_is_a_duplicate_and_a_replay_is_recognised() {
    let h = harness(50).await;
    h.stripe_says("sub_r", "trialing", "pro_monthly");
    let body = event(
        "evt_r",
        "customer.subscription.created",
        100,
        "sub_r",
        "trialing",
        "pro_monthly",
    );
    let header = signature::sign(
        &Secret::from(SECRET),
        signature::unix(SystemTime::now()),
        body.as_bytes(),
    );
    assert_eq!(h.send(&body, &header).await.1["status"], "applied");
    assert_eq!(h.send(&body, &header).await.1["status"], "replay");
    assert_eq!(h.redeliver(&body, 30).await.1["status"], "duplicate");
    assert_eq!(h.commits(), 1);
    let metrics = h.metrics.render();
    for line in [
        "tether_billing_deliveries_total{outcome=\"replay\"} 1",
        "tether_billing_commits_total 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    crate::daemon::metrics::exposition::parse(&metrics).expect("a valid exposition");
}

#[tokio::test]
async fn forged_stale_oversized_unmapped_and_invalid_deliveries_are_refused() {
    let h = harness(50).await;
    h.stripe_says("sub_g", "active", "gold");
    h.stripe_says("sub_x", "active", "broken");
    let body = event(
        "evt_f",
        "customer.subscription.created",
        100,
        "sub_f",
        "active",
        "pro_monthly",
    );
    let now = signature::unix(SystemTime::now());
    let wrong = signature::sign(&Secret::from("whsec_wrong"), now, body.as_bytes());
    assert_eq!(h.send(&body, &wrong).await.0, 400);
    let stale = signature::sign(&Secret::from(SECRET), now - 301, body.as_bytes());
    let (status, answer) = h.send(&body, &stale).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("tolerance")),
        "{answer}"
    );
    let tampered = body.replace("sub_f", "sub_g");
    let header = signature::sign(&Secret::from(SECRET), now, body.as_bytes());
    assert_eq!(h.send(&tampered, &header).await.0, 400);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
    assert_eq!(h.deliver(&big).await.0, 413);
    let gold = event(
        "evt_g",
        "customer.subscription.created",
        100,
        "sub_g",
        "active",
        "gold",
    );
    let (status, answer) = h.deliver(&gold).await;
    assert_eq!(status, 422);
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("lookup_key gold")),
        "{answer}"
    );
    let broken = event(
        "evt_b",
        "customer.subscription.created",
        100,
        "sub_x",
        "active",
        "broken",
    );
    let (status, answer) = h.deliver(&broken).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["problems"].to_string().contains("mars1"), "{answer}");
    assert_eq!(h.commits(), 0);
}

#[tokio::test]
async fn a_downgrade_takes_the_new_price_whole_and_leaves_type_and_location_to_the_defaults() {
    let h = harness(50).await;
    h.stripe_says("sub_d", "active", "big_monthly");
    let up = event(
        "evt_d1",
        "customer.subscription.created",
        100,
        "sub_d",
        "active",
        "big_monthly",
    );
    assert_eq!(h.deliver(&up).await.1["status"], "applied");
    let big = h.spec("sub_d").expect("spec");
    assert!(
        big.contains("type: cpx31") && big.contains("location: hel1"),
        "{big}"
    );
    h.stripe_says("sub_d", "active", "basic_monthly");
    // The downgrade's event arrives in its own batch and says nothing about the server: the
    // spec is what the price Stripe now bills implies.
    let down = event(
        "evt_d2",
        "customer.subscription.updated",
        200,
        "sub_d",
        "active",
        "big_monthly",
    );
    assert_eq!(h.deliver(&down).await.1["status"], "applied");
    let basic = h.spec("sub_d").expect("spec");
    assert!(
        !basic.contains("type:") && !basic.contains("location:"),
        "{basic}"
    );
    assert!(basic.contains("plan: \"basic\""), "{basic}");
}

#[tokio::test]
async fn a_same_second_event_whose_id_sorts_first_still_gets_the_paying_customer_a_spec() {
    let h = harness(50).await;
    h.stripe_says("sub_t", "incomplete", "pro_monthly");
    let created = event(
        "evt_t9",
        "customer.subscription.created",
        500,
        "sub_t",
        "incomplete",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&created).await.1["status"], "applied");
    assert!(h.spec("sub_t").is_none(), "incomplete: no agent yet");
    h.stripe_says("sub_t", "active", "pro_monthly");
    let paid = event(
        "evt_t1",
        "customer.subscription.updated",
        500,
        "sub_t",
        "active",
        "pro_monthly",
    );
    assert_eq!(h.deliver(&paid).await.1["status"], "applied");
    assert!(
        h.spec("sub_t").is_some(),
        "the payment of the same second is not stale"
    );
}

#[tokio::test]
async fn two_copies_in_one_batch_get_the_same_answer() {
    let h = harness(50).await;
    h.stripe_says("sub_c", "active", "pro_monthly");
    let body = event(
        "evt_c1",
        "customer.subscription.created",
        100,
        "sub_c",
        "active",
        "pro_monthly",
    );
    let (a, b) = tokio::join!(h.deliver(&body), h.redeliver(&body, 1));
    assert_eq!((a.0, b.0), (200, 200));
    let answers = [a.1["status"].clone(), b.1["status"].clone()];
    assert!(
        answers.iter().all(|s| s == "applied")
            || answers.contains(&"duplicate".into()) && answers.contains(&"applied".into()),
        "{answers:?}"
    );
    assert!(h.head_message().contains("evt_c1"));
}

#[tokio::test]
async fn stripe_unreadable_answers_503_and_the_retry_applies_once_it_reads_again() {
    let h = harness(50).await;
    h.stripe_says("sub_u", "active", "pro_monthly");
    h.stripe
        .faults()
        .set(vec![tether_emulators::emulator::FaultRule {
            error_rate: 1.0,
            ..tether_emulators::emulator::FaultRule::everywhere()
        }]);
    let body = event(
        "evt_u1",
        "customer.subscription.created",
        100,
        "sub_u",
        "active",
        "pro_monthly",
    );
    let (status, answer) = h.deliver(&body).await;
    assert_eq!(status, 503, "{answer}");
    assert!(!answer.to_string().contains(KEY), "the API key never shows");
    assert_eq!(h.commits(), 0);
    h.stripe.faults().set(Vec::new());
    assert_eq!(h.redeliver(&body, 5).await.1["status"], "applied");
    assert!(h.spec("sub_u").is_some());
}

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
