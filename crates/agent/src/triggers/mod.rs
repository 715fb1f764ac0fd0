//! The trigger engine: turns events into incidents and climbs each rule's ladder down the
//! one request path, as the rule's principal with the rule's origin.
//!
//! - [`Engine::submit`] decides in memory what each event becomes (a new incident, a
//!   repeat, a throttled event, a resolution, an unmatched event), writes the decisions of a
//!   whole batch of requests in one transaction, then starts the new ladders on tasks. No
//!   wait comes before a ladder's first step other than the rule's own `for` debounce.
//! - A ladder ([`ladder`]) records each step before it runs, so a step never runs twice;
//!   [`Engine::start`] resumes what a previous process left open.

mod conditions;
mod intake;
mod ladder;
pub mod schedule;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use steward_audit::Store;
use steward_policy::rules::Rulebook;
use steward_protocol::{Event, Timestamp};
use steward_tools::Clock;
use tokio::task::JoinSet;

use crate::inbox::{Inbox, NewNotification};
use crate::incidents::{
    Batch, Incident, IncidentStatus, IncidentStore, TimelineEntry, TimelineKind,
};
use crate::{Error, Orchestrator, Result};
use conditions::Stop;
use intake::{Intake, Opened};
use ladder::Resume;

/// The events of one request (one HTTP post), as the server hands them over.
#[derive(Debug, Clone)]
pub struct Submission {
    pub request_id: String,
    pub events: Vec<Event>,
}

/// What became of one submission at once; ladders go on afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub request_id: String,
    pub events: usize,
    /// Every incident the events opened or counted toward.
    pub incidents: Vec<String>,
    /// Firing events that started nothing: repeats of a firing key, or events throttled
    /// into their group's incident.
    pub repeats: usize,
    /// Events reporting their key resolved (each closes the key's active incidents).
    pub resolved: usize,
    /// Firing events no rule answers.
    pub unmatched: usize,
}

/// How a ladder waits. The defaults are the documented ones; tests shorten them.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// First wait between health checks of `until = "healthy within …"`; it doubles.
    pub health_poll_initial: Duration,
    pub health_poll_cap: Duration,
    /// How often a waiting ladder looks at its approval.
    pub approval_poll: Duration,
    /// How long to wait for the outcome of an approved call in the audit log.
    pub approved_outcome_wait: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            health_poll_initial: Duration::from_secs(1),
            health_poll_cap: Duration::from_secs(5),
            approval_poll: Duration::from_secs(1),
            approved_outcome_wait: Duration::from_secs(600),
        }
    }
}

/// Running ladders: their tasks and the signal that cancels each one.
#[derive(Debug, Default)]
struct Ladders {
    tasks: JoinSet<()>,
    cancels: HashMap<String, Arc<Stop>>,
}

/// The trigger engine of `steward serve`.
#[derive(Debug)]
pub struct Engine {
    orchestrator: Arc<Orchestrator>,
    rulebook: Rulebook,
    incidents: IncidentStore,
    inbox: Inbox,
    clock: Arc<dyn Clock>,
    settings: EngineSettings,
    intake: Mutex<Intake>,
    /// One submit at a time: decisions and their transaction stay in order.
    submitting: tokio::sync::Mutex<()>,
    ladders: Mutex<Ladders>,
    stopping: Stop,
}

/// How long a restarted engine looks back for throttle windows at least.
const RESTORE_LOOKBACK_MS: i64 = 3600 * 1000;

