//! `POST /v1/calls`: one typed tool call down the request path, as the token's principal.
//! The status comes from the mapping the CLI's exit codes come from
//! ([`steward_agent::status`]), so a denial is 403 here and exit 3 there.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use steward_agent::Request;
use steward_protocol::Origin;

use super::types::{CallAnswer, CallBody, ErrorBody};
use super::{Caller, JsonBody};
use crate::api::ApiError;
use crate::state::AppState;

/// Runs (or dry-runs) one tool call.
#[utoipa::path(post, path = "/v1/calls", operation_id = "call", tag = "calls",
    security(("bearer" = [])),
    request_body = CallBody,
    responses(
        (status = 200, description = "Done, or planned (dry_run)", body = CallAnswer),
        (status = 202, description = "Waiting for approval; `approval.id` names it", body = CallAnswer),
        (status = 400, description = "Invalid: unknown tool or arguments (`error.field` names the field), malformed JSON", body = CallAnswer),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Refused by policy", body = CallAnswer),
        (status = 409, description = "Stopped by a guard, a busy target or a conflict", body = CallAnswer),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
        (status = 429, description = "Over the token's rate limit (see Retry-After)", body = ErrorBody),
        (status = 502, description = "Ran and failed, or the platform did not answer", body = CallAnswer),
    ))]
pub(crate) async fn call(
    caller: Caller,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CallBody>,
) -> Response {
    run(&caller, &state, &body.tool, body.args, body.dry_run).await
}

/// Hands one call to the orchestrator as the caller (origin `api`) and answers its outcome.
pub(crate) async fn run(
    caller: &Caller,
    state: &AppState,
    tool: &str,
    args: Value,
    dry_run: bool,
) -> Response {
    let outcome = state
        .shared
        .orchestrator
        .handle(Request {
            principal: caller.principal.clone(),
            origin: Origin::Api,
            intent_text: None,
            untrusted_text: false,
            tool: tool.to_string(),
            args,
            dry_run_only: dry_run,
        })
        .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(tool, error = %e, "a call through the API failed inside Steward");
            return caller.answer(ApiError::internal().into_response());
        }
    };
    let status =
        StatusCode::from_u16(outcome.codes().1).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    caller.answer((status, Json(CallAnswer::of(tool, &outcome))).into_response())
}
