//! Climbing one incident's ladder: for each step, its gate, the call down the one request
//! path as the rule's principal, then its condition; approvals pause the climb.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use steward_policy::rules::{PlannedStep, Until};
use steward_policy::Principal;
use steward_protocol::{AuditKind, Origin};
use steward_tools::ErrorKind;

use super::conditions::{backoff, gate_holds, is_healthy, Stop};
use super::intake::Opened;
use super::Engine;
use crate::approvals::ApprovalState;
use crate::incidents::{IncidentStatus, TimelineEntry, TimelineKind};
use crate::orchestrator::expire_due;
use crate::{Error, Outcome, Request, Result};

/// Where a ladder starts.
#[derive(Debug, Clone)]
pub(super) enum Resume {
    /// From the first step (after checking the target is managed, and the debounce).
    Fresh,
    /// Step `step` finished with `result`: check its condition again, then go on.
    After { step: usize, result: Value },
    /// Step `step` waits for `approval`.
    Approval { step: usize, approval: String },
}

/// Whether the ladder goes on after a step.
enum Flow {
    Next(Option<Value>),
    Stop,
}

/// Who a ladder acts as and what it climbs.
struct Climb<'a> {
    incident: &'a str,
    rule: &'a str,
    principal: Principal,
    origin: Origin,
    steps: &'a [PlannedStep],
    cancel: &'a Stop,
}

impl Climb<'_> {
    fn request(&self, step: usize, tool: &str, args: &Value, dry_run_only: bool) -> Request {
        Request {
            principal: self.principal.clone(),
            origin: self.origin,
            intent_text: Some(format!(
                "incident {}, step {} of rule {}",
                self.incident,
                step + 1,
                self.rule
            )),
            // Arguments come only from the event's typed values (Rule::plan).
            untrusted_text: false,
            tool: tool.to_string(),
            args: args.clone(),
            dry_run_only,
        }
    }
}

/// A step's result as recorded: what a gate, a condition and a restart read.
fn result_of(out: &Outcome) -> Value {
    match out {
        Outcome::Done { done, .. } => json!({"status": "done", "ok": true,
            "summary": done.summary, "changed": done.changed, "output": done.output}),
        Outcome::Failed { kind, message, .. } => {
            json!({"status": "failed", "ok": false, "kind": kind, "message": message})
        }
        Outcome::Refused {
            stage,
            kind,
            message,
            ..
        } => json!({"status": "refused", "ok": false,
            "stage": stage, "kind": kind, "message": message}),
        Outcome::Planned { plan, .. } => json!({"status": "planned", "ok": false, "plan": plan}),
        Outcome::PendingApproval { approval, .. } => {
            json!({"status": "pending_approval", "ok": false, "approval": approval.id})
        }
    }
}

fn decision_of(out: &Outcome) -> Option<Value> {
    match out {
        Outcome::Refused { decision, .. } => decision.as_ref().map(|d| json!(d)),
        Outcome::Planned { decision, .. }
        | Outcome::PendingApproval { decision, .. }
        | Outcome::Done { decision, .. }
        | Outcome::Failed { decision, .. } => Some(json!(decision)),
    }
}

fn describe(step: usize, s: &PlannedStep) -> String {
    format!("step {} ({} {})", step + 1, s.tool, s.args)
}

impl Engine {
    /// Runs a ladder to its end, a cancellation or shutdown. An error of the engine itself
    /// (the store failing) closes the incident as failed if it still can.
    pub(super) async fn climb(self: &Arc<Self>, o: Opened, resume: Resume, cancel: Arc<Stop>) {
        if let Err(e) = self.climb_from(&o, resume, &cancel).await {
            tracing::error!(incident = %o.incident, error = %e, "ladder failed");
            let reason = format!("the trigger engine failed: {e}");
            if let Err(e) = self
                .close(
                    &o.incident,
                    IncidentStatus::Failed,
                    &reason,
                    Some("critical"),
                )
                .await
            {
                tracing::error!(incident = %o.incident, error = %e, "could not close the incident");
            }
        }
    }

