//! `GET /v1/tools[/{name}]`: the catalogue, each tool with the JSON Schema of its arguments.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::types::{ErrorBody, ToolInfo};
use super::Caller;
use crate::api::ApiError;
use crate::state::AppState;

/// Every catalogue tool's definition, the same as `tools/<name>.json`.
pub fn catalogue() -> Vec<ToolInfo> {
    steward_tools::CATALOGUE
        .iter()
        .filter_map(|spec| info(spec.name))
        .collect()
}

pub fn info(name: &str) -> Option<ToolInfo> {
    serde_json::from_value(steward_tools::schemas::definition(name)?).ok()
}

/// The tool catalogue.
#[utoipa::path(get, path = "/v1/tools", operation_id = "listTools", tag = "tools",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every tool", body = [ToolInfo]),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 429, description = "Over the token's rate limit", body = ErrorBody),
    ))]
pub(crate) async fn list(caller: Caller, State(_): State<AppState>) -> Response {
    caller.answer(Json(catalogue()).into_response())
}

/// One tool's definition and argument schema.
#[utoipa::path(get, path = "/v1/tools/{name}", operation_id = "getTool", tag = "tools",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Tool name, e.g. service_restart")),
    responses(
        (status = 200, description = "The tool", body = ToolInfo),
        (status = 404, description = "No such tool", body = ErrorBody),
    ))]
pub(crate) async fn one(
    caller: Caller,
    State(_): State<AppState>,
    Path(name): Path<String>,
) -> Response {
    caller.answer(match info(&name) {
        Some(tool) => Json(tool).into_response(),
        None => ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "unknown_tool",
            "no such tool (GET /v1/tools lists them)",
        )
        .into_response(),
    })
}
