//! The `/v1` contract: request and response bodies. The OpenAPI document is generated from
//! these types (see [`crate::openapi`]), so the contract and the code cannot drift apart.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_agent::approvals::Approval;
use steward_agent::Outcome;
use steward_protocol::Decision;
use utoipa::{IntoParams, ToSchema};

use crate::api::ApiError;

/// The one error shape: `{"error": {"kind", "message", "field"?}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A fixed vocabulary: `unauthorized`, `forbidden`, `invalid_args`, `denied`, ...
    pub kind: String,
    pub message: String,
    /// The request field at fault, when one is (`tool`, `args.service`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl From<&ApiError> for ErrorDetail {
    fn from(e: &ApiError) -> Self {
        ErrorDetail {
            kind: e.kind.to_string(),
            message: e.message.clone(),
            field: e.field.clone(),
        }
    }
}

/// A catalogue tool as committed in `tools/<name>.json`: the shape Claude, OpenAI and MCP
/// accept.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    /// `read`, `write`, `destructive` or `none`.
    pub effect: String,
    /// JSON Schema (2020-12) of the arguments.
    #[schema(value_type = Object)]
    pub input_schema: Value,
}

/// `POST /v1/calls`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallBody {
    /// A catalogue tool name (`GET /v1/tools`).
    pub tool: String,
    /// The tool's arguments; its schema is at `GET /v1/tools/{name}`.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub args: Value,
    /// Stop after the dry-run: show the plan and the decision, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// What policy said, and which policies said it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionView {
    /// `allow`, `needs_approval` or `deny`.
    pub decision: String,
    pub policies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<&Decision> for DecisionView {
    fn from(d: &Decision) -> Self {
        let (decision, reason) = match d {
            Decision::Allow { .. } => ("allow", None),
            Decision::NeedsApproval { reason, .. } => ("needs_approval", Some(reason.clone())),
            Decision::Deny { reason, .. } => ("deny", Some(reason.clone())),
        };
        DecisionView {
            decision: decision.into(),
            policies: d.policies().to_vec(),
            reason,
        }
    }
}

/// The dry-run: what would change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanView {
    pub summary: String,
    pub steps: Vec<String>,
    /// False when the world already matches: running would change nothing.
    pub changes: bool,
}

/// What a call that ran produced.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultView {
    pub summary: String,
    #[schema(value_type = Object)]
    pub output: Value,
    pub changed: bool,
}

/// A call waiting for a person, and how to answer it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PendingView {
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
    /// The request that approves it.
    pub approve: String,
}

/// How a call ended: `done` (200), `planned` (200, dry-run), `pending_approval` (202),
/// `refused` (400, 403 or 409) or `failed` (404, 409, 500 or 502). A refused or failed call
/// carries `error` in the one error shape.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallAnswer {
    pub status: String,
    pub tool: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<PendingView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The stage that refused it: `validate`, `policy`, `dry_run`, `guard`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

impl CallAnswer {
    pub fn of(tool: &str, outcome: &Outcome) -> CallAnswer {
        let mut a = CallAnswer {
            status: outcome.label().to_string(),
            tool: tool.to_string(),
            decision: None,
            plan: None,
            result: None,
            approval: None,
            duration_ms: None,
            stage: None,
            error: None,
        };
        let error = |kind: &steward_tools::ErrorKind, message: &str| ErrorDetail {
            kind: kind_name(kind),
            message: message.to_string(),
            field: crate::api::args_field(message),
        };
        match outcome {
            Outcome::Refused {
                stage,
                kind,
                message,
                decision,
            } => {
                a.stage = Some(stage.to_string());
                a.decision = decision.as_ref().map(DecisionView::from);
                a.error = Some(error(kind, message));
            }
            Outcome::Planned { plan, decision } => {
                a.plan = Some(plan_view(plan));
                a.decision = Some(decision.into());
            }
            Outcome::PendingApproval { approval, decision } => {
                a.decision = Some(decision.into());
                a.plan = serde_json::from_value::<steward_tools::Plan>(approval.plan.clone())
                    .ok()
                    .map(|p| plan_view(&p));
                a.approval = Some(PendingView {
                    id: approval.id.clone(),
                    expires_at: approval.expires_at.0,
                    approve: format!("POST /v1/approvals/{}/approve", approval.id),
                });
            }
            Outcome::Done {
                done,
                decision,
                duration_ms,
            } => {
                a.decision = Some(decision.into());
                a.duration_ms = Some(*duration_ms);
                a.result = Some(ResultView {
                    summary: done.summary.clone(),
                    output: done.output.clone(),
                    changed: done.changed,
                });
            }
            Outcome::Failed {
                kind,
                message,
                decision,
                duration_ms,
            } => {
                a.decision = Some(decision.into());
                a.duration_ms = Some(*duration_ms);
                a.error = Some(error(kind, message));
            }
        }
        a
    }
}

/// An error kind as the API names it (`invalid_args`, `denied`, ...).
pub fn kind_name(kind: &steward_tools::ErrorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "internal".into())
}

fn plan_view(p: &steward_tools::Plan) -> PlanView {
    PlanView {
        summary: p.summary.clone(),
        steps: p.steps.clone(),
        changes: p.changes,
    }
}

/// A call waiting for (or answered by) a person.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApprovalView {
    pub id: String,
    pub tool: String,
    #[schema(value_type = Object)]
    pub args: Value,
    /// Who asked, as `kind:id`.
    pub principal: String,
    pub origin: String,
    /// True when the call came from text Steward does not trust.
    pub untrusted: bool,
    /// Why policy asks for a person.
    pub reason: String,
    pub policies: Vec<String>,
    /// The dry-run the approver is shown.
    #[schema(value_type = Object)]
    pub plan: Value,
    /// `pending`, `executed`, `denied`, `withdrawn` or `expired`.
    pub state: String,
    pub requested_at: i64,
    pub expires_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_reason: Option<String>,
}

impl From<&Approval> for ApprovalView {
    fn from(a: &Approval) -> Self {
        ApprovalView {
            id: a.id.clone(),
            tool: a.tool.clone(),
            args: a.args.clone(),
            principal: a.principal.clone(),
            origin: a.origin.clone(),
            untrusted: a.untrusted,
            reason: a.reason.clone(),
            policies: a.policies.clone(),
            plan: a.plan.clone(),
            state: a.state.as_str().to_string(),
            requested_at: a.requested_at.0,
            expires_at: a.expires_at.0,
            answered_by: a.answered_by.clone(),
            answer_reason: a.answer_reason.clone(),
        }
    }
}

/// `POST /v1/approvals/{id}/approve` and `/deny`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    /// Why; kept with the answer and in the audit log. Required to deny.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `GET /v1/approvals`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalsQuery {
    /// Also list answered and expired ones.
    #[serde(default)]
    pub all: bool,
}

/// `GET /v1/audit/search`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Words to find (tool, service, principal, message text).
    pub q: String,
    /// Only records since then: `2h`, `yesterday`, RFC 3339.
    #[serde(default)]
    pub since: Option<String>,
}

/// `GET /v1/incidents`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentsQuery {
    /// Also list closed incidents.
    #[serde(default)]
    pub all: bool,
}

/// `GET /v1/status`: the platform, and what waits for people.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusView {
    /// Managed containers: service, kind, release, health, image and route.
    #[schema(value_type = Object)]
    pub platform: Value,
    pub pending_approvals: usize,
    pub open_incidents: usize,
}
