//! The Stripe emulator's subscription lookup, in Stripe's shapes. (tether's webhook endpoint
//! checks the emulator's signed deliveries in `billing/serve/emulator_tests.rs`.)

use super::*;

const KEY: &str = "sk_test_emulator";

async fn get(url: &str, auth: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(auth) = auth {
        request = request.bearer_auth(auth);
    }
    let response = request.send().await.expect("the emulator answers");
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_subscription_lookup_answers_like_stripe() {
    let stripe = StripeEmulator::start(Token::from(KEY))
        .await
        .expect("start");
    let signed_up = stripe.sign_up("cus_1", "pro_monthly");
    let url = format!(
        "{}/v1/subscriptions/{}",
        stripe.url(),
        signed_up.subscription
    );
    let (status, body) = get(&url, Some(KEY)).await;
    assert_eq!(
        (status, body["status"].as_str(), body["object"].as_str()),
        (200, Some("active"), Some("subscription"))
    );
    assert!(stripe.cancel(&signed_up.subscription).is_some());
    assert_eq!(
        get(&url, Some(KEY)).await.1["status"],
        "canceled",
        "a cancelled subscription stays retrievable"
    );
    let (status, body) = get(
        &format!("{}/v1/subscriptions/sub_nope", stripe.url()),
        Some(KEY),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "resource_missing");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "id");
    assert_eq!(body["error"]["message"], "No such subscription: 'sub_nope'");
    assert_eq!(get(&url, Some("sk_test_other")).await.0, 401);
    assert_eq!(get(&url, None).await.0, 401);
    let basic = reqwest::Client::new()
        .get(&url)
        .basic_auth(KEY, Some(""))
        .send()
        .await
        .expect("answer");
    assert_eq!(
        basic.status().as_u16(),
        200,
        "the key as the basic-auth user, as Stripe's curl examples do"
    );
}

#[tokio::test]
async fn the_list_pages_every_status_and_expands_like_stripe() {
    let stripe = StripeEmulator::start(Token::from(KEY))
        .await
        .expect("start");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            stripe
                .sign_up(&format!("cus_{i}"), "pro_monthly")
                .subscription,
        );
    }
    stripe.cancel(&ids[0]);
    let list = format!("{}/v1/subscriptions", stripe.url());
    let (_, default) = get(&list, Some(KEY)).await;
    assert_eq!(
        default["data"].as_array().map(Vec::len),
        Some(4),
        "without status=all a canceled subscription is not listed"
    );
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{list}?status=all&limit=2&expand[]=data.items.data.price.product");
        if let Some(a) = &after {
            url.push_str(&format!("&starting_after={a}"));
        }
        let (status, page) = get(&url, Some(KEY)).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().cloned().unwrap_or_default();
        assert!(data.len() <= 2);
        for sub in &data {
            assert_eq!(
                sub["items"]["data"][0]["price"]["product"]["object"],
                "product"
            );
            seen.push(sub["id"].as_str().unwrap_or_default().to_owned());
        }
        after = seen.last().cloned();
        if page["has_more"] != true {
            break;
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "every subscription once, newest first");
    let (status, body) = get(&format!("{list}?expand[]=data.plan.tiers"), Some(KEY)).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("expand"))
    );
    let (status, _) = get(&format!("{list}?limit=101"), Some(KEY)).await;
    assert_eq!(status, 400);
    let one = format!(
        "{}/v1/subscriptions/{}?expand[0]=customer",
        stripe.url(),
        ids[0]
    );
    assert_eq!(
        get(&one, Some(KEY)).await.1["customer"]["object"],
        "customer"
    );
}

#[tokio::test]
async fn reads_beyond_the_limit_get_stripes_429_and_faults_its_5xx_body() {
    let stripe = StripeEmulator::start(Token::from(KEY))
        .await
        .expect("start");
    let sub = stripe.sign_up("cus_1", "pro_monthly").subscription;
    let url = format!("{}/v1/subscriptions/{sub}", stripe.url());
    stripe.set_read_limit(Some(2));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(get(&url, Some(KEY)).await);
    }
    assert_eq!(statuses[0].0, 200);
    assert_eq!(statuses[2].0, 429);
    assert_eq!(statuses[2].1["error"]["type"], "rate_limit_error");
    stripe.set_read_limit(None);
    stripe.faults().set(vec![crate::emulator::FaultRule {
        error_rate: 1.0,
        error_statuses: vec![503],
        ..crate::emulator::FaultRule::everywhere()
    }]);
    let (status, body) = get(&url, Some(KEY)).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (503, Some("api_error"))
    );
}
