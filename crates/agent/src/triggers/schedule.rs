//! The schedule source: fires `on = "schedule:<cron>"` rules at their slots, in their time
//! zone, as events the engine runs like any other (principal `alert_rule:<id>`, origin
//! `schedule`).
//!
//! - A rule with `for_each = "database"` fires one event per tenant and platform database,
//!   the name in label `target`; each run is its own incident, so one failure pages without
//!   holding the others back.
//! - Every run is recorded (`schedule_runs`) before its event is submitted. At start, a run
//!   whose incident was interrupted (Steward stopped mid-step) or never submitted runs again
//!   as the next attempt, and a slot missed while Steward was down runs once
//!   (`catch_up = "once"`, the default) or is skipped (`catch_up = "skip"`).
//! - When a run ends, the [`ScheduleHost`] hears of it (retention after a verified backup).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use steward_audit::{on_pool, sql_for, Store};
use steward_policy::rules::{CatchUp, Matcher, Rule};
use steward_protocol::{Event, EventSource, EventStatus, Timestamp};
use steward_tools::Clock;

use super::{Engine, Submission};
use crate::inbox::NewNotification;
use crate::incidents::{Incident, IncidentStatus};
use crate::Result;

/// What the scheduler needs from the rest of Steward.
#[async_trait]
pub trait ScheduleHost: Send + Sync + std::fmt::Debug {
    /// The values `for_each` names: `database` lists every tenant and platform database.
    async fn expand(&self, for_each: &str) -> std::result::Result<Vec<String>, String>;
    /// A run's incident closed.
    async fn finished(&self, run: &Run, incident: &Incident);
}

/// One run of a schedule: a slot, a target (for `for_each` rules) and an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub rule: String,
    pub slot: Timestamp,
    pub target: Option<String>,
    pub attempt: i64,
}

/// How often a finished run is looked for.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// How far back interrupted runs are looked for at start.
const RERUN_LOOKBACK_MS: i64 = 48 * 3600 * 1000;
/// At most this many slots are walked to find the latest one missed.
const MAX_MISSED_WALK: usize = 100_000;

/// Fires the engine's schedule rules until the task is aborted.
#[derive(Debug)]
pub struct Scheduler {
    engine: Arc<Engine>,
    runs: RunStore,
    clock: Arc<dyn Clock>,
    host: Arc<dyn ScheduleHost>,
}

