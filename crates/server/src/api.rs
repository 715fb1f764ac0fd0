//! The one error shape every endpoint answers with: `{"error": {"kind", "message",
//! "field"?}}`, and the refusals that are counted in the audit log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answer. Internal failures are logged where they happen and reach the client
/// only as `unavailable` or `internal`, never with their details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// The request field at fault (`tool`, `args.service`), when one is.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: Option<String>) -> ApiError {
        self.field = field;
        self
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"kind": self.kind, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = field.into();
        }
        let body = json!({ "error": error });
        (self.status, Json(body)).into_response()
    }
}

/// Why a request was refused. Each is answered with its own status and counted in the
/// audit log under [`Refusal::reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    MissingToken,
    UnknownToken,
    ExpiredToken,
    RevokedToken,
    /// A valid token of a principal this endpoint does not admit.
    Forbidden(String),
    UnknownHook,
    NotFound,
    BodyTooLarge,
    MalformedJson(String),
    /// Well-formed JSON that is not what the endpoint takes (names the field).
    InvalidPayload(String),
    MissingDelivery,
    BadSignature(String),
    StaleTimestamp,
    /// A delivery already seen: answered with the first outcome, counted, nothing run.
    ReplayedDelivery,
    /// A body that is not `application/json`.
    UnsupportedMediaType,
    /// Over the token's rate limit; retry after this many seconds.
    RateLimited(u64),
}

impl Refusal {
    /// The audit reason (a fixed vocabulary, so counters stay few).
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::MissingToken => "missing_token",
            Refusal::UnknownToken => "unknown_token",
            Refusal::ExpiredToken => "expired_token",
            Refusal::RevokedToken => "revoked_token",
            Refusal::Forbidden(_) => "forbidden",
            Refusal::UnknownHook => "unknown_hook",
            Refusal::NotFound => "not_found",
            Refusal::BodyTooLarge => "body_too_large",
            Refusal::MalformedJson(_) => "malformed_json",
            Refusal::InvalidPayload(_) => "invalid_payload",
            Refusal::MissingDelivery => "missing_delivery",
            Refusal::BadSignature(_) => "bad_signature",
            Refusal::StaleTimestamp => "stale_timestamp",
            Refusal::ReplayedDelivery => "replayed_delivery",
            Refusal::UnsupportedMediaType => "unsupported_media_type",
            Refusal::RateLimited(_) => "rate_limited",
        }
    }

    pub fn to_error(&self) -> ApiError {
        use StatusCode as S;
        let (status, kind, message) = match self {
            Refusal::MissingToken => (
                S::UNAUTHORIZED,
                "unauthorized",
                "missing bearer token: send `Authorization: Bearer stw_...` \
                 (`steward token create --as <principal>`)"
                    .to_string(),
            ),
            Refusal::UnknownToken => (S::UNAUTHORIZED, "unauthorized", "unknown token".into()),
            Refusal::ExpiredToken => (S::UNAUTHORIZED, "unauthorized", "token expired".into()),
            Refusal::RevokedToken => (S::UNAUTHORIZED, "unauthorized", "token revoked".into()),
            Refusal::Forbidden(m) => (S::FORBIDDEN, "forbidden", m.clone()),
            Refusal::UnknownHook => (
                S::NOT_FOUND,
                "unknown_hook",
                "no such hook (hooks are defined in policies/hooks.toml)".into(),
            ),
            Refusal::NotFound => (S::NOT_FOUND, "not_found", "no such request".into()),
            Refusal::BodyTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is over {} bytes", crate::MAX_BODY),
            ),
            Refusal::MalformedJson(m) => (S::BAD_REQUEST, "malformed_json", m.clone()),
            Refusal::InvalidPayload(m) => (S::BAD_REQUEST, "invalid_payload", m.clone()),
            Refusal::MissingDelivery => (
                S::BAD_REQUEST,
                "missing_delivery",
                "the Steward-Delivery header (a unique id per delivery, at most 200 visible \
                 ASCII characters) is required"
                    .into(),
            ),
            Refusal::BadSignature(m) => (S::UNAUTHORIZED, "bad_signature", m.clone()),
            Refusal::StaleTimestamp => (
                S::UNAUTHORIZED,
                "stale_timestamp",
                format!(
                    "the signature's t is more than {} s from the server's clock",
                    crate::hooks::TOLERANCE_SECS
                ),
            ),
            Refusal::ReplayedDelivery => (
                S::ACCEPTED,
                "replayed_delivery",
                "delivery already seen".into(),
            ),
            Refusal::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON, with `Content-Type: application/json`".into(),
            ),
            Refusal::RateLimited(secs) => (
                S::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("this token is over its rate limit; retry in {secs} s"),
            ),
        };
        let field = match self {
            Refusal::InvalidPayload(_) | Refusal::MalformedJson(_) => payload_field(&message),
            _ => None,
        };
        ApiError::new(status, kind, message).with_field(field)
    }
}

/// The field a payload message names: "at `args.service`: ..." or serde's "missing field
/// `tool`" and "unknown field `x`".
fn payload_field(message: &str) -> Option<String> {
    ["at `", "field `"].iter().find_map(|open| {
        let start = message.find(open)? + open.len();
        let len = message[start..].find('`')?;
        Some(message[start..start + len].to_string()).filter(|f| !f.is_empty())
    })
}

/// The argument a tool's validation message names, as `args.<path>`: "... at /service: ..."
/// from the JSON Schema check, or serde's "missing field `service`".
pub fn args_field(message: &str) -> Option<String> {
    let path = if let Some(start) = message.find(" at /") {
        let rest = &message[start + 5..];
        let end = rest.find(':').unwrap_or(rest.len());
        rest[..end].replace('/', ".")
    } else {
        payload_field(message)?
    };
    Some(if path.is_empty() {
        "args".to_string()
    } else {
        format!("args.{path}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_at_fault_is_named_from_either_kind_of_message() {
        assert_eq!(
            args_field("invalid arguments for service_logs at /tail: 0 is less than 1"),
            Some("args.tail".into())
        );
        assert_eq!(
            args_field("invalid arguments for service_restart: missing field `service`"),
            Some("args.service".into())
        );
        assert_eq!(args_field("denied by policy: no"), None);
        assert_eq!(
            payload_field("invalid_payload: unknown field `tol`, expected one of `tool`"),
            Some("tol".into())
        );
    }
}
