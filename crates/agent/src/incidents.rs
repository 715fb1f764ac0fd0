//! Incidents in Steward's state store (SQLite or PostgreSQL): what the trigger engine made
//! of each event, every step it took and why it stopped. The CLI reads them through
//! [`IncidentStore`] without an engine; the engine ([`crate::triggers`]) is the only writer.
//!
//! A step is recorded before it runs, keyed by (incident, step), so it can never run twice.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_audit::{on_pool, sql_for, value_rows, Store};
use steward_protocol::{Event, Timestamp};

use crate::{Error, Result};

/// Where an incident stands. `Open` and `WaitingApproval` are active; the rest are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// A ladder is (or will be, after the debounce) climbing.
    Open,
    /// A step waits for a person's approval.
    WaitingApproval,
    /// A step's condition held, every step of a sequence ran, or the source resolved it.
    Resolved,
    /// Every step ran and the condition never held, or a step's gate was not met.
    Unresolved,
    /// A step failed, or the rule could not be planned for the event.
    Failed,
    /// Policy or a guard refused a step.
    Refused,
    /// The approval a step waited for was denied, withdrawn or expired.
    Cancelled,
    /// No rule answers the event, or it names a service Steward does not manage.
    Unmatched,
    /// Steward stopped while a step was running: whether it ran is unknown.
    Interrupted,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::WaitingApproval => "waiting_approval",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Unresolved => "unresolved",
            IncidentStatus::Failed => "failed",
            IncidentStatus::Refused => "refused",
            IncidentStatus::Cancelled => "cancelled",
            IncidentStatus::Unmatched => "unmatched",
            IncidentStatus::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Option<IncidentStatus> {
        Some(match s {
            "open" => IncidentStatus::Open,
            "waiting_approval" => IncidentStatus::WaitingApproval,
            "resolved" => IncidentStatus::Resolved,
            "unresolved" => IncidentStatus::Unresolved,
            "failed" => IncidentStatus::Failed,
            "refused" => IncidentStatus::Refused,
            "cancelled" => IncidentStatus::Cancelled,
            "unmatched" => IncidentStatus::Unmatched,
            "interrupted" => IncidentStatus::Interrupted,
            _ => return None,
        })
    }

    pub fn is_active(self) -> bool {
        matches!(self, IncidentStatus::Open | IncidentStatus::WaitingApproval)
    }
}

/// What a timeline entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    Event,
    Rule,
    StepStarted,
    StepFinished,
    Decision,
    UntilCheck,
    Notification,
    Closed,
}

impl TimelineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::Event => "event",
            TimelineKind::Rule => "rule",
            TimelineKind::StepStarted => "step_started",
            TimelineKind::StepFinished => "step_finished",
            TimelineKind::Decision => "decision",
            TimelineKind::UntilCheck => "until_check",
            TimelineKind::Notification => "notification",
            TimelineKind::Closed => "closed",
        }
    }
}

/// One thing that happened to an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: Timestamp,
    pub kind: TimelineKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// The policy decision with the ids of the policies that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Value>,
    /// What came of it: status, summary, output, error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl TimelineEntry {
    pub fn new(at: Timestamp, kind: TimelineKind) -> Self {
        Self {
            at,
            kind,
            step: None,
            tool: None,
            args: None,
            decision: None,
            outcome: None,
            message: None,
        }
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn step(mut self, step: usize, tool: &str) -> Self {
        self.step = Some(step);
        self.tool = Some(tool.to_string());
        self
    }
}

/// One incident. `event.text` is untrusted and kept as data only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: String,
    /// `None`: no rule answers the event.
    pub rule: Option<String>,
    pub principal: Option<String>,
    pub event_key: String,
    pub group: Option<String>,
    pub status: IncidentStatus,
    /// True until the source reports the event's key resolved.
    pub firing: bool,
    pub opened_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub close_reason: Option<String>,
    /// Repeats of the same firing key.
    pub repeats: i64,
    /// Events of other keys in the same throttle group and window, never run.
    pub throttled: i64,
    pub request_id: String,
    pub event: Event,
    /// Empty in lists; filled by [`IncidentStore::get`].
    pub timeline: Vec<TimelineEntry>,
}

