//! `GET /v1/status`, `GET /v1/incidents[/{id}]`, `POST /v1/origin/check|compare`. The
//! status and incidents are shown to whoever policy lets call `service_list`; the origin
//! endpoints are the `origin_check` and `origin_compare` tool calls themselves.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use steward_agent::incidents::IncidentStore;

use super::types::{CallAnswer, ErrorBody, IncidentsQuery, StatusView};
use super::{Caller, JsonBody};
use crate::api::ApiError;
use crate::state::AppState;

const PLATFORM: &str = "the platform's state";

/// The platform (services with health, release and route) and what waits for people.
#[utoipa::path(get, path = "/v1/status", operation_id = "status", tag = "views",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Status", body = StatusView),
        (status = 403, description = "Policy does not let this principal list services", body = ErrorBody),
    ))]
pub(crate) async fn status(caller: Caller, State(state): State<AppState>) -> Response {
    if let Some(r) = caller.unless_may_read(&state, "service_list", json!({}), PLATFORM) {
        return r;
    }
    let incidents = IncidentStore::new(state.shared.store.clone());
    let (platform, approvals, open) = tokio::join!(
        state.shared.platform.status(),
        state.shared.orchestrator.list_approvals(false),
        incidents.list(true),
    );
    let platform = platform.unwrap_or_else(|e| json!({ "error": e }));
    match (approvals, open) {
        (Ok(a), Ok(i)) => caller.answer(
            Json(StatusView {
                platform,
                pending_approvals: a.len(),
                open_incidents: i.len(),
            })
            .into_response(),
        ),
        (Err(e), _) => internal(&caller, &e.to_string()),
        (_, Err(e)) => internal(&caller, &e.to_string()),
    }
}

/// Incidents, newest first: open ones, or all with `all=true`.
#[utoipa::path(get, path = "/v1/incidents", operation_id = "listIncidents", tag = "views",
    security(("bearer" = [])),
    params(IncidentsQuery),
    responses(
        (status = 200, description = "Incidents (timelines left out)", body = [Object]),
        (status = 403, description = "Policy does not let this principal list services", body = ErrorBody),
    ))]
pub(crate) async fn incidents(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<IncidentsQuery>,
) -> Response {
    if let Some(r) = caller.unless_may_read(&state, "service_list", json!({}), PLATFORM) {
        return r;
    }
    match IncidentStore::new(state.shared.store.clone())
        .list(!q.all)
        .await
    {
        Ok(list) => caller.answer(Json(list).into_response()),
        Err(e) => internal(&caller, &e.to_string()),
    }
}

/// One incident with its timeline: the event, each step, decision and outcome.
#[utoipa::path(get, path = "/v1/incidents/{id}", operation_id = "getIncident", tag = "views",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident", body = Object),
        (status = 404, description = "No such incident", body = ErrorBody),
    ))]
pub(crate) async fn incident(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = caller.unless_may_read(&state, "service_list", json!({}), PLATFORM) {
        return r;
    }
    match IncidentStore::new(state.shared.store.clone())
        .get(&id)
        .await
    {
        Ok(Some(i)) => caller.answer(Json(i).into_response()),
        Ok(None) => caller.answer(
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such incident").into_response(),
        ),
        Err(e) => internal(&caller, &e.to_string()),
    }
}

/// Whether a product qualifies under one agreement (the `origin_check` tool; the body is
/// its arguments).
#[utoipa::path(post, path = "/v1/origin/check", operation_id = "originCheck", tag = "origin",
    security(("bearer" = [])),
    request_body(content = Object, description = "origin_check arguments (GET /v1/tools/origin_check)"),
    responses(
        (status = 200, description = "The verdict in `result.output`", body = CallAnswer),
        (status = 400, description = "Invalid arguments (`error.field`)", body = CallAnswer),
    ))]
pub(crate) async fn origin_check(
    caller: Caller,
    State(state): State<AppState>,
    JsonBody(args): JsonBody<Value>,
) -> Response {
    super::calls::run(&caller, &state, "origin_check", args, false).await
}

/// Under which agreements a product qualifies (the `origin_compare` tool).
#[utoipa::path(post, path = "/v1/origin/compare", operation_id = "originCompare", tag = "origin",
    security(("bearer" = [])),
    request_body(content = Object, description = "origin_compare arguments (GET /v1/tools/origin_compare)"),
    responses(
        (status = 200, description = "The verdicts in `result.output`", body = CallAnswer),
        (status = 400, description = "Invalid arguments (`error.field`)", body = CallAnswer),
    ))]
pub(crate) async fn origin_compare(
    caller: Caller,
    State(state): State<AppState>,
    JsonBody(args): JsonBody<Value>,
) -> Response {
    super::calls::run(&caller, &state, "origin_compare", args, false).await
}

fn internal(caller: &Caller, error: &str) -> Response {
    tracing::error!(error, "a /v1 view could not be read");
    caller.answer(ApiError::internal().into_response())
}
