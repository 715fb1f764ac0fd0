//! The one request path every way into Steward goes through:
//! validate → vet (policy, guards) → dry-run → approve → execute → audit.
//!
//! The orchestrator sees executors only through [`Registry`] (the `Executor` trait); the
//! binary wires the concrete ones in. Every outcome, refusals included, is appended to the
//! audit log; an execution is bracketed by `ExecBegin`/`ExecEnd`, so a crash in between is
//! visible as an open record and reconciled at start-up.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};
use steward_audit::AuditLog;
use steward_policy::{target_of, ApproveRequest, Guards, Permit, PolicySet, Principal, VetRequest};
use steward_protocol::{AuditEntry, AuditKind, Decision, Origin, Timestamp};
use steward_tools::{Call, Clock, Done, ErrorKind, Plan, Registry, ToolError};

use crate::approvals::{Approval, ApprovalState, ApprovalStore};
use crate::clip;
use crate::meter::{Meter, Stage};
use crate::principal::{actor_of, label, label_of_actor};
use crate::seal::Sealer;
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
    sealer: Sealer,
    clock: Arc<dyn Clock>,
    settings: Settings,
    meter: OnceLock<Arc<dyn Meter>>,
}

/// The two answers a person can give to an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Approve,
    Deny,
}

impl Answer {
    fn verb(self) -> &'static str {
        match self {
            Answer::Approve => "approve",
            Answer::Deny => "deny",
        }
    }
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
        let sealer = Sealer::open(audit.dir())?;
        Ok(Self {
            registry,
            policies,
            guards,
            audit,
            approvals,
            sealer,
            clock,
            settings,
            meter: OnceLock::new(),
        })
    }

    /// Reports every request's outcome and stage timings to `meter` from now on (once; a
    /// second meter is ignored).
    pub fn set_meter(&self, meter: Arc<dyn Meter>) {
        let _ = self.meter.set(meter);
    }

    /// Reports how long the planner took to propose one step.
    pub fn observe_plan(&self, seconds: f64) {
        if let Some(m) = self.meter.get() {
            m.timed(Stage::Plan, seconds);
        }
    }

    fn observe_end(&self, tool: &str, origin: Origin, outcome: &Result<Outcome>) {
        let Some(m) = self.meter.get() else {
            return;
        };
        let label = match outcome {
            Ok(o) => o.label(),
            Err(_) => "failed",
        };
        m.ended(tool, origin, label);
        if let Ok(Outcome::Done { duration_ms, .. } | Outcome::Failed { duration_ms, .. }) = outcome
        {
            m.timed(Stage::Execute, *duration_ms as f64 / 1000.0);
        }
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    pub fn approvals(&self) -> &ApprovalStore {
        &self.approvals
    }

    /// Expires the requests whose time ran out (each audited), then lists them: pending
    /// ones first, then (with `include_answered`) the most recent answered ones.
    pub async fn list_approvals(&self, include_answered: bool) -> Result<Vec<Approval>> {
        expire_due(&self.approvals, &self.audit, self.clock.now()).await?;
        self.approvals.list(include_answered).await
    }

    /// Runs one request down the path.
    /// What policy decides for `principal` calling `tool` with `args`, with nothing run,
    /// dry-run or audited. Views that are not tool calls (`/v1/status`, incidents, the
    /// audit verify) show their data to whoever may call the read tool showing the same.
    pub fn permits(
        &self,
        principal: &Principal,
        origin: Origin,
        tool: &str,
        args: Value,
    ) -> std::result::Result<Decision, ToolError> {
        let call = Call::parse(tool, args)?;
        Ok(self.policies.vet(&VetRequest {
            principal,
            call: &call,
            origin,
            untrusted_text: false,
            hour_utc: hour_utc(self.clock.now()),
        }))
    }

    pub async fn handle(&self, req: Request) -> Result<Outcome> {
        let (tool, origin) = (req.tool.clone(), req.origin);
        let outcome = self.handle_unmetered(req).await;
        self.observe_end(&tool, origin, &outcome);
        outcome
    }

    async fn handle_unmetered(&self, req: Request) -> Result<Outcome> {
        let base = self.entry(&req);
        // the door: no way in hands over more than this
        let size = req.args.to_string().len();
        if size > clip::MAX_ARGS_BYTES {
            let message = format!(
                "arguments are {size} bytes; at most {} are accepted",
                clip::MAX_ARGS_BYTES
            );
            return self
                .refuse(base, "validate", ErrorKind::InvalidArgs, message, None)
                .await;
        }
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
        self.execute(base, &req.principal, &call, decision, plan)
            .await
    }

    /// Approves a pending request and runs it. Policy decides who may approve
    /// (`Action::"approve"`, approvers.cedar: unknown principals and self-approval are
    /// denied unless a policy permits them); the row must still match its seal; an expired
    /// request never runs; the call is vetted again (a policy change since can deny it).
    /// A guard that stops the call leaves the request pending, to be approved again until
    /// it expires. Every refused attempt is audited and returned as [`Error::Refused`].
    pub async fn approve(
        &self,
        id: &str,
        approver: &Principal,
        reason: Option<&str>,
    ) -> Result<Outcome> {
        let (a, req, call) = self.answerable(id, approver, Answer::Approve).await?;
        let (tool, origin) = (req.tool.clone(), req.origin);
        let outcome = self.run_approved(id, approver, reason, a, req, call).await;
        self.observe_end(&tool, origin, &outcome);
        outcome
    }

    /// [`Self::approve`] once the request is known to be answerable by `approver`.
    async fn run_approved(
        &self,
        id: &str,
        approver: &Principal,
        reason: Option<&str>,
        a: Approval,
        req: Request,
        call: Call,
    ) -> Result<Outcome> {
        let principal = req.principal.clone();
        let mut base = self.entry(&req);
        base.approval = Some(json!({"id": id, "approved_by": label(approver)}));
        let decision = self.vet(&req, &call);
        if let Decision::Deny { reason: why, .. } = &decision {
            // It can never run as proposed; settle it so nobody keeps approving it.
            let note = clip::text(
                &format!("policy now denies it: {why}"),
                clip::MAX_MESSAGE_BYTES,
            );
            self.approvals
                .answer(
                    id,
                    ApprovalState::Denied,
                    "steward",
                    self.clock.now(),
                    Some(&note),
                )
                .await?;
            let message = format!("approved, but policy now denies it: {why}");
            return self
                .refuse(base, "policy", ErrorKind::Denied, message, Some(decision))
                .await;
        }
        let plan = match self.registry.dry_run(&call).await {
            Ok(p) => p,
            Err(e) => {
                return self
                    .refuse(base, "dry_run", e.kind, e.message, Some(decision))
                    .await
            }
        };
        let permit = match self.admit(&principal, &call) {
            Ok(p) => p,
            Err(why) => {
                let message = format!(
                    "{why}; approval {id} stays pending until {} and can be approved again",
                    steward_tools::when::format(a.expires_at)
                );
                return self
                    .refuse(base, "guard", ErrorKind::Denied, message, Some(decision))
                    .await;
            }
        };
        let now = self.clock.now();
        if !self
            .approvals
            .answer(id, ApprovalState::Executed, &label(approver), now, reason)
            .await?
        {
            let message = format!("approval {id} was answered meanwhile");
            return Err(self
                .refuse_answer(&a, approver, Answer::Approve, message)
                .await?);
        }
        let mut answered = self.entry(&req);
        answered.kind = Some(AuditKind::ApprovalAnswered);
        answered.approval =
            Some(json!({"id": id, "state": "approved", "by": label(approver), "reason": reason}));
        answered.decision = Some(decision.clone());
        self.audit.append(answered).await?;
        self.run(base, &call, decision, plan, permit).await
    }

    /// Denies a pending request for good, or withdraws it when its proposer answers. Who
    /// may deny someone else's request is the same policy decision as approving it.
    pub async fn deny(
        &self,
        id: &str,
        approver: &Principal,
        reason: Option<&str>,
    ) -> Result<Approval> {
        let (a, _, _) = self.answerable(id, approver, Answer::Deny).await?;
        let withdrawn = label(approver) == a.principal;
        let (state, verb) = if withdrawn {
            (ApprovalState::Withdrawn, "withdrawn")
        } else {
            (ApprovalState::Denied, "denied")
        };
        let now = self.clock.now();
        if !self
            .approvals
            .answer(id, state, &label(approver), now, reason)
            .await?
        {
            let message = format!("approval {id} was answered meanwhile");
            return Err(self
                .refuse_answer(&a, approver, Answer::Deny, message)
                .await?);
        }
        self.audit
            .append(AuditEntry {
                at: now,
                actor: Some(actor_of(approver)),
                kind: Some(AuditKind::ApprovalAnswered),
                tool: Some(a.tool.clone()),
                args: Some(a.args.clone()),
                approval: Some(
                    json!({"id": id, "state": verb, "by": label(approver), "reason": reason}),
                ),
                ..Default::default()
            })
            .await?;
        self.approvals.get(id).await
    }

    /// Loads a request and checks that `approver` may give `answer` to it now: it exists,
    /// is pending and unexpired (an expired one is marked so), matches its seal (to
    /// approve), and policy lets this principal answer it (a proposer may always withdraw
    /// their own). Each refusal is audited before it is returned.
    async fn answerable(
        &self,
        id: &str,
        approver: &Principal,
        answer: Answer,
    ) -> Result<(Approval, Request, Call)> {
        let a = match self.approvals.get(id).await {
            Ok(a) => a,
            Err(Error::NoSuchApproval(_)) => {
                let message = format!(
                    "no approval with id {:?}; `steward approvals` lists them",
                    clip::text(id, 80)
                );
                return Err(self.refuse_unknown(id, approver, answer, message).await?);
            }
            Err(e) => return Err(e),
        };
        let refuse = |message: String| self.refuse_answer(&a, approver, answer, message);
        if a.state != ApprovalState::Pending {
            let state = serde_json::to_value(a.state).unwrap_or_default();
            let message = format!(
                "approval {} is already {}{}; nothing to {}",
                a.id,
                state.as_str().unwrap_or("answered"),
                a.answered_by
                    .as_deref()
                    .map(|b| format!(" (by {b})"))
                    .unwrap_or_default(),
                answer.verb()
            );
            return Err(refuse(message).await?);
        }
        let now = self.clock.now();
        if a.is_expired(now) {
            expire_due(&self.approvals, &self.audit, now).await?;
            let message = format!("approval {} expired; propose the call again", a.id);
            return Err(refuse(message).await?);
        }
        if answer == Answer::Approve && !self.sealer.check(&a) {
            let message = format!(
                "approval {} is bound to other arguments than the ones stored now (its seal \
                 does not match the stored call); it cannot run. Propose the call again to \
                 get a new approval",
                a.id
            );
            return Err(refuse(message).await?);
        }
        let (principal, origin, call) = match self.stored_call(&a) {
            Ok(found) => found,
            Err(message) => return Err(refuse(message).await?),
        };
        let req = Request {
            principal,
            origin,
            intent_text: a.intent_text.clone(),
            untrusted_text: a.untrusted,
            tool: a.tool.clone(),
            args: a.args.clone(),
            dry_run_only: false,
        };
        let withdrawal = answer == Answer::Deny && label(approver) == a.principal;
        if !withdrawal {
            let decision = self.policies.vet_approve(&ApproveRequest {
                approver,
                requester: &req.principal,
                call: &call,
                origin,
                untrusted_text: a.untrusted,
                hour_utc: hour_utc(now),
            });
            if let Decision::Deny { reason, .. } = decision {
                let message = if label(approver) == a.principal {
                    format!(
                        "{} proposed this call and cannot approve it; another operator must \
                         (or deny it to withdraw it): {reason}",
                        label(approver)
                    )
                } else {
                    format!(
                        "{} may not {} approval {}: {reason}",
                        label(approver),
                        answer.verb(),
                        a.id
                    )
                };
                return Err(refuse(message).await?);
            }
        }
        Ok((a, req, call))
    }

    /// The proposer, origin and call a stored request holds; a message when any of them
    /// no longer reads (a damaged or forged row).
    fn stored_call(&self, a: &Approval) -> std::result::Result<(Principal, Origin, Call), String> {
        let principal = Principal::parse(&a.principal)
            .map_err(|e| format!("approval {}: its proposer does not read: {e}", a.id))?;
        let origin: Origin = serde_json::from_value(json!(a.origin))
            .map_err(|e| format!("approval {}: its origin does not read: {e}", a.id))?;
        let call = Call::parse(&a.tool, a.args.clone()).map_err(|e| {
            format!(
                "approval {}: its call is no longer valid: {}",
                a.id, e.message
            )
        })?;
        Ok((principal, origin, call))
    }

    /// Audits a refused answer to request `a` and returns the error to hand back.
    async fn refuse_answer(
        &self,
        a: &Approval,
        by: &Principal,
        answer: Answer,
        message: String,
    ) -> Result<Error> {
        let entry = AuditEntry {
            tool: Some(a.tool.clone()),
            args: Some(clip::args(&a.args)),
            ..Default::default()
        };
        self.audit_refused_answer(entry, &a.id, by, answer, message)
            .await
    }

    /// Audits an answer to a request id that does not exist.
    async fn refuse_unknown(
        &self,
        id: &str,
        by: &Principal,
        answer: Answer,
        message: String,
    ) -> Result<Error> {
        self.audit_refused_answer(
            AuditEntry::default(),
            &clip::text(id, 80),
            by,
            answer,
            message,
        )
        .await
    }

    async fn audit_refused_answer(
        &self,
        mut entry: AuditEntry,
        id: &str,
        by: &Principal,
        answer: Answer,
        message: String,
    ) -> Result<Error> {
        let message = clip::text(&message, clip::MAX_MESSAGE_BYTES);
        entry.at = self.clock.now();
        entry.actor = Some(actor_of(by));
        entry.kind = Some(AuditKind::Refused);
        entry.approval = Some(json!({"id": id, "attempt": answer.verb(), "by": label(by)}));
        entry.outcome =
            Some(json!({"stage": "approval", "kind": ErrorKind::Denied, "message": message}));
        self.audit.append(entry).await?;
        Ok(Error::Refused(message))
    }

    fn vet(&self, req: &Request, call: &Call) -> Decision {
        let started = Instant::now();
        let hour_utc = hour_utc(self.clock.now());
        let decision = self.policies.vet(&VetRequest {
            principal: &req.principal,
            call,
            origin: req.origin,
            untrusted_text: req.untrusted_text,
            hour_utc,
        });
        if let Some(m) = self.meter.get() {
            m.timed(Stage::Vet, started.elapsed().as_secs_f64());
        }
        decision
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
        let mut approval = Approval {
            id: format!("ap-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            tool: call.tool().to_string(),
            seal: String::new(),
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
        approval.seal = self.sealer.seal(&approval);
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
    ) -> Result<Outcome> {
        match self.admit(principal, call) {
            Ok(permit) => self.run(base, call, decision, plan, permit).await,
            Err(why) => {
                self.refuse(base, "guard", ErrorKind::Denied, why, Some(decision))
                    .await
            }
        }
    }

    /// Takes the guards' slot for a call (rate, blast radius, the target's lock), or says
    /// which guard refused.
    fn admit(&self, principal: &Principal, call: &Call) -> std::result::Result<Permit, String> {
        let target = target_of(call);
        self.guards
            .admit(principal, call, target.as_deref(), self.clock.now().0)
            .map_err(|refusal| refusal.to_string())
    }

    /// Runs an admitted call, bracketed by `ExecBegin`/`ExecEnd` records. `base` may carry
    /// the approval it runs under.
    async fn run(
        &self,
        base: AuditEntry,
        call: &Call,
        decision: Decision,
        plan: Plan,
        _permit: Permit,
    ) -> Result<Outcome> {
        let _executing = self.audit.executing().await?;
        let mut begin = base.clone();
        begin.kind = Some(AuditKind::ExecBegin);
        begin.decision = Some(decision.clone());
        begin.plan = Some(json!(plan));
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
        // A refusal never keeps more of the input than it needs to be recognised.
        let message = clip::text(&message, clip::MAX_MESSAGE_BYTES);
        entry.args = entry.args.as_ref().map(clip::args);
        entry.intent_text = entry
            .intent_text
            .as_deref()
            .map(|t| clip::text(t, clip::MAX_MESSAGE_BYTES));
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

/// Marks the requests whose time ran out as expired, each with an audit record.
pub async fn expire_due(
    approvals: &ApprovalStore,
    audit: &AuditLog,
    now: Timestamp,
) -> Result<usize> {
    let expired = approvals.expire_due(now).await?;
    for a in &expired {
        audit
            .append(AuditEntry {
                at: now,
                kind: Some(AuditKind::ApprovalAnswered),
                tool: Some(a.tool.clone()),
                approval: Some(json!({"id": a.id, "state": "expired"})),
                ..Default::default()
            })
            .await?;
    }
    Ok(expired.len())
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
