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