    async fn climb_from(&self, o: &Opened, resume: Resume, cancel: &Stop) -> Result<()> {
        let Some(rule) = self.rulebook.get(&o.rule) else {
            let reason = format!("rule {} is not in the rulebook", o.rule);
            return self
                .close(
                    &o.incident,
                    IncidentStatus::Failed,
                    &reason,
                    Some("warning"),
                )
                .await;
        };
        let planned = match rule.plan(&o.event) {
            Ok(p) => p,
            Err(e) => {
                let reason = format!("the rule could not be planned for this event: {e}");
                return self
                    .close(
                        &o.incident,
                        IncidentStatus::Failed,
                        &reason,
                        Some("warning"),
                    )
                    .await;
            }
        };
        let c = Climb {
            incident: &o.incident,
            rule: &o.rule,
            principal: rule.principal(),
            origin: rule.origin(),
            steps: &planned.steps,
            cancel,
        };
        let (mut next, mut previous) = match resume {
            Resume::Fresh => {
                if !self.managed(&c).await? {
                    return Ok(());
                }
                let due = o.event.at.0 + rule.for_ms - self.clock.now().0;
                if due > 0 && !self.wait(&c, Duration::from_millis(due as u64)).await {
                    return Ok(());
                }
                (0, None)
            }
            Resume::After { step, result } => match self.after_step(&c, step, &result).await? {
                Flow::Next(prev) => (step + 1, prev),
                Flow::Stop => return Ok(()),
            },
            Resume::Approval { step, approval } => {
                let Some(result) = self.await_approval(&c, step, &approval, 1).await? else {
                    return Ok(());
                };
                match self.after_step(&c, step, &result).await? {
                    Flow::Next(prev) => (step + 1, prev),
                    Flow::Stop => return Ok(()),
                }
            }
        };
        while next < c.steps.len() {
            match self.run_step(&c, next, previous.as_ref()).await? {
                Flow::Next(prev) => previous = prev,
                Flow::Stop => return Ok(()),
            }
            next += 1;
        }
        if self.stopped(&c) {
            return Ok(());
        }
        match c.steps.last() {
            Some(last) if last.until.is_some() => {
                let reason = format!(
                    "every step ran and the last one's condition never held ({})",
                    describe(c.steps.len() - 1, last)
                );
                self.close(
                    c.incident,
                    IncidentStatus::Unresolved,
                    &reason,
                    Some("critical"),
                )
                .await
            }
            _ => {
                let reason = format!("every step ran ({} step(s))", c.steps.len());
                self.close(c.incident, IncidentStatus::Resolved, &reason, Some("info"))
                    .await
            }
        }
    }

    fn stopped(&self, c: &Climb<'_>) -> bool {
        c.cancel.is_set() || self.stopping.is_set()
    }

