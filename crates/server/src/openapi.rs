//! The HTTP API's OpenAPI 3.1 document, generated from the handlers' annotations and the
//! `/v1` types ([`crate::v1::types`]). It is served at `/openapi.json` and committed as
//! `docs/openapi.json`; a test fails when the two differ (`steward tools openapi > docs/openapi.json`
//! regenerates it).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::v1::types::{
    AnswerBody, ApprovalView, CallAnswer, CallBody, DecisionView, ErrorBody, ErrorDetail,
    PendingView, PlanView, ResultView, StatusView, ToolInfo,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Steward API",
        description = "Typed tool calls down Steward's one request path: validated, vetted by \
            Cedar policy, approved by a person where policy says so, run and audited. Every \
            endpoint but /healthz, /readyz and this document needs `Authorization: Bearer \
            stw_...` (`steward token create --as <principal>`); the call runs as that \
            principal. Errors share one shape: {error: {kind, message, field?}}."
    ),
    paths(
        crate::v1::tools::list,
        crate::v1::tools::one,
        crate::v1::calls::call,
        crate::v1::approvals::list,
        crate::v1::approvals::approve,
        crate::v1::approvals::deny,
        crate::v1::audit::search,
        crate::v1::audit::verify,
        crate::v1::audit::checkpoint,
        crate::v1::views::status,
        crate::v1::views::incidents,
        crate::v1::views::incident,
        crate::v1::views::origin_check,
        crate::v1::views::origin_compare,
        crate::app::request_view,
        crate::chat::plan,
        crate::chat::message,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, ToolInfo, CallBody, CallAnswer, DecisionView, PlanView,
        ResultView, PendingView, ApprovalView, AnswerBody, StatusView,
        crate::chat::MessageBody
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "tools", description = "The tool catalogue and argument schemas"),
        (name = "calls", description = "Typed tool calls"),
        (name = "approvals", description = "Calls waiting for a person"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "views", description = "Platform status and incidents"),
        (name = "origin", description = "Rules of origin"),
        (name = "requests", description = "Webhook and alert requests"),
        (name = "chat", description = "Natural language: plan, and chat sessions streamed as Server-Sent Events"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("stw_ token")
                    .build(),
            ),
        );
    }
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut text = doc
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}