impl Scheduler {
    pub fn new(
        engine: Arc<Engine>,
        store: Store,
        clock: Arc<dyn Clock>,
        host: Arc<dyn ScheduleHost>,
    ) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            engine,
            runs: RunStore { store },
            clock,
            host,
        })
    }

    /// Re-runs interrupted runs and catches up missed slots (at once), then fires each rule
    /// at its slots. Returns when the rulebook has no schedule.
    pub async fn run(self: Arc<Self>) {
        let rules: Vec<Rule> = self
            .engine
            .rulebook
            .rules
            .iter()
            .filter(|r| matches!(r.on, Matcher::Schedule { .. }))
            .cloned()
            .collect();
        if rules.is_empty() {
            return;
        }
        if let Err(e) = self.recover(&rules).await {
            tracing::error!(error = %e, "schedules: cannot recover missed or interrupted runs");
        }
        let mut next: BTreeMap<String, Timestamp> = BTreeMap::new();
        let now = self.clock.now();
        for rule in &rules {
            if let Some(at) = rule.on.next_fire(now) {
                next.insert(rule.id.clone(), at);
            }
        }
        tracing::info!(schedules = rules.len(), next = ?next, "schedules armed");
        loop {
            let Some((id, at)) = next
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(i, a)| (i.clone(), *a))
            else {
                return;
            };
            let wait = at.0 - self.clock.now().0;
            if wait > 0 {
                // Sleep in bounded steps: a wall clock that jumps is noticed within a minute.
                tokio::time::sleep(Duration::from_millis(wait.min(60_000) as u64)).await;
                continue;
            }
            let Some(rule) = rules.iter().find(|r| r.id == id) else {
                return;
            };
            self.clone().fire(rule, at, 1, None).await;
            match rule.on.next_fire(at) {
                Some(n) => next.insert(id, n),
                None => next.remove(&id),
            };
        }
    }

    /// At start: runs again what was interrupted, then what was missed.
    async fn recover(self: &Arc<Self>, rules: &[Rule]) -> Result<()> {
        let now = self.clock.now();
        for (run, incident) in self.runs.latest_attempts(now.0 - RERUN_LOOKBACK_MS).await? {
            let Some(rule) = rules.iter().find(|r| r.id == run.rule) else {
                continue;
            };
            let status = match &incident {
                Some(id) => self.engine.incident(id).await?.map(|i| i.status),
                None => None,
            };
            let why = match status {
                None => "it was recorded but never submitted",
                Some(IncidentStatus::Interrupted) => "Steward stopped while it ran",
                Some(_) => continue,
            };
            tracing::warn!(rule = %run.rule, slot = run.slot.0, target = ?run.target, attempt = run.attempt, "schedules: running again a run that did not finish: {why}");
            self.clone()
                .fire(rule, run.slot, run.attempt + 1, Some(run.target.clone()))
                .await;
        }
        for rule in rules {
            let Matcher::Schedule { catch_up, .. } = &rule.on else {
                continue;
            };
            let last = self.runs.last_slot(&rule.id).await?;
            self.runs.mark_watching(&rule.id, now).await?;
            let (Some(last), CatchUp::Once) = (last, catch_up) else {
                continue;
            };
            if let Some(missed) = latest_missed(rule, last, now) {
                tracing::info!(rule = %rule.id, slot = missed.0, "schedules: running once a slot missed while Steward was down");
                self.clone().fire(rule, missed, 1, None).await;
            }
        }
        Ok(())
    }

    /// Records and submits the runs of one slot; `only` narrows it to one target (a re-run).
    async fn fire(
        self: Arc<Self>,
        rule: &Rule,
        slot: Timestamp,
        attempt: i64,
        only: Option<Option<String>>,
    ) {
        let for_each = match &rule.on {
            Matcher::Schedule { for_each, .. } => for_each.clone(),
            _ => None,
        };
        let targets: Vec<Option<String>> = match (only, &for_each) {
            (Some(target), _) => vec![target],
            (None, None) => vec![None],
            (None, Some(each)) => match self.host.expand(each).await {
                Ok(values) => values.into_iter().map(Some).collect(),
                Err(e) => {
                    let message = format!(
                        "schedule {} could not list each {each} for its run at {}: {e}",
                        rule.id,
                        rfc3339(slot)
                    );
                    self.page(&rule.id, &message).await;
                    return;
                }
            },
        };
        let now = self.clock.now();
        let mut runs = Vec::new();
        let mut batch = Vec::new();
        for target in targets {
            let run = Run {
                rule: rule.id.clone(),
                slot,
                target,
                attempt,
            };
            if let Err(e) = self.runs.insert(&run, now).await {
                tracing::error!(error = %e, rule = %rule.id, "schedules: cannot record a run; it does not start");
                continue;
            }
            batch.push(Submission {
                request_id: format!("schedule-{}", uuid::Uuid::new_v4().simple()),
                events: vec![event(&run, now)],
            });
            runs.push(run);
        }
        if batch.is_empty() {
            return;
        }
        let accepted = match self.engine.submit(batch).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, rule = %rule.id, "schedules: the engine did not take the runs; they run again at the next start");
                return;
            }
        };
        for (run, acc) in runs.into_iter().zip(accepted) {
            let Some(incident) = acc.incidents.first().cloned() else {
                continue;
            };
            if let Err(e) = self.runs.set_incident(&run, &incident).await {
                tracing::warn!(error = %e, "schedules: cannot record a run's incident");
            }
            let me = self.clone();
            tokio::spawn(async move { me.watch(run, incident).await });
        }
    }

    /// Waits for a run's incident to close, then tells the host.
    async fn watch(self: Arc<Self>, run: Run, incident: String) {
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            match self.engine.incident(&incident).await {
                Ok(Some(i)) if !i.status.is_active() => {
                    self.host.finished(&run, &i).await;
                    return;
                }
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, incident = %incident, "schedules: cannot read a run's incident")
                }
            }
        }
    }

    async fn page(&self, rule: &str, message: &str) {
        tracing::error!(rule = %rule, "{message}");
        let n = NewNotification {
            severity: "critical".into(),
            message: message.to_string(),
            source: format!("schedule:{rule}"),
            incident: None,
        };
        if let Err(e) = self.engine.inbox.post_at(&n, self.clock.now()).await {
            tracing::error!(error = %e, "schedules: cannot post a notification");
        }
    }
}