/// A step as recorded: started before the call, finished after it.
#[derive(Debug, Clone)]
pub(crate) struct StepRow {
    pub step: usize,
    pub finished: bool,
    pub approval_id: Option<String>,
    pub result: Option<Value>,
}

/// Everything one `submit` writes, in one transaction.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub opened: Vec<Incident>,
    pub repeats: HashMap<String, i64>,
    pub throttled: HashMap<String, i64>,
    /// Incidents whose key the source reported resolved (`firing` cleared).
    pub unfired: Vec<String>,
    /// Active incidents to close as resolved by the source.
    pub resolve: Vec<String>,
    pub requests: Vec<(String, Value)>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    rule: Option<String>,
    principal: Option<String>,
    event_key: String,
    group_key: Option<String>,
    status: String,
    firing: i64,
    opened_at_ms: i64,
    closed_at_ms: Option<i64>,
    close_reason: Option<String>,
    repeats: i64,
    throttled: i64,
    event: String,
    request_id: String,
}

const COLUMNS: &str = "id, rule, principal, event_key, group_key, status, firing, \
    opened_at_ms, closed_at_ms, close_reason, repeats, throttled, event, request_id";

fn from_row(r: Row) -> Result<Incident> {
    let status = IncidentStatus::parse(&r.status).ok_or_else(|| {
        Error::Corrupt(format!("incident {}: unknown status {:?}", r.id, r.status))
    })?;
    let event: Event = serde_json::from_str(&r.event)
        .map_err(|e| Error::Corrupt(format!("incident {}: event: {e}", r.id)))?;
    Ok(Incident {
        id: r.id,
        rule: r.rule,
        principal: r.principal,
        event_key: r.event_key,
        group: r.group_key,
        status,
        firing: r.firing != 0,
        opened_at: Timestamp(r.opened_at_ms),
        closed_at: r.closed_at_ms.map(Timestamp),
        close_reason: r.close_reason,
        repeats: r.repeats,
        throttled: r.throttled,
        request_id: r.request_id,
        event,
        timeline: Vec::new(),
    })
}

/// A value bound into a multi-row insert.
enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

/// `INSERT INTO <head> VALUES ($1,..),(..) <tail>` for `rows` rows of `cols` values.
fn multi_insert(store: &Store, head: &str, cols: usize, rows: usize, tail: &str) -> String {
    format!(
        "INSERT INTO {head} VALUES {} {tail}",
        value_rows(store, rows, cols)
    )
}

/// Rows per multi-row insert: well under both backends' limits on bound values.
const VALUES_PER_STATEMENT: usize = 3000;

