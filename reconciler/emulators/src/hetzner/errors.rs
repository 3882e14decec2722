//! Hetzner's error envelope `{"error":{"code","message","details"}}` with the HTTP status of
//! each code (api-facts §1.4), and the `X-Correlation-Id` every response carries.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use rand::Rng;
use serde_json::{Value, json};

/// Header name of the per-response correlation id.
pub const CORRELATION_ID: &str = "x-correlation-id";

/// One field's problems, for `details.fields` of `invalid_input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Field name as sent, e.g. `name` or `labels`.
    pub name: String,
    /// What is wrong with it.
    pub messages: Vec<String>,
}

impl FieldError {
    /// One problem with one field.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            name: name.into(),
            messages: vec![message.into()],
        }
    }
}

/// An API error as Hetzner renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code, e.g. `invalid_input`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Code-specific details (`{}` when there are none).
    pub details: Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    /// 401 `unauthorized`: missing or unknown token.
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unable to authenticate",
        )
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed",
        )
    }

    /// 400 `json_error`: the body is not valid JSON.
    pub fn json_error(problem: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "json_error",
            format!("invalid JSON: {problem}"),
        )
    }

    /// 400 `invalid_input` naming every field with a problem.
    pub fn invalid_input(fields: Vec<FieldError>) -> Self {
        let names: Vec<String> = fields.iter().map(|f| format!("'{}'", f.name)).collect();
        let message = match fields.as_slice() {
            [one] => format!(
                "invalid input in field '{}': {}",
                one.name,
                one.messages.join(", ")
            ),
            _ => format!("invalid input in fields {}", names.join(", ")),
        };
        let details: Vec<Value> = fields
            .iter()
            .map(|f| json!({"name": f.name, "messages": f.messages}))
            .collect();
        ApiError {
            details: json!({ "fields": details }),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", message)
        }
    }

    /// 400 `invalid_input` for one field.
    pub fn invalid_field(name: &str, message: impl Into<String>) -> Self {
        ApiError::invalid_input(vec![FieldError::new(name, message)])
    }

    /// 409 `uniqueness_error` with the given details.
    pub fn uniqueness(message: &str, details: Value) -> Self {
        ApiError {
            details,
            ..ApiError::new(StatusCode::CONFLICT, "uniqueness_error", message)
        }
    }

    /// 403 `resource_limit_exceeded` for the project's server quota.
    pub fn server_limit() -> Self {
        ApiError {
            details: json!({"limits": [{"name": "project_limit"}]}),
            ..ApiError::new(
                StatusCode::FORBIDDEN,
                "resource_limit_exceeded",
                "server limit exceeded",
            )
        }
    }

    /// 423 `locked`: another action is running on the resource.
    pub fn locked() -> Self {
        ApiError::new(
            StatusCode::LOCKED,
            "locked",
            "server is locked: another action is running",
        )
    }

    /// 423 `protected`: the resource's protection blocks the action (api-facts §1.4).
    pub fn protected(what: &str) -> Self {
        ApiError::new(
            StatusCode::LOCKED,
            "protected",
            format!("server is {what} protected; change its protection first"),
        )
    }

    /// 409 `server_not_stopped` (status unconfirmed; see docs/emulators.md).
    pub fn server_not_stopped() -> Self {
        ApiError::new(
            StatusCode::CONFLICT,
            "server_not_stopped",
            "server must be stopped before changing its type",
        )
    }

    /// 422 `invalid_server_type` (status unconfirmed; see docs/emulators.md).
    pub fn invalid_server_type(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_server_type",
            message,
        )
    }

    /// 422 `resource_in_use`: a firewall still applied to something cannot be deleted.
    pub fn resource_in_use() -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "resource_in_use",
            "firewall is still applied to a resource",
        )
    }

    /// 422 `firewall_already_applied`: the target is already in the firewall's `applied_to`.
    pub fn firewall_already_applied() -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "firewall_already_applied",
            "firewall is already applied to resource",
        )
    }

    /// 404 `firewall_resource_not_found`: the server to apply to (or remove from) is unknown.
    pub fn firewall_resource_not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "firewall_resource_not_found",
            format!("{what} not found"),
        )
    }

    /// 422 `private_net_only_server`: a server without a public interface takes no firewall.
    pub fn private_net_only_server(id: u64) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "private_net_only_server",
            format!("server {id} has no public interface"),
        )
    }

    /// 422 `firewall_managed_by_label_selector`: a server covered by a selector cannot be
    /// removed by id.
    pub fn firewall_managed_by_label_selector(id: u64) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "firewall_managed_by_label_selector",
            format!("firewall is applied to server {id} via a label selector"),
        )
    }

    /// 429 `rate_limit_exceeded`, naming the token by its first four characters only.
    pub fn rate_limited(limit: u32, token: &str) -> Self {
        let shown: String = token.chars().take(4).collect();
        ApiError {
            details: Value::Null,
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                format!("Limit of '{limit}' requests per hour for token '{shown}…' reached."),
            )
        }
    }

    /// An injected fault: the code Hetzner uses for `status`.
    pub fn injected(status: StatusCode) -> Self {
        let (code, message) = match status.as_u16() {
            409 => ("conflict", "resource changed during the request, retry"),
            423 => ("locked", "resource is locked"),
            429 => ("rate_limit_exceeded", "rate limit exceeded"),
            502 => ("bad_gateway", "bad gateway"),
            503 => ("unavailable", "service unavailable"),
            504 => ("timeout", "request timed out"),
            _ => ("server_error", "internal server error"),
        };
        ApiError::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "details": self.details,
        }});
        (self.status, Json(body)).into_response()
    }
}

/// A fresh random correlation id (16 hex digits).
pub fn correlation_id() -> HeaderValue {
    let id: u64 = rand::rng().random();
    HeaderValue::from_str(&format!("{id:016x}")).unwrap_or(HeaderValue::from_static("0"))
}

/// Renders an injected fault in Hetzner's envelope (the emulator's `FaultBody`).
pub fn fault_body(status: StatusCode) -> Response {
    let mut response = ApiError::injected(status).into_response();
    response
        .headers_mut()
        .insert(CORRELATION_ID, correlation_id());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_lists_every_field_in_details() {
        let e = ApiError::invalid_input(vec![
            FieldError::new("name", "is not a valid hostname"),
            FieldError::new("labels", "bad key"),
        ]);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.message, "invalid input in fields 'name', 'labels'");
        assert_eq!(e.details["fields"][0]["name"], "name");
        assert_eq!(e.details["fields"][1]["messages"][0], "bad key");
    }

    #[test]
    fn rate_limit_message_shows_only_four_characters_of_the_token() {
        let e = ApiError::rate_limited(3600, "secret-token-value");
        assert_eq!(
            e.message,
            "Limit of '3600' requests per hour for token 'secr…' reached."
        );
        assert!(!e.message.contains("secret-token"));
    }
}