/// The latest slot of `rule` after `last` and at or before `now`.
fn latest_missed(rule: &Rule, last: Timestamp, now: Timestamp) -> Option<Timestamp> {
    let mut latest = None;
    let mut at = last;
    for _ in 0..MAX_MISSED_WALK {
        match rule.on.next_fire(at) {
            Some(n) if n <= now => {
                latest = Some(n);
                at = n;
            }
            _ => break,
        }
    }
    latest
}

fn event(run: &Run, now: Timestamp) -> Event {
    let mut labels = BTreeMap::new();
    if let Some(t) = &run.target {
        labels.insert("target".to_string(), t.clone());
    }
    Event {
        source: EventSource::Schedule,
        name: run.rule.clone(),
        status: EventStatus::Firing,
        key: format!(
            "schedule/{}/{}/{}/{}",
            run.rule,
            run.slot.0,
            run.target.as_deref().unwrap_or(""),
            run.attempt
        ),
        labels,
        fields: BTreeMap::from([
            ("slot".to_string(), json!(rfc3339(run.slot))),
            ("attempt".to_string(), json!(run.attempt)),
        ]),
        text: None,
        at: now,
    }
}

fn rfc3339(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t.0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The `schedule_runs` table.
#[derive(Debug, Clone)]
struct RunStore {
    store: Store,
}

#[derive(Debug, sqlx::FromRow)]
struct RunRow {
    rule: String,
    slot_ms: i64,
    target: String,
    attempt: i64,
    incident: Option<String>,
}

impl RunStore {
    async fn insert(&self, run: &Run, now: Timestamp) -> Result<()> {
        self.insert_row(
            &run.rule,
            run.slot,
            run.target.as_deref().unwrap_or(""),
            run.attempt,
            now,
        )
        .await
    }

    /// Notes that the rule is watched from `now`: the next start catches up from here.
    async fn mark_watching(&self, rule: &str, now: Timestamp) -> Result<()> {
        self.insert_row(rule, now, "", 0, now).await
    }

    async fn insert_row(
        &self,
        rule: &str,
        slot: Timestamp,
        target: &str,
        attempt: i64,
        now: Timestamp,
    ) -> Result<()> {
        let sql = sql_for(
            &self.store,
            "INSERT INTO schedule_runs (rule, slot_ms, target, attempt, started_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        );
        on_pool!(&self.store, pool => {
            sqlx::query(&sql)
                .bind(rule)
                .bind(slot.0)
                .bind(target)
                .bind(attempt)
                .bind(now.0)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    async fn set_incident(&self, run: &Run, incident: &str) -> Result<()> {
        let sql = sql_for(
            &self.store,
            "UPDATE schedule_runs SET incident = $1 WHERE rule = $2 AND slot_ms = $3 \
             AND target = $4 AND attempt = $5",
        );
        on_pool!(&self.store, pool => {
            sqlx::query(&sql)
                .bind(incident)
                .bind(&run.rule)
                .bind(run.slot.0)
                .bind(run.target.as_deref().unwrap_or(""))
                .bind(run.attempt)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The newest slot recorded for `rule` (a run or the start of watching).
    async fn last_slot(&self, rule: &str) -> Result<Option<Timestamp>> {
        let sql = sql_for(
            &self.store,
            "SELECT MAX(slot_ms) FROM schedule_runs WHERE rule = $1",
        );
        let max: Option<i64> = on_pool!(&self.store, pool => {
            sqlx::query_scalar(&sql).bind(rule).fetch_one(pool).await?
        });
        Ok(max.map(Timestamp))
    }

    /// The latest attempt of every run started since `since_ms`, with its incident.
    async fn latest_attempts(&self, since_ms: i64) -> Result<Vec<(Run, Option<String>)>> {
        let sql = sql_for(
            &self.store,
            "SELECT rule, slot_ms, target, attempt, incident FROM schedule_runs \
             WHERE attempt > 0 AND started_ms >= $1 ORDER BY rule, slot_ms, target, attempt",
        );
        let rows: Vec<RunRow> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).bind(since_ms).fetch_all(pool).await?
        });
        let mut latest: BTreeMap<(String, i64, String), RunRow> = BTreeMap::new();
        for row in rows {
            latest.insert((row.rule.clone(), row.slot_ms, row.target.clone()), row);
        }
        Ok(latest
            .into_values()
            .map(|r| {
                (
                    Run {
                        rule: r.rule,
                        slot: Timestamp(r.slot_ms),
                        target: (!r.target.is_empty()).then_some(r.target),
                        attempt: r.attempt,
                    },
                    r.incident,
                )
            })
            .collect())
    }
}