    /// Sleeps unless cancelled or shutting down first; false when stopped.
    async fn wait(&self, c: &Climb<'_>, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => !self.stopped(c),
            () = c.cancel.wait() => false,
            () = self.stopping.wait() => false,
        }
    }

    /// Dry-runs the first step: a target Steward does not manage (NotFound) makes the
    /// incident `unmatched`, and a step policy refuses makes it `refused`, before anything
    /// runs. Other dry-run failures are left to the step itself.
    async fn managed(&self, c: &Climb<'_>) -> Result<bool> {
        let Some(first) = c.steps.first() else {
            return Ok(true);
        };
        let out = self
            .orchestrator
            .handle(c.request(0, &first.tool, &first.args, true))
            .await?;
        let Outcome::Refused {
            stage,
            kind,
            message,
            decision,
        } = &out
        else {
            return Ok(true);
        };
        if *kind == ErrorKind::NotFound {
            let reason = format!("not a target Steward manages: {message}");
            self.close(c.incident, IncidentStatus::Unmatched, &reason, None)
                .await?;
            return Ok(false);
        }
        if matches!(*stage, "policy" | "validate") {
            let mut d = TimelineEntry::new(self.clock.now(), TimelineKind::Decision)
                .step(0, &first.tool)
                .message("dry-run before the first step");
            d.decision = decision.as_ref().map(|d| json!(d));
            d.outcome = Some(result_of(&out));
            self.incidents.note(c.incident, &d).await?;
            let reason = format!("{} refused ({stage}): {message}", describe(0, first));
            self.close(
                c.incident,
                IncidentStatus::Refused,
                &reason,
                Some("warning"),
            )
            .await?;
            return Ok(false);
        }
        Ok(true)
    }

    async fn run_step(&self, c: &Climb<'_>, i: usize, previous: Option<&Value>) -> Result<Flow> {
        if self.stopped(c) {
            return Ok(Flow::Stop);
        }
        let step = &c.steps[i];
        if let Some(gate) = &step.when {
            if let Err(why) = gate_holds(gate, previous) {
                let reason = format!(
                    "{} not run: its condition was not met: {why}",
                    describe(i, step)
                );
                self.close(
                    c.incident,
                    IncidentStatus::Unresolved,
                    &reason,
                    Some("warning"),
                )
                .await?;
                return Ok(Flow::Stop);
            }
        }
        let args = match steward_policy::rules::fill_previous(&step.args, previous) {
            Ok(args) => args,
            Err(why) => {
                let reason = format!("{} cannot run: {why}", describe(i, step));
                self.close(
                    c.incident,
                    IncidentStatus::Failed,
                    &reason,
                    Some("critical"),
                )
                .await?;
                return Ok(Flow::Stop);
            }
        };
        let now = self.clock.now();
        if !self
            .incidents
            .step_started(c.incident, i, &step.tool, &args, now)
            .await?
        {
            let reason = format!(
                "{} was already recorded as started; it never runs twice",
                describe(i, step)
            );
            self.close(
                c.incident,
                IncidentStatus::Interrupted,
                &reason,
                Some("warning"),
            )
            .await?;
            return Ok(Flow::Stop);
        }
        let out = self
            .orchestrator
            .handle(c.request(i, &step.tool, &args, false))
            .await?;
        let mut d =
            TimelineEntry::new(self.clock.now(), TimelineKind::Decision).step(i, &step.tool);
        d.decision = decision_of(&out);
        self.incidents.note(c.incident, &d).await?;
        let result = match &out {
            Outcome::PendingApproval { approval, .. } => {
                let from_seq = self.orchestrator.audit().head_seq().await.max(1);
                self.incidents
                    .step_waits(c.incident, i, &approval.id)
                    .await?;
                let message = format!(
                    "incident {}: {} waits for approval {}: run `steward approve {}` (or \
                     `steward deny {}`); it expires at {}",
                    c.incident,
                    describe(i, step),
                    approval.id,
                    approval.id,
                    approval.id,
                    steward_tools::when::format(approval.expires_at)
                );
                self.notify(c.incident, "warning", &message).await?;
                self.incidents
                    .set_active(c.incident, IncidentStatus::WaitingApproval)
                    .await?;
                match self.await_approval(c, i, &approval.id, from_seq).await? {
                    Some(result) => return self.after_step(c, i, &result).await,
                    None => return Ok(Flow::Stop),
                }
            }
            other => result_of(other),
        };
        self.finish_step(c, i, &result).await?;
        if let Outcome::Refused { stage, message, .. } = &out {
            let reason = format!("{} refused ({stage}): {message}", describe(i, step));
            self.close(
                c.incident,
                IncidentStatus::Refused,
                &reason,
                Some("warning"),
            )
            .await?;
            return Ok(Flow::Stop);
        }
        self.after_step(c, i, &result).await
    }

    async fn finish_step(&self, c: &Climb<'_>, i: usize, result: &Value) -> Result<()> {
        let now = self.clock.now();
        self.incidents
            .step_finished(c.incident, i, result, now)
            .await?;
        let mut e = TimelineEntry::new(now, TimelineKind::StepFinished).step(i, &c.steps[i].tool);
        let mut summary = result.clone();
        if let Some(o) = summary.as_object_mut() {
            o.remove("output");
        }
        e.outcome = Some(summary);
        self.incidents.note(c.incident, &e).await
    }

    /// Checks a finished step's condition: resolved, next step, or failed.
    async fn after_step(&self, c: &Climb<'_>, i: usize, result: &Value) -> Result<Flow> {
        let step = &c.steps[i];
        let ok = result["ok"] == json!(true);
        let output = result.get("output").cloned();
        match &step.until {
            None if ok => Ok(Flow::Next(output)),
            None => {
                let why = result["message"].as_str().unwrap_or("no outcome recorded");
                let reason = format!("{} failed: {why}", describe(i, step));
                self.close(
                    c.incident,
                    IncidentStatus::Failed,
                    &reason,
                    Some("critical"),
                )
                .await?;
                Ok(Flow::Stop)
            }
            Some(Until::Done) if ok => {
                let reason = format!("{} done", describe(i, step));
                self.close(c.incident, IncidentStatus::Resolved, &reason, Some("info"))
                    .await?;
                Ok(Flow::Stop)
            }
            Some(Until::Done) => {
                let mut e = TimelineEntry::new(self.clock.now(), TimelineKind::UntilCheck)
                    .step(i, &step.tool)
                    .message("not done: the call did not succeed");
                e.outcome = Some(json!({"holds": false}));
                self.incidents.note(c.incident, &e).await?;
                Ok(Flow::Next(output))
            }
            Some(Until::Healthy { within_ms }) => {
                let Some(service) = step.args["service"].as_str() else {
                    let reason = format!(
                        "{} has `until = healthy` but no service argument to check",
                        describe(i, step)
                    );
                    self.close(c.incident, IncidentStatus::Failed, &reason, Some("warning"))
                        .await?;
                    return Ok(Flow::Stop);
                };
                match self.poll_healthy(c, i, service, *within_ms).await? {
                    None => Ok(Flow::Stop),
                    Some(true) => {
                        let reason = format!("{service} is healthy after {}", describe(i, step));
                        self.close(c.incident, IncidentStatus::Resolved, &reason, Some("info"))
                            .await?;
                        Ok(Flow::Stop)
                    }
                    Some(false) => Ok(Flow::Next(output)),
                }
            }
        }
    }

    /// Polls `service_status` (an audited read) with backoff until healthy or `within_ms`
    /// is up. `None` when cancelled or shutting down.
    async fn poll_healthy(
        &self,
        c: &Climb<'_>,
        i: usize,
        service: &str,
        within_ms: i64,
    ) -> Result<Option<bool>> {
        let deadline = Instant::now() + Duration::from_millis(within_ms.max(0) as u64);
        let args = json!({"service": service});
        for n in 0.. {
            if self.stopped(c) {
                return Ok(None);
            }
            let out = self
                .orchestrator
                .handle(c.request(i, "service_status", &args, false))
                .await?;
            let (healthy, refused) = match &out {
                Outcome::Done { done, .. } => (is_healthy(&done.output), false),
                Outcome::Refused { .. } => (false, true),
                _ => (false, false),
            };
            let mut e = TimelineEntry::new(self.clock.now(), TimelineKind::UntilCheck)
                .step(i, "service_status");
            let mut summary = result_of(&out);
            if let Some(o) = summary.as_object_mut() {
                o.remove("output");
            }
            e.outcome = Some(json!({"healthy": healthy, "check": summary}));
            self.incidents.note(c.incident, &e).await?;
            if healthy {
                return Ok(Some(true));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if refused || left.is_zero() {
                return Ok(Some(false));
            }
            let pause = backoff(
                n,
                self.settings.health_poll_initial,
                self.settings.health_poll_cap,
            );
            if !self.wait(c, pause.min(left)).await {
                return Ok(None);
            }
        }
        Ok(Some(false))
    }

    /// Polls an approval until it is answered. Executed: the approved call's outcome from
    /// the audit log (scanned from `from_seq`), recorded as the step's result. Denied,
    /// withdrawn or expired: the incident is cancelled. A cancelled ladder withdraws its
    /// request. `None` when the ladder stops here.
    async fn await_approval(
        &self,
        c: &Climb<'_>,
        i: usize,
        id: &str,
        from_seq: u64,
    ) -> Result<Option<Value>> {
        let approvals = self.orchestrator.approvals();
        loop {
            let a = match approvals.get(id).await {
                Ok(a) => a,
                Err(Error::NoSuchApproval(_)) => {
                    let reason = format!("approval {id} of step {} is gone", i + 1);
                    self.close(c.incident, IncidentStatus::Failed, &reason, Some("warning"))
                        .await?;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            match a.state {
                ApprovalState::Pending if a.is_expired(self.clock.now()) => {
                    expire_due(approvals, self.orchestrator.audit(), self.clock.now()).await?;
                }
                ApprovalState::Pending => {
                    if !self.wait(c, self.settings.approval_poll).await {
                        if c.cancel.is_set() {
                            self.withdraw(c, id).await;
                        }
                        return Ok(None);
                    }
                }
                ApprovalState::Executed => {
                    let Some(result) = self.approved_outcome(c, id, from_seq).await? else {
                        return Ok(None);
                    };
                    self.finish_step(c, i, &result).await?;
                    self.incidents
                        .set_active(c.incident, IncidentStatus::Open)
                        .await?;
                    return Ok(Some(result));
                }
                state => {
                    let state = json!(state);
                    let reason = format!(
                        "approval {id} for step {} was {}{}{}",
                        i + 1,
                        state.as_str().unwrap_or("answered"),
                        a.answered_by
                            .map(|b| format!(" by {b}"))
                            .unwrap_or_default(),
                        a.answer_reason
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    );
                    self.close(c.incident, IncidentStatus::Cancelled, &reason, Some("info"))
                        .await?;
                    return Ok(None);
                }
            }
        }
    }

    /// The approved call's `ExecEnd` in the audit log, waited for (the approver's process
    /// writes it when the call returns). Not found in time: treated as done.
    async fn approved_outcome(
        &self,
        c: &Climb<'_>,
        id: &str,
        from_seq: u64,
    ) -> Result<Option<Value>> {
        let audit = self.orchestrator.audit();
        let give_up = Instant::now() + self.settings.approved_outcome_wait;
        let mut seq = from_seq;
        loop {
            loop {
                let page = audit.records(seq, 500).await?;
                let Some(last) = page.last() else { break };
                seq = last.seq + 1;
                for r in &page {
                    let ours = r.entry.approval.as_ref().and_then(|a| a["id"].as_str()) == Some(id);
                    if ours && r.entry.kind == Some(AuditKind::ExecEnd) {
                        let o = r.entry.outcome.clone().unwrap_or_default();
                        return Ok(Some(json!({
                            "status": "approved", "ok": o["ok"] == json!(true),
                            "summary": o["summary"], "message": o["message"],
                            "output": o["output"], "approval": id, "audit_seq": r.seq,
                        })));
                    }
                }
            }
            if Instant::now() >= give_up {
                return Ok(Some(
                    json!({"status": "approved", "ok": true, "approval": id,
                    "summary": "approved and executed; its outcome was not found in the audit log"}),
                ));
            }
            if !self.wait(c, self.settings.approval_poll).await {
                return Ok(None);
            }
        }
    }

    /// Takes back a pending request when its incident was resolved meanwhile.
    async fn withdraw(&self, c: &Climb<'_>, id: &str) {
        let reason = Some("the incident was resolved by its source");
        if let Err(e) = self.orchestrator.deny(id, &c.principal, reason).await {
            tracing::warn!(incident = %c.incident, approval = %id, error = %e, "could not withdraw the approval");
        }
    }
}
