//! Stripe's JSON: the error envelope (`{"error": {"type", "code", "message", "param",
//! "doc_url"}}`) and the subscription and event objects the emulator sends.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

/// Stripe's error answer: `invalid_request_error` for 4xx, `api_error` otherwise.
pub fn error(
    status: StatusCode,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> Response {
    let kind = if status.is_client_error() {
        "invalid_request_error"
    } else {
        "api_error"
    };
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            code.replace('_', "-")
        ));
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    (status, axum::Json(json!({ "error": error }))).into_response()
}

/// Stripe's answer beyond the rate limit: 429, `rate_limit_error`, code `rate_limit`.
pub fn rate_limited() -> Response {
    let error = json!({
        "type": "rate_limit_error",
        "code": "rate_limit",
        "message": "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
    });
    (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({ "error": error })),
    )
        .into_response()
}

/// An event object around `object` (a subscription).
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": {"object": object},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": kind,
    })
}