impl Engine {
    /// Loads open incidents and resumes or closes each: one between steps goes on (its last
    /// step's condition is checked again), one waiting for approval polls again, and one
    /// whose step was started but never finished is closed as `interrupted` (whether the
    /// call ran is unknown, so it is never run again).
    pub async fn start(
        orchestrator: Arc<Orchestrator>,
        rulebook: Rulebook,
        store: Store,
        inbox: Inbox,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Engine>> {
        Self::start_with(
            orchestrator,
            rulebook,
            store,
            inbox,
            clock,
            EngineSettings::default(),
        )
        .await
    }

    /// [`Engine::start`] with other wait settings.
    pub async fn start_with(
        orchestrator: Arc<Orchestrator>,
        rulebook: Rulebook,
        store: Store,
        inbox: Inbox,
        clock: Arc<dyn Clock>,
        settings: EngineSettings,
    ) -> Result<Arc<Engine>> {
        let incidents = IncidentStore::new(store);
        let now = clock.now();
        let lookback = rulebook
            .rules
            .iter()
            .filter_map(|r| r.throttle.as_ref().map(|t| t.once_within_ms))
            .max()
            .unwrap_or(0)
            .max(RESTORE_LOOKBACK_MS);
        let recent = incidents.recent(Timestamp(now.0 - lookback)).await?;
        let intake = Intake::restore(&rulebook, &recent, now);
        let engine = Arc::new(Engine {
            orchestrator,
            rulebook,
            incidents,
            inbox,
            clock,
            settings,
            intake: Mutex::new(intake),
            submitting: tokio::sync::Mutex::new(()),
            ladders: Mutex::new(Ladders::default()),
            stopping: Stop::default(),
        });
        for incident in engine.incidents.active().await? {
            engine.resume(incident).await?;
        }
        Ok(engine)
    }

    async fn resume(self: &Arc<Self>, incident: Incident) -> Result<()> {
        let id = incident.id.clone();
        let Some(rule) = incident
            .rule
            .clone()
            .filter(|r| self.rulebook.get(r).is_some())
        else {
            let reason = format!(
                "rule {} is no longer in the rulebook; the ladder cannot go on",
                incident.rule.as_deref().unwrap_or("(none)")
            );
            return self
                .close(&id, IncidentStatus::Failed, &reason, Some("warning"))
                .await;
        };
        let steps = self.incidents.steps(&id).await?;
        let resume = match steps.last() {
            None => Resume::Fresh,
            Some(s) if !s.finished => match &s.approval_id {
                Some(approval) => Resume::Approval {
                    step: s.step,
                    approval: approval.clone(),
                },
                None => {
                    let reason = format!(
                        "step {} was running when Steward stopped; whether it ran is unknown \
                         (check the target and the audit log), so it is not run again",
                        s.step + 1
                    );
                    return self
                        .close(&id, IncidentStatus::Interrupted, &reason, Some("warning"))
                        .await;
                }
            },
            Some(s) => Resume::After {
                step: s.step,
                result: s.result.clone().unwrap_or_default(),
            },
        };
        tracing::info!(incident = %id, rule = %rule, resume = ?resume, "resuming an incident");
        self.spawn(
            Opened {
                incident: id,
                rule,
                event: incident.event,
            },
            resume,
        );
        Ok(())
    }

    /// Records the events of several requests durably in one transaction, then starts the
    /// ladders of the incidents they opened and returns one [`Accepted`] per submission, in
    /// order. Repeats of a firing key only bump a counter; a resolved event closes the key's
    /// active incidents and cancels their pending steps (a running call finishes; nothing
    /// after it starts).
    pub async fn submit(self: &Arc<Self>, mut batch: Vec<Submission>) -> Result<Vec<Accepted>> {
        if self.stopping.is_set() {
            return Err(Error::Triggers(
                "the trigger engine is shutting down; events are not accepted".into(),
            ));
        }
        let _one = self.submitting.lock().await;
        let now = self.clock.now();
        // A sender whose clock runs ahead (Alertmanager's `startsAt`) must not delay a
        // debounce or a ladder: nothing can have started later than it arrived.
        for event in batch.iter_mut().flat_map(|s| s.events.iter_mut()) {
            event.at = event.at.min(now);
        }
        let mut writes = Batch::default();
        let mut opened = Vec::new();
        let accepted: Vec<Accepted> = {
            let mut intake = self.intake();
            batch
                .iter()
                .map(|s| intake.accept(&self.rulebook, s, now, &mut writes, &mut opened))
                .collect()
        };
        let closed = match self.incidents.write_batch(&writes, now).await {
            Ok(closed) => closed,
            Err(e) => {
                // Memory ran ahead of the store: forget it and read the store again.
                let recent = self
                    .incidents
                    .recent(Timestamp(now.0 - RESTORE_LOOKBACK_MS))
                    .await;
                if let Ok(recent) = recent {
                    *self.intake() = Intake::restore(&self.rulebook, &recent, now);
                }
                return Err(e);
            }
        };
        for id in &closed {
            if let Some(cancel) = self.ladders().cancels.get(id) {
                cancel.set();
            }
            tracing::info!(incident = %id, "incident resolved by its source");
            // People hear of what was healed while nobody watched, not of alerts that
            // came and went before any step ran.
            // The events are already committed: a failure here is logged, not returned.
            let ran = self.incidents.steps(id).await.map(|s| !s.is_empty());
            if ran.unwrap_or(false) {
                let message = format!("incident {id} resolved: the source reports it resolved");
                if let Err(e) = self.notify(id, "info", &message).await {
                    tracing::warn!(incident = %id, error = %e, "could not tell people");
                }
            }
        }
        for o in opened {
            self.spawn(o, Resume::Fresh);
        }
        Ok(accepted)
    }

    /// What became of a submitted request: what was accepted, and its incidents with their
    /// status and timeline. `None` for a request id never submitted.
    pub async fn request(&self, request_id: &str) -> Result<Option<serde_json::Value>> {
        let Some(accepted) = self.incidents.request(request_id).await? else {
            return Ok(None);
        };
        let mut incidents = Vec::new();
        for id in accepted["incidents"].as_array().into_iter().flatten() {
            if let Some(i) = self.incident(id.as_str().unwrap_or_default()).await? {
                incidents.push(i);
            }
        }
        Ok(Some(json!({
            "request_id": request_id,
            "accepted": accepted,
            "incidents": incidents,
        })))
    }

    pub async fn incidents(&self, open_only: bool) -> Result<Vec<Incident>> {
        self.incidents.list(open_only).await
    }

    pub async fn incident(&self, id: &str) -> Result<Option<Incident>> {
        self.incidents.get(id).await
    }

    /// Stops starting steps, waits for running calls up to `deadline`, then abandons the
    /// rest; every incident left active resumes at the next start.
    pub async fn shutdown(&self, deadline: Duration) {
        self.stopping.set();
        let mut tasks = std::mem::take(&mut self.ladders().tasks);
        let drained = tokio::time::timeout(deadline, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                running = tasks.len(),
                "calls still running at the shutdown deadline were abandoned"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }

    /// Ready when not shutting down and the state store answers.
    pub async fn ready(&self) -> Result<()> {
        if self.stopping.is_set() {
            return Err(Error::Triggers(
                "the trigger engine is shutting down".into(),
            ));
        }
        self.incidents.ping().await
    }

    /// Whether some rule answers `event` (a source may drop what nothing answers).
    pub fn answers(&self, event: &Event) -> bool {
        !self.rulebook.matching(event).is_empty()
    }

    /// How many rules the engine runs.
    pub fn rules(&self) -> usize {
        self.rulebook.rules.len()
    }

    fn intake(&self) -> std::sync::MutexGuard<'_, Intake> {
        self.intake.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ladders(&self) -> std::sync::MutexGuard<'_, Ladders> {
        self.ladders.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spawn(self: &Arc<Self>, o: Opened, resume: Resume) {
        let cancel = Arc::new(Stop::default());
        let engine = self.clone();
        let mut ladders = self.ladders();
        while ladders.tasks.try_join_next().is_some() {}
        ladders.cancels.insert(o.incident.clone(), cancel.clone());
        ladders.tasks.spawn(async move {
            let id = o.incident.clone();
            engine.climb(o, resume, cancel).await;
            engine.ladders().cancels.remove(&id);
        });
    }

    /// Closes an active incident (the first close wins), tells people when `severity` says
    /// so, and forgets it as active.
    async fn close(
        &self,
        incident: &str,
        status: IncidentStatus,
        reason: &str,
        severity: Option<&str>,
    ) -> Result<()> {
        let now = self.clock.now();
        let closed = self.incidents.close(incident, status, reason, now).await?;
        self.intake().deactivate(incident);
        if closed {
            tracing::info!(incident = %incident, status = status.as_str(), reason = %reason, "incident closed");
            if let Some(severity) = severity {
                let message = format!("incident {incident} {}: {reason}", status.as_str());
                self.notify(incident, severity, &message).await?;
            }
        }
        Ok(())
    }

    /// Posts to the inbox and records it on the incident's timeline.
    async fn notify(&self, incident: &str, severity: &str, message: &str) -> Result<()> {
        let now = self.clock.now();
        let n = NewNotification {
            severity: severity.to_string(),
            message: message.to_string(),
            source: format!("incident:{incident}"),
            incident: Some(incident.to_string()),
        };
        let mut e = TimelineEntry::new(now, TimelineKind::Notification).message(message);
        e.outcome = Some(match self.inbox.post_at(&n, now).await {
            Ok(id) => json!({"notification": id, "severity": severity}),
            Err(err) => {
                tracing::warn!(incident = %incident, error = %err, "could not post a notification");
                json!({"error": err.to_string(), "severity": severity})
            }
        });
        self.incidents.note(incident, &e).await
    }
}
