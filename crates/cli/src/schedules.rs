//! What the scheduler of `steward serve` needs from the platform: the list of databases a
//! `for_each = "database"` schedule runs over, and backup retention after a run that took
//! and verified a backup. Retention is audited like a call: a begin with what it will keep
//! and remove, then an end with what it removed.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use steward_agent::incidents::{Incident, IncidentStatus, TimelineKind};
use steward_agent::triggers::schedule::{Run, ScheduleHost};
use steward_audit::AuditLog;
use steward_exec::backup::retention::{self, Keep};
use steward_exec::backup::target;
use steward_exec::env::Env;
use steward_protocol::{Actor, AuditEntry, AuditKind, Origin};
use steward_tools::Clock;

/// The name retention's audit records carry as their tool.
pub const RETENTION: &str = "backup_retention";

#[derive(Debug)]
pub struct PlatformSchedules {
    pub env: Arc<Env>,
    pub audit: Arc<AuditLog>,
    pub clock: Arc<dyn Clock>,
    pub keep: Keep,
    /// `backup_targets`: the databases `for_each = "database"` runs over; empty: all.
    pub only: Vec<String>,
}

#[async_trait]
impl ScheduleHost for PlatformSchedules {
    async fn expand(&self, for_each: &str) -> Result<Vec<String>, String> {
        match for_each {
            "database" if !self.only.is_empty() => Ok(self.only.clone()),
            "database" => target::all(&self.env).await.map_err(|e| e.to_string()),
            other => Err(format!(
                "for_each {other:?} is not something Steward can list"
            )),
        }
    }

    /// Retention runs after a run whose every step succeeded and whose last step was
    /// `db_verify_backup`: the backup it took is proven restorable.
    async fn finished(&self, run: &Run, incident: &Incident) {
        let Some(target) = &run.target else {
            return;
        };
        let last_step = incident
            .timeline
            .iter()
            .rev()
            .find(|t| t.kind == TimelineKind::StepFinished)
            .and_then(|t| t.tool.as_deref());
        if incident.status != IncidentStatus::Resolved || last_step != Some("db_verify_backup") {
            return;
        }
        if let Err(e) = self.retain(run, target).await {
            tracing::error!(target = %target, error = %e, "backup retention failed");
        }
    }
}

impl PlatformSchedules {
    async fn retain(&self, run: &Run, target: &str) -> anyhow::Result<()> {
        let args = json!({"target": target, "keep_daily": self.keep.daily, "keep_weekly": self.keep.weekly});
        let entry = |kind, refers_to, plan, outcome| AuditEntry {
            at: self.clock.now(),
            kind: Some(kind),
            actor: Some(Actor::Service {
                name: format!("schedule:{}", run.rule),
            }),
            origin: Some(Origin::Schedule),
            tool: Some(RETENTION.into()),
            args: Some(args.clone()),
            plan,
            outcome,
            refers_to,
            ..AuditEntry::default()
        };
        let decision = match retention::decide(&self.env, target, self.keep) {
            Ok(d) => d,
            Err(e) => {
                // Nothing is removed; the refusal is on record.
                self.audit
                    .append(entry(
                        AuditKind::Refused,
                        None,
                        None,
                        Some(json!({"ok": false, "message": e.to_string()})),
                    ))
                    .await?;
                return Err(e.into());
            }
        };
        if decision.remove.is_empty() {
            return Ok(());
        }
        let begin = self
            .audit
            .append(entry(
                AuditKind::ExecBegin,
                None,
                Some(json!(decision)),
                None,
            ))
            .await?;
        let outcome = match retention::remove(&self.env, target, &decision) {
            Ok(removed) => {
                tracing::info!(target = %target, removed = removed.len(), kept = decision.keep.len(), "backup retention applied");
                json!({"ok": true, "removed": removed, "kept": decision.keep})
            }
            Err(e) => json!({"ok": false, "message": e.to_string()}),
        };
        self.audit
            .append(entry(
                AuditKind::ExecEnd,
                Some(begin.seq),
                None,
                Some(outcome),
            ))
            .await?;
        Ok(())
    }
}
