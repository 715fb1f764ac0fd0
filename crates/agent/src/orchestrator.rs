//! The one request path every way into Steward goes through:
//! validate → vet (policy, guards) → dry-run → approve → execute → audit.
//!
//! The orchestrator sees executors only through [`Registry`] (the `Executor` trait); the
//! binary wires the concrete ones in. Every outcome, refusals included, is appended to the
//! audit log; an execution is bracketed by `ExecBegin`/`ExecEnd`, so a crash in between is
//! visible as an open record and reconciled at start-up.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};
use steward_audit::AuditLog;
use steward_policy::{target_of, Guards, PolicySet, Principal, PrincipalKind, VetRequest};
use steward_protocol::{AuditEntry, AuditKind, Decision, Origin, Timestamp};
use steward_tools::{Call, Clock, Done, ErrorKind, Plan, Registry, ToolError};

use crate::approvals::{args_hash, Approval, ApprovalState, ApprovalStore};
use crate::principal::{actor_of, label, label_of_actor};
use crate::{Error, Result};

/// How long a pending approval stays answerable unless configured otherwise.
pub const DEFAULT_APPROVAL_TTL_MS: i64 = 15 * 60 * 1000;

/// One proposed call and who stands behind it.
#[derive(Debug, Clone)]
pub struct Request {
    pub principal: Principal,
    pub origin: Origin,
    /// The natural-language text the call came from, if any.
    pub intent_text: Option<String>,
    /// True when the call was derived from text Steward does not trust (log lines, alert
    /// annotations, webhook bodies), whatever the origin.
    pub untrusted_text: bool,
    pub tool: String,
    pub args: Value,
    /// Stop after the dry-run: show the plan and the decision, change nothing.
    pub dry_run_only: bool,
}

/// How a request ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Refused before anything ran: invalid, denied by policy, or stopped by a guard.
    Refused {
        stage: &'static str,
        kind: ErrorKind,
        message: String,
        decision: Option<Decision>,
    },
    /// Dry-run only: what would happen, and what policy would say.
    Planned { plan: Plan, decision: Decision },
    /// Waiting for a human.
    PendingApproval {
        approval: Box<Approval>,
        decision: Decision,
    },
    /// Ran to completion.
    Done {
        done: Done,
        decision: Decision,
        duration_ms: u64,
    },
    /// Ran and failed.
    Failed {
        kind: ErrorKind,
        message: String,
        decision: Decision,
        duration_ms: u64,
    },
}

/// Settings of the orchestrator.
#[derive(Debug, Clone)]
pub struct Settings {
    pub approval_ttl_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            approval_ttl_ms: DEFAULT_APPROVAL_TTL_MS,
        }
    }
}

/// The orchestrator: owns policy, guards, approvals and the audit log, and reaches the
/// world only through the executor registry.
#[derive(Debug)]
pub struct Orchestrator {
    registry: Registry,
    policies: PolicySet,
    guards: Guards,
    audit: Arc<AuditLog>,
    approvals: ApprovalStore,
    clock: Arc<dyn Clock>,
    settings: Settings,
}

