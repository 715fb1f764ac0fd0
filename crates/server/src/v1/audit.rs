//! `GET /v1/audit/search`, `GET /v1/audit/verify`, `POST /v1/audit/checkpoint`. A search is
//! the `audit_search` tool call itself (vetted and audited like any other); verify is shown
//! to whoever may search; a checkpoint is signed for operators only.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use steward_policy::PrincipalKind;

use super::types::{AuditQuery, CallAnswer, ErrorBody};
use super::Caller;
use crate::api::{ApiError, Refusal};
use crate::state::AppState;

/// Searches the audit log (the `audit_search` tool).
#[utoipa::path(get, path = "/v1/audit/search", operation_id = "searchAudit", tag = "audit",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "Matching records in `result.output`", body = CallAnswer),
        (status = 400, description = "Invalid query or since", body = CallAnswer),
        (status = 403, description = "Policy does not let this principal search", body = CallAnswer),
    ))]
pub(crate) async fn search(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let mut args = json!({ "query": q.q });
    if let Some(since) = q.since.filter(|s| !s.trim().is_empty()) {
        args["since"] = since.into();
    }
    super::calls::run(&caller, &state, "audit_search", args, false).await
}

/// Verifies the hash chain and the newest checkpoint. `ok` is false on any problem.
#[utoipa::path(get, path = "/v1/audit/verify", operation_id = "verifyAudit", tag = "audit",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The verify report: records, ok, problems, checkpoint", body = Object),
        (status = 403, description = "Policy does not let this principal search the audit log", body = ErrorBody),
    ))]
pub(crate) async fn verify(caller: Caller, State(state): State<AppState>) -> Response {
    if let Some(r) = caller.unless_may_read(
        &state,
        "audit_search",
        json!({"query": "*"}),
        "the audit log",
    ) {
        return r;
    }
    match state.shared.orchestrator.audit().verify().await {
        Ok(report) => {
            state.shared.metrics.audit_verified(report.ok);
            caller.answer(Json(report).into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "audit verify failed to run");
            caller.answer(ApiError::internal().into_response())
        }
    }
}

/// Signs a checkpoint over the audit log's head, so a cut-off tail is caught from here on.
#[utoipa::path(post, path = "/v1/audit/checkpoint", operation_id = "checkpointAudit", tag = "audit",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The checkpoint signed: store, seq, hash, at", body = Object),
        (status = 403, description = "Only operators sign checkpoints", body = ErrorBody),
    ))]
pub(crate) async fn checkpoint(caller: Caller, State(state): State<AppState>) -> Response {
    if caller.principal.kind != PrincipalKind::Operator {
        return caller.refuse(
            &state,
            Refusal::Forbidden("only operators sign audit checkpoints".into()),
        );
    }
    match state.shared.orchestrator.audit().checkpoint().await {
        Ok(cp) => caller.answer(Json(cp).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "signing an audit checkpoint failed");
            caller.answer(ApiError::internal().into_response())
        }
    }
}
