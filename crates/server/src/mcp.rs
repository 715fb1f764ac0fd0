//! Steward's tools over MCP (`rmcp`): `steward mcp` on stdio for desktop agents, and
//! streamable HTTP at `/mcp` behind a bearer token.
//!
//! The tools are the catalogue with their JSON Schemas, annotated `readOnlyHint` and
//! `destructiveHint` from each tool's effect. Every call goes down the one request path as
//! the client's `mcp:<client>` principal with origin `mcp`, so Cedar decides what an agent
//! may do (a tool its entity does not list is refused, and the refusal is audited), and a
//! call that needs a person comes back naming the approval and how to give it.

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{json, Value};
use steward_agent::{Orchestrator, Outcome, Request as CallRequest};
use steward_policy::{Principal, PrincipalKind};
use steward_protocol::{Effect, Origin};

use crate::api::Refusal;
use crate::app::{authenticate, refuse, tag};
use crate::state::AppState;

/// Refusals at `/mcp` are counted under this source.
const SOURCE: &str = "mcp";

/// The principal an HTTP request to `/mcp` authenticated as (set by [`authenticate_mcp`]).
#[derive(Debug, Clone)]
struct McpCaller(Principal);

/// The MCP server over the orchestrator.
#[derive(Debug, Clone)]
pub struct StewardMcp {
    orchestrator: Arc<Orchestrator>,
    /// stdio: the principal `steward mcp --as` names. HTTP: `None`, each request's token.
    fixed: Option<Principal>,
}

impl StewardMcp {
    /// A server for one client whose principal is known up front (stdio).
    pub fn for_principal(orchestrator: Arc<Orchestrator>, principal: Principal) -> StewardMcp {
        StewardMcp {
            orchestrator,
            fixed: Some(principal),
        }
    }

    fn for_tokens(orchestrator: Arc<Orchestrator>) -> StewardMcp {
        StewardMcp {
            orchestrator,
            fixed: None,
        }
    }

    fn principal(&self, ctx: &RequestContext<RoleServer>) -> Option<Principal> {
        if let Some(p) = &self.fixed {
            return Some(p.clone());
        }
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<McpCaller>())
            .map(|c| c.0.clone())
    }
}

/// The catalogue as MCP tools, with hints from each tool's effect. `respond` is the
/// planner's own and not offered.
pub fn tools() -> Vec<Tool> {
    steward_tools::CATALOGUE
        .iter()
        .filter(|spec| spec.effect != Effect::None)
        .filter_map(|spec| {
            let Value::Object(schema) = steward_tools::schema(spec.name)? else {
                return None;
            };
            let hints = ToolAnnotations::new()
                .read_only(spec.effect == Effect::Read)
                .destructive(spec.effect == Effect::Destructive);
            Some(Tool::new(spec.name, spec.summary, Arc::new(schema)).annotate(hints))
        })
        .collect()
}

fn text_result(value: &Value, error: bool) -> CallToolResult {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let content = vec![ContentBlock::text(text)];
    if error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    }
}

/// What the agent is told: the outcome as JSON text. A pending call names its approval and
/// how a person gives it; a refusal is a tool error the agent can read (not a protocol error).
fn result_of(tool: &str, outcome: &Outcome) -> CallToolResult {
    let answer = crate::v1::types::CallAnswer::of(tool, outcome);
    let mut value = serde_json::to_value(&answer).unwrap_or_else(|_| json!({}));
    if let Some(a) = &answer.approval {
        value["message"] = format!(
            "{tool} waits for a person's approval ({}). It has not run. An operator approves \
             it with `steward approve {}` or POST /v1/approvals/{}/approve; it expires if \
             nobody answers.",
            a.id, a.id, a.id
        )
        .into();
    }
    let failed = matches!(outcome, Outcome::Refused { .. } | Outcome::Failed { .. });
    text_result(&value, failed)
}

impl ServerHandler for StewardMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("steward", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Steward's ops tools for this host's platform (Docker services, tenants, \
                 PostgreSQL backups, rules of origin). Every call is checked by policy and \
                 audited; writes may wait for a person's approval.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(principal) = self.principal(&ctx) else {
            return Err(ErrorData::invalid_request(
                "no authenticated principal",
                None,
            ));
        };
        let tool = request.name.to_string();
        let args = Value::Object(request.arguments.unwrap_or_default());
        let outcome = self
            .orchestrator
            .handle(CallRequest {
                principal,
                origin: Origin::Mcp,
                intent_text: None,
                // An agent's arguments are its own text, not the operator's.
                untrusted_text: true,
                tool: tool.clone(),
                args,
                dry_run_only: false,
            })
            .await;
        match outcome {
            Ok(o) => Ok(result_of(&tool, &o).into()),
            Err(e) => {
                tracing::error!(tool, error = %e, "an MCP call failed inside Steward");
                Ok(text_result(
                    &json!({"error": "internal error; the server log has the details"}),
                    true,
                )
                .into())
            }
        }
    }
}

/// `/mcp` (streamable HTTP), behind [`authenticate_mcp`].
pub(crate) fn service(
    state: &AppState,
) -> rmcp::transport::StreamableHttpService<
    StewardMcp,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    let server = StewardMcp::for_tokens(state.shared.orchestrator.clone());
    rmcp::transport::StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::default(),
        rmcp::transport::StreamableHttpServerConfig::default(),
    )
}

/// Admits `/mcp` requests with a valid token of an `mcp:<client>` principal, within its
/// rate limit; the principal rides along to the handler.
pub(crate) async fn authenticate_mcp(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let label = match authenticate(&state, req.headers()).await {
        Ok(l) => l,
        Err(r) => return refuse(&state, SOURCE, None, r),
    };
    let principal = match Principal::parse(&label) {
        Ok(p) if p.kind == PrincipalKind::McpClient => p,
        _ => {
            let r = Refusal::Forbidden("/mcp admits only tokens of mcp:<client> principals".into());
            return refuse(&state, SOURCE, Some(&label), r);
        }
    };
    if let Err(wait) = state.shared.limiter.admit(&label) {
        return refuse(&state, SOURCE, Some(&label), Refusal::RateLimited(wait));
    }
    req.extensions_mut().insert(McpCaller(principal));
    tag(next.run(req).await.into_response(), Some(&label))
}

/// Serves `principal`'s MCP session on stdin and stdout until the client closes it
/// (`steward mcp`). Nothing else may write to stdout meanwhile.
pub async fn serve_stdio(
    orchestrator: Arc<Orchestrator>,
    principal: Principal,
) -> Result<(), String> {
    use rmcp::ServiceExt;
    let running = StewardMcp::for_principal(orchestrator, principal)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("MCP session did not start: {e}"))?;
    running
        .waiting()
        .await
        .map(|_| ())
        .map_err(|e| format!("MCP session ended badly: {e}"))
}
