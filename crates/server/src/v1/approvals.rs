//! `GET /v1/approvals`, `POST /v1/approvals/{id}/approve|deny`. Who may answer is the
//! orchestrator's Cedar decision (`Action::"approve"`): only people, and not their own
//! request unless a policy permits it. Every refused answer is audited there.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use steward_agent::approvals::Approval;
use steward_agent::approvals::ApprovalState;
use steward_agent::Error as AgentError;
use steward_policy::{Principal, PrincipalKind};

use super::types::{AnswerBody, ApprovalView, ApprovalsQuery, CallAnswer, ErrorBody};
use super::{Caller, OptionalJsonBody};
use crate::api::{ApiError, Refusal};
use crate::state::AppState;

/// Pending approvals (all of them with `all=true`). Operators see every request; any other
/// principal sees the ones it made.
#[utoipa::path(get, path = "/v1/approvals", operation_id = "listApprovals", tag = "approvals",
    security(("bearer" = [])),
    params(ApprovalsQuery),
    responses(
        (status = 200, description = "Approvals, newest first", body = [ApprovalView]),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
    ))]
pub(crate) async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<ApprovalsQuery>,
) -> Response {
    match state.shared.orchestrator.list_approvals(q.all).await {
        Ok(all) => {
            let shown: Vec<ApprovalView> = all
                .iter()
                .filter(|a| visible_to(&caller.principal, &caller.label, a))
                .map(ApprovalView::from)
                .collect();
            caller.answer(Json(shown).into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "listing approvals failed");
            caller.answer(ApiError::internal().into_response())
        }
    }
}

/// Whether `principal` (labelled `label`) is shown approval `a`: operators, who may answer
/// it, see every request; anyone else the ones it made.
pub(crate) fn visible_to(principal: &Principal, label: &str, a: &Approval) -> bool {
    principal.kind == PrincipalKind::Operator || a.principal == label
}

/// Approves a pending request and runs it; the answer is the call's outcome.
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", operation_id = "approve", tag = "approvals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Approval id, e.g. ap-0123456789ab")),
    request_body(content = AnswerBody, description = "Optional: why", content_type = "application/json"),
    responses(
        (status = 200, description = "Approved and done", body = CallAnswer),
        (status = 403, description = "This principal may not answer it (policy), or policy now denies the call", body = ErrorBody),
        (status = 404, description = "No such approval", body = ErrorBody),
        (status = 409, description = "Already answered or expired, or a guard stops it for now", body = CallAnswer),
        (status = 502, description = "Approved, ran and failed", body = CallAnswer),
    ))]
pub(crate) async fn approve(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<AnswerBody>,
) -> Response {
    let before = standing(&state, &id).await;
    let answered = state
        .shared
        .orchestrator
        .approve(&id, &caller.principal, body.reason.as_deref())
        .await;
    match answered {
        Ok(outcome) => {
            let tool = match &before {
                Standing::Answerable(tool) => tool.as_str(),
                _ => "",
            };
            let status = StatusCode::from_u16(outcome.codes().1)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            caller.answer((status, Json(CallAnswer::of(tool, &outcome))).into_response())
        }
        Err(e) => answer_failed(&caller, &state, before, e),
    }
}

/// Denies a pending request for good (or withdraws it, when its proposer answers). A reason
/// is required.
#[utoipa::path(post, path = "/v1/approvals/{id}/deny", operation_id = "deny", tag = "approvals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Approval id")),
    request_body = AnswerBody,
    responses(
        (status = 200, description = "Denied (or withdrawn)", body = ApprovalView),
        (status = 400, description = "No reason given", body = ErrorBody),
        (status = 403, description = "This principal may not answer it", body = ErrorBody),
        (status = 404, description = "No such approval", body = ErrorBody),
        (status = 409, description = "Already answered or expired", body = ErrorBody),
    ))]
pub(crate) async fn deny(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<AnswerBody>,
) -> Response {
    let Some(reason) = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    else {
        return caller.refuse(
            &state,
            Refusal::InvalidPayload("a denial needs a reason: at `reason`".into()),
        );
    };
    let before = standing(&state, &id).await;
    match state
        .shared
        .orchestrator
        .deny(&id, &caller.principal, Some(reason))
        .await
    {
        Ok(a) => caller.answer(Json(ApprovalView::from(&a)).into_response()),
        Err(e) => answer_failed(&caller, &state, before, e),
    }
}

/// Where an approval stood before an answer: refusals are told apart by it (the
/// orchestrator audits every refused answer, whatever the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Standing {
    Unknown,
    /// Pending: the tool it would run.
    Answerable(String),
    Settled,
}

pub(crate) async fn standing(state: &AppState, id: &str) -> Standing {
    let now = steward_protocol::Timestamp(crate::db::now_ms());
    match state.shared.orchestrator.approvals().get(id).await {
        Ok(a) if a.state == ApprovalState::Pending && !a.is_expired(now) => {
            Standing::Answerable(a.tool)
        }
        Ok(_) => Standing::Settled,
        Err(_) => Standing::Unknown,
    }
}

/// An answer the orchestrator did not take: unknown id (404), no longer pending (409), or
/// refused by policy (403).
fn answer_failed(caller: &Caller, state: &AppState, before: Standing, e: AgentError) -> Response {
    match (e, before) {
        (AgentError::Refused(message), Standing::Unknown) => caller
            .answer(ApiError::new(StatusCode::NOT_FOUND, "not_found", message).into_response()),
        (AgentError::Refused(message), Standing::Settled) => {
            caller.answer(ApiError::new(StatusCode::CONFLICT, "conflict", message).into_response())
        }
        (AgentError::Refused(message), Standing::Answerable(_)) => {
            caller.refuse(state, Refusal::Forbidden(message))
        }
        (other, _) => {
            tracing::error!(error = %other, "answering an approval failed");
            caller.answer(ApiError::internal().into_response())
        }
    }
}