/// Runs `INSERT`s of `rows` (each `cols` values) in chunks on a transaction.
macro_rules! insert_rows {
    ($store:expr, $tx:expr, $head:expr, $cols:expr, $rows:expr, $tail:expr) => {{
        let per = (VALUES_PER_STATEMENT / $cols).max(1);
        for chunk in $rows.chunks(per) {
            let sql = multi_insert($store, $head, $cols, chunk.len(), $tail);
            let mut q = sqlx::query(&sql);
            for row in chunk {
                for b in row {
                    q = match b {
                        Bind::Text(s) => q.bind(s.as_str()),
                        Bind::OptText(s) => q.bind(s.as_deref()),
                        Bind::Int(i) => q.bind(*i),
                        Bind::OptInt(i) => q.bind(*i),
                    };
                }
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}

fn incident_binds(i: &Incident) -> Vec<Bind> {
    vec![
        Bind::Text(i.id.clone()),
        Bind::OptText(i.rule.clone()),
        Bind::OptText(i.principal.clone()),
        Bind::Text(i.event_key.clone()),
        Bind::OptText(i.group.clone()),
        Bind::Text(i.status.as_str().to_string()),
        Bind::Int(i64::from(i.firing)),
        Bind::Int(i.opened_at.0),
        Bind::OptInt(i.closed_at.map(|t| t.0)),
        Bind::OptText(i.close_reason.clone()),
        Bind::Int(i.repeats),
        Bind::Int(i.throttled),
        Bind::Text(serde_json::to_string(&i.event).unwrap_or_default()),
        Bind::Text(i.request_id.clone()),
    ]
}

fn timeline_binds(incident: &str, e: &TimelineEntry) -> Vec<Bind> {
    vec![
        Bind::Text(incident.to_string()),
        Bind::Int(e.at.0),
        Bind::Text(e.kind.as_str().to_string()),
        Bind::Text(serde_json::to_string(e).unwrap_or_default()),
    ]
}

const ACTIVE: &str = "status IN ('open', 'waiting_approval')";

/// The incidents tables.
#[derive(Debug, Clone)]
pub struct IncidentStore {
    store: Store,
}

impl IncidentStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The most recent incidents (at most 500), newest first, without timelines.
    pub async fn list(&self, open_only: bool) -> Result<Vec<Incident>> {
        let filter = if open_only {
            format!("WHERE {ACTIVE}")
        } else {
            String::new()
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents {filter} ORDER BY opened_at_ms DESC, id LIMIT 500"
        );
        let rows: Vec<Row> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// One incident with its timeline.
    pub async fn get(&self, id: &str) -> Result<Option<Incident>> {
        let sql = sql_for(
            &self.store,
            &format!("SELECT {COLUMNS} FROM incidents WHERE id = $1"),
        );
        let row: Option<Row> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        let Some(row) = row else { return Ok(None) };
        let mut incident = from_row(row)?;
        let sql = sql_for(
            &self.store,
            "SELECT entry FROM incident_timeline WHERE incident_id = $1 ORDER BY id",
        );
        let entries: Vec<(String,)> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).bind(id).fetch_all(pool).await?
        });
        for (e,) in entries {
            incident.timeline.push(
                serde_json::from_str(&e)
                    .map_err(|err| Error::Corrupt(format!("incident {id}: timeline: {err}")))?,
            );
        }
        Ok(Some(incident))
    }

    /// What a submitted request became (the engine's `Accepted`), if it was recorded.
    pub async fn request(&self, request_id: &str) -> Result<Option<Value>> {
        let sql = sql_for(
            &self.store,
            "SELECT accepted FROM trigger_requests WHERE request_id = $1",
        );
        let row: Option<(String,)> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).bind(request_id).fetch_optional(pool).await?
        });
        row.map(|(a,)| {
            serde_json::from_str(&a)
                .map_err(|e| Error::Corrupt(format!("request {request_id}: {e}")))
        })
        .transpose()
    }

    /// Checks that the store answers.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(&self.store, pool => {
            sqlx::query("SELECT 1 FROM incidents LIMIT 1").fetch_optional(pool).await?;
        });
        Ok(())
    }

    /// Incidents still active, oldest first: what a starting engine resumes.
    pub(crate) async fn active(&self) -> Result<Vec<Incident>> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE {ACTIVE} ORDER BY opened_at_ms");
        let rows: Vec<Row> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// Incidents whose key is still firing or that were opened since `since`: what the
    /// engine needs to count repeats and hold throttle windows after a restart.
    pub(crate) async fn recent(&self, since: Timestamp) -> Result<Vec<Incident>> {
        let sql = sql_for(
            &self.store,
            &format!(
                "SELECT {COLUMNS} FROM incidents WHERE firing = 1 OR opened_at_ms >= $1 \
                 ORDER BY opened_at_ms"
            ),
        );
        let rows: Vec<Row> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).bind(since.0).fetch_all(pool).await?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// Writes one batch of submissions in one transaction. Returns the incidents it really
    /// closed as resolved (an incident a ladder closed meanwhile stays as it was).
    pub(crate) async fn write_batch(&self, b: &Batch, at: Timestamp) -> Result<Vec<String>> {
        let incidents: Vec<Vec<Bind>> = b.opened.iter().map(incident_binds).collect();
        let mut timeline: Vec<Vec<Bind>> = Vec::new();
        for i in &b.opened {
            for e in &i.timeline {
                timeline.push(timeline_binds(&i.id, e));
            }
        }
        let requests: Vec<Vec<Bind>> = b
            .requests
            .iter()
            .map(|(id, accepted)| {
                vec![
                    Bind::Text(id.clone()),
                    Bind::Int(at.0),
                    Bind::Text(accepted.to_string()),
                ]
            })
            .collect();
        let bump = |col: &str| {
            sql_for(
                &self.store,
                &format!("UPDATE incidents SET {col} = {col} + $1 WHERE id = $2"),
            )
        };
        let (repeat_sql, throttle_sql) = (bump("repeats"), bump("throttled"));
        let unfire_sql = sql_for(&self.store, "UPDATE incidents SET firing = 0 WHERE id = $1");
        let resolve_sql = sql_for(
            &self.store,
            &format!(
                "UPDATE incidents SET status = 'resolved', closed_at_ms = $1, close_reason = $2 \
                 WHERE id = $3 AND {ACTIVE}"
            ),
        );
        let reason = "the source reported it resolved";
        let mut closed = Vec::new();
        on_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            insert_rows!(&self.store, tx, &format!("incidents ({COLUMNS})"), 14, incidents, "");
            for (id, n) in &b.repeats {
                sqlx::query(&repeat_sql).bind(*n).bind(id).execute(&mut *tx).await?;
            }
            for (id, n) in &b.throttled {
                sqlx::query(&throttle_sql).bind(*n).bind(id).execute(&mut *tx).await?;
            }
            for id in &b.unfired {
                sqlx::query(&unfire_sql).bind(id).execute(&mut *tx).await?;
            }
            for id in &b.resolve {
                let n = sqlx::query(&resolve_sql)
                    .bind(at.0)
                    .bind(reason)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 1 {
                    let e = TimelineEntry::new(at, TimelineKind::Closed).message(reason);
                    timeline.push(timeline_binds(id, &e));
                    closed.push(id.clone());
                }
            }
            insert_rows!(
                &self.store,
                tx,
                "incident_timeline (incident_id, at_ms, kind, entry)",
                4,
                timeline,
                ""
            );
            insert_rows!(
                &self.store,
                tx,
                "trigger_requests (request_id, received_at_ms, accepted)",
                3,
                requests,
                "ON CONFLICT (request_id) DO NOTHING"
            );
            tx.commit().await?;
        });
        Ok(closed)
    }

    /// Appends to an incident's timeline.
    pub(crate) async fn note(&self, incident: &str, e: &TimelineEntry) -> Result<()> {
        let sql = sql_for(
            &self.store,
            "INSERT INTO incident_timeline (incident_id, at_ms, kind, entry) VALUES ($1,$2,$3,$4)",
        );
        let entry = serde_json::to_string(e).unwrap_or_default();
        on_pool!(&self.store, pool => {
            sqlx::query(&sql)
                .bind(incident)
                .bind(e.at.0)
                .bind(e.kind.as_str())
                .bind(&entry)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The recorded steps of an incident, in order.
    pub(crate) async fn steps(&self, incident: &str) -> Result<Vec<StepRow>> {
        let sql = sql_for(
            &self.store,
            "SELECT step, finished_at_ms, approval_id, result FROM incident_steps \
             WHERE incident_id = $1 ORDER BY step",
        );
        type R = (i64, Option<i64>, Option<String>, Option<String>);
        let rows: Vec<R> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).bind(incident).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|(step, finished, approval_id, result)| {
                let result = result
                    .map(|r| serde_json::from_str(&r))
                    .transpose()
                    .map_err(|e| Error::Corrupt(format!("incident {incident} step {step}: {e}")))?;
                Ok(StepRow {
                    step: usize::try_from(step).unwrap_or_default(),
                    finished: finished.is_some(),
                    approval_id,
                    result,
                })
            })
            .collect()
    }

    /// Records that a step is about to run, with its timeline entry. False when the step was
    /// recorded before: it must not run again.
    pub(crate) async fn step_started(
        &self,
        incident: &str,
        step: usize,
        tool: &str,
        args: &Value,
        at: Timestamp,
    ) -> Result<bool> {
        let sql = sql_for(
            &self.store,
            "INSERT INTO incident_steps (incident_id, step, tool, args, started_at_ms) \
             VALUES ($1,$2,$3,$4,$5) ON CONFLICT (incident_id, step) DO NOTHING",
        );
        let mut e = TimelineEntry::new(at, TimelineKind::StepStarted).step(step, tool);
        e.args = Some(args.clone());
        let tl = sql_for(
            &self.store,
            "INSERT INTO incident_timeline (incident_id, at_ms, kind, entry) VALUES ($1,$2,$3,$4)",
        );
        let entry = serde_json::to_string(&e).unwrap_or_default();
        let args = args.to_string();
        let step = step as i64;
        let inserted = on_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(&sql)
                .bind(incident)
                .bind(step)
                .bind(tool)
                .bind(&args)
                .bind(at.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                sqlx::query(&tl)
                    .bind(incident)
                    .bind(at.0)
                    .bind(e.kind.as_str())
                    .bind(&entry)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            n == 1
        });
        Ok(inserted)
    }

    /// Records the approval a started step waits for.
    pub(crate) async fn step_waits(
        &self,
        incident: &str,
        step: usize,
        approval: &str,
    ) -> Result<()> {
        let sql = sql_for(
            &self.store,
            "UPDATE incident_steps SET approval_id = $1 WHERE incident_id = $2 AND step = $3",
        );
        on_pool!(&self.store, pool => {
            sqlx::query(&sql).bind(approval).bind(incident).bind(step as i64).execute(pool).await?;
        });
        Ok(())
    }

    /// Records a step's result (what the next step's gate and a restart read).
    pub(crate) async fn step_finished(
        &self,
        incident: &str,
        step: usize,
        result: &Value,
        at: Timestamp,
    ) -> Result<()> {
        let sql = sql_for(
            &self.store,
            "UPDATE incident_steps SET finished_at_ms = $1, result = $2 \
             WHERE incident_id = $3 AND step = $4",
        );
        let result = result.to_string();
        on_pool!(&self.store, pool => {
            sqlx::query(&sql)
                .bind(at.0)
                .bind(&result)
                .bind(incident)
                .bind(step as i64)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Moves an active incident between `open` and `waiting_approval`; false if it was
    /// closed meanwhile.
    pub(crate) async fn set_active(&self, incident: &str, status: IncidentStatus) -> Result<bool> {
        let sql = sql_for(
            &self.store,
            &format!("UPDATE incidents SET status = $1 WHERE id = $2 AND {ACTIVE}"),
        );
        let n = on_pool!(&self.store, pool => {
            sqlx::query(&sql).bind(status.as_str()).bind(incident).execute(pool).await?.rows_affected()
        });
        Ok(n == 1)
    }

    /// Closes an active incident with a final status and reason, with its timeline entry;
    /// false if it was closed meanwhile (the first close wins).
    pub(crate) async fn close(
        &self,
        incident: &str,
        status: IncidentStatus,
        reason: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let sql = sql_for(
            &self.store,
            &format!(
                "UPDATE incidents SET status = $1, closed_at_ms = $2, close_reason = $3 \
                 WHERE id = $4 AND {ACTIVE}"
            ),
        );
        let n = on_pool!(&self.store, pool => {
            sqlx::query(&sql)
                .bind(status.as_str())
                .bind(at.0)
                .bind(reason)
                .bind(incident)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 1 {
            let mut e = TimelineEntry::new(at, TimelineKind::Closed).message(reason);
            e.outcome = Some(serde_json::json!({"status": status}));
            self.note(incident, &e).await?;
        }
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_unknown_ones_are_not_read() {
        for s in [
            IncidentStatus::Open,
            IncidentStatus::WaitingApproval,
            IncidentStatus::Resolved,
            IncidentStatus::Unresolved,
            IncidentStatus::Failed,
            IncidentStatus::Refused,
            IncidentStatus::Cancelled,
            IncidentStatus::Unmatched,
            IncidentStatus::Interrupted,
        ] {
            assert_eq!(IncidentStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap_or_default(), s.as_str());
        }
        assert_eq!(IncidentStatus::parse("fixed-by-magic"), None);
    }
}