impl Orchestrator {
    /// Builds the orchestrator, closes any execution a crash left open in the audit log, and
    /// counts the executions still inside the guards' windows (whichever process ran them),
    /// so that limits hold across CLI calls.
    pub async fn start(
        registry: Registry,
        policies: PolicySet,
        guards: Guards,
        audit: Arc<AuditLog>,
        approvals: ApprovalStore,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Result<Self> {
        let reconciled = audit.reconcile(clock.now()).await?;
        for r in &reconciled {
            tracing::warn!(seq = r.seq, tool = ?r.entry.tool, "closed an execution left open by a crash");
        }
        let since = Timestamp(clock.now().0.saturating_sub(guards.lookback_ms()));
        for begin in audit.begins_since(since).await? {
            if let (Some(actor), Some(tool)) = (&begin.entry.actor, &begin.entry.tool) {
                guards.record_past(&label_of_actor(actor), tool, begin.entry.at.0);
            }
        }
        Ok(Self {
            registry,
            policies,
            guards,
            audit,
            approvals,
            clock,
            settings,
        })
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    pub fn approvals(&self) -> &ApprovalStore {
        &self.approvals
    }

    /// Runs one request down the path.
    pub async fn handle(&self, req: Request) -> Result<Outcome> {
        let base = self.entry(&req);
        // validate
        let call = match Call::parse(&req.tool, req.args.clone()) {
            Ok(c) => c,
            Err(e) => return self.refuse(base, "validate", e.kind, e.message, None).await,
        };
        // vet
        let decision = self.vet(&req, &call);
        if let Decision::Deny { reason, .. } = &decision {
            let message = format!("denied by policy: {reason}");
            return self
                .refuse(
                    base,
                    "policy",
                    ErrorKind::Denied,
                    message,
                    Some(decision.clone()),
                )
                .await;
        }
        // dry-run (shown before approval, and before a guard slot is taken)
        let plan = match self.registry.dry_run(&call).await {
            Ok(p) => p,
            Err(e) => {
                return self
                    .refuse(base, "dry_run", e.kind, e.message, Some(decision))
                    .await
            }
        };
        if req.dry_run_only {
            return Ok(Outcome::Planned { plan, decision });
        }
        if let Decision::NeedsApproval { reason, policies } = &decision {
            let approval = self
                .request_approval(&req, &call, &plan, reason, policies)
                .await?;
            let mut entry = base;
            entry.kind = Some(AuditKind::ApprovalRequested);
            entry.decision = Some(decision.clone());
            entry.plan = Some(json!(plan));
            entry.approval = Some(json!({"id": approval.id, "state": "pending",
                "expires_at": approval.expires_at}));
            self.audit.append(entry).await?;
            return Ok(Outcome::PendingApproval {
                approval: Box::new(approval),
                decision,
            });
        }
        self.execute(base, &req.principal, &call, decision, plan, None)
            .await
    }

    /// Approves a pending request and runs it. The approver must be an operator other than
    /// the requester; the stored arguments must still hash to the bound value; an expired
    /// request can never run; policy is asked again (a policy change since can deny it).
    pub async fn approve(
        &self,
        id: &str,
        approver: &Principal,
        reason: Option<&str>,
    ) -> Result<Outcome> {
        let a = self.approvals.get(id).await?;
        self.check_answerable(&a, approver).await?;
        let principal = Principal::parse(&a.principal)?;
        let origin: Origin = serde_json::from_value(json!(a.origin))
            .map_err(|e| Error::Corrupt(format!("approval {id}: origin: {e}")))?;
        if args_hash(&a.tool, &a.args) != a.args_hash {
            return Err(Error::Approval(format!(
                "approval {id} is bound to other arguments than the ones stored now; \
                 it cannot run. Propose the call again to get a new approval"
            )));
        }
        let call = Call::parse(&a.tool, a.args.clone()).map_err(Error::Tool)?;
        let req = Request {
            principal: principal.clone(),
            origin,
            intent_text: a.intent_text.clone(),
            untrusted_text: a.untrusted,
            tool: a.tool.clone(),
            args: a.args.clone(),
            dry_run_only: false,
        };
        let decision = self.vet(&req, &call);
        let now = self.clock.now();
        if !self
            .approvals
            .answer(id, ApprovalState::Executed, &label(approver), now, reason)
            .await?
        {
            return Err(Error::Approval(format!(
                "approval {id} was answered meanwhile"
            )));
        }
        let mut answered = self.entry(&req);
        answered.kind = Some(AuditKind::ApprovalAnswered);
        answered.approval =
            Some(json!({"id": id, "state": "approved", "by": label(approver), "reason": reason}));
        answered.decision = Some(decision.clone());
        self.audit.append(answered).await?;
        if let Decision::Deny { reason, .. } = &decision {
            return self
                .refuse(
                    self.entry(&req),
                    "policy",
                    ErrorKind::Denied,
                    format!("approved, but policy now denies it: {reason}"),
                    Some(decision.clone()),
                )
                .await;
        }
        let plan = self.registry.dry_run(&call).await.map_err(Error::Tool)?;
        let approval = json!({"id": id, "approved_by": label(approver)});
        self.execute(
            self.entry(&req),
            &principal,
            &call,
            decision,
            plan,
            Some(approval),
        )
        .await
    }

    /// Denies a pending request; it can never run.
    pub async fn deny(
        &self,
        id: &str,
        approver: &Principal,
        reason: Option<&str>,
    ) -> Result<Approval> {
        let a = self.approvals.get(id).await?;
        self.check_answerable(&a, approver).await?;
        let now = self.clock.now();
        if !self
            .approvals
            .answer(id, ApprovalState::Denied, &label(approver), now, reason)
            .await?
        {
            return Err(Error::Approval(format!(
                "approval {id} was answered meanwhile"
            )));
        }
        self.audit
            .append(AuditEntry {
                at: now,
                kind: Some(AuditKind::ApprovalAnswered),
                tool: Some(a.tool.clone()),
                args: Some(a.args.clone()),
                approval: Some(
                    json!({"id": id, "state": "denied", "by": label(approver), "reason": reason}),
                ),
                ..Default::default()
            })
            .await?;
        self.approvals.get(id).await
    }

    /// Expired requests are marked so and refused; only operators may answer, and never
    /// their own request.
    async fn check_answerable(&self, a: &Approval, approver: &Principal) -> Result<()> {
        if a.state != ApprovalState::Pending {
            return Err(Error::Approval(format!(
                "approval {} is already {:?}",
                a.id, a.state
            )));
        }
        let now = self.clock.now();
        if a.is_expired(now) {
            self.approvals
                .answer(
                    &a.id,
                    ApprovalState::Expired,
                    "steward",
                    now,
                    Some("expired"),
                )
                .await?;
            self.audit
                .append(AuditEntry {
                    at: now,
                    kind: Some(AuditKind::ApprovalAnswered),
                    tool: Some(a.tool.clone()),
                    approval: Some(json!({"id": a.id, "state": "expired"})),
                    ..Default::default()
                })
                .await?;
            return Err(Error::Approval(format!(
                "approval {} expired; propose the call again",
                a.id
            )));
        }
        if approver.kind != PrincipalKind::Operator {
            return Err(Error::Approval(format!(
                "{} may not answer approvals; only operators may",
                label(approver)
            )));
        }
        if label(approver) == a.principal {
            return Err(Error::Approval(format!(
                "{} proposed this call and cannot approve it; another operator must",
                label(approver)
            )));
        }
        Ok(())
    }

    fn vet(&self, req: &Request, call: &Call) -> Decision {
        let hour_utc = hour_utc(self.clock.now());
        self.policies.vet(&VetRequest {
            principal: &req.principal,
            call,
            origin: req.origin,
            untrusted_text: req.untrusted_text,
            hour_utc,
        })
    }

    async fn request_approval(
        &self,
        req: &Request,
        call: &Call,
        plan: &Plan,
        reason: &str,
        policies: &[String],
    ) -> Result<Approval> {
        let now = self.clock.now();
        let args = call.args_json();
        let approval = Approval {
            id: format!("ap-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            tool: call.tool().to_string(),
            args_hash: args_hash(call.tool(), &args),
            args,
            principal: label(&req.principal),
            origin: serde_json::to_value(req.origin)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            intent_text: req.intent_text.clone(),
            untrusted: req.untrusted_text,
            reason: reason.to_string(),
            policies: policies.to_vec(),
            plan: json!(plan),
            approvers: "operator".into(),
            requested_at: now,
            expires_at: Timestamp(now.0 + self.settings.approval_ttl_ms),
            state: ApprovalState::Pending,
            answered_by: None,
            answered_at: None,
            answer_reason: None,
        };
        self.approvals.insert(&approval).await?;
        Ok(approval)
    }

    async fn execute(
        &self,
        base: AuditEntry,
        principal: &Principal,
        call: &Call,
        decision: Decision,
        plan: Plan,
        approval: Option<Value>,
    ) -> Result<Outcome> {
        let target = target_of(call);
        let _permit =
            match self
                .guards
                .admit(principal, call, target.as_deref(), self.clock.now().0)
            {
                Ok(p) => p,
                Err(refusal) => {
                    return self
                        .refuse(
                            base,
                            "guard",
                            ErrorKind::Denied,
                            refusal.to_string(),
                            Some(decision),
                        )
                        .await
                }
            };
        let _executing = self.audit.executing().await?;
        let mut begin = base.clone();
        begin.kind = Some(AuditKind::ExecBegin);
        begin.decision = Some(decision.clone());
        begin.plan = Some(json!(plan));
        begin.approval = approval;
        let begin = self.audit.append(begin).await?;
        let started = Instant::now();
        let result = self.registry.execute(call).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let mut end = base;
        end.at = self.clock.now();
        end.kind = Some(AuditKind::ExecEnd);
        end.refers_to = Some(begin.seq);
        end.duration_ms = Some(duration_ms);
        end.outcome = Some(match &result {
            Ok(done) => {
                json!({"ok": true, "summary": done.summary, "changed": done.changed, "output": done.output})
            }
            Err(e) => json!({"ok": false, "kind": e.kind, "message": e.message}),
        });
        self.audit.append(end).await?;
        Ok(match result {
            Ok(done) => Outcome::Done {
                done,
                decision,
                duration_ms,
            },
            Err(e) => Outcome::Failed {
                kind: e.kind,
                message: e.message,
                decision,
                duration_ms,
            },
        })
    }

    async fn refuse(
        &self,
        mut entry: AuditEntry,
        stage: &'static str,
        kind: ErrorKind,
        message: String,
        decision: Option<Decision>,
    ) -> Result<Outcome> {
        entry.kind = Some(AuditKind::Refused);
        entry.decision = decision.clone();
        entry.outcome = Some(json!({"stage": stage, "kind": kind, "message": message}));
        self.audit.append(entry).await?;
        Ok(Outcome::Refused {
            stage,
            kind,
            message,
            decision,
        })
    }

    fn entry(&self, req: &Request) -> AuditEntry {
        AuditEntry {
            at: self.clock.now(),
            actor: Some(actor_of(&req.principal)),
            origin: Some(req.origin),
            intent_text: req.intent_text.clone(),
            tool: Some(req.tool.clone()),
            args: Some(req.args.clone()),
            ..Default::default()
        }
    }
}

/// The hour of the day (UTC) policies see in `context.hour`.
pub fn hour_utc(at: Timestamp) -> u8 {
    (at.0.rem_euclid(86_400_000) / 3_600_000) as u8
}

impl From<ToolError> for Error {
    fn from(e: ToolError) -> Self {
        Error::Tool(e)
    }
}
