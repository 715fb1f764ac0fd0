//! Refused requests, counted per (source, reason, minute) and written to the audit log as
//! one `Refused` record per key with its count, so a flood of bad requests adds at most a
//! handful of records a minute instead of one per request.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::json;
use steward_audit::AuditLog;
use steward_protocol::{Actor, AuditEntry, AuditKind, Origin, Timestamp};

use crate::db::now_ms;
use crate::Result;

const MINUTE_MS: i64 = 60_000;

type Key = (String, &'static str, i64);

/// The counters of refused requests not yet written to the audit log.
#[derive(Debug)]
pub struct Refusals {
    audit: AuditLog,
    counts: Mutex<BTreeMap<Key, u64>>,
}

impl Refusals {
    pub fn new(audit: AuditLog) -> Refusals {
        Refusals {
            audit,
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Counts one refusal. `source` must come from a small fixed set (an endpoint, or a
    /// defined hook's name), never from unchecked request data, so the keys stay few.
    pub fn count(&self, source: &str, reason: &'static str) {
        let minute = now_ms().div_euclid(MINUTE_MS) * MINUTE_MS;
        *self
            .lock()
            .entry((source.to_string(), reason, minute))
            .or_default() += 1;
    }

    /// Writes the counts of finished minutes (every minute when `all`, as at shutdown) to
    /// the audit log in one batch and returns how many records were written. On failure
    /// the counts are kept for the next flush.
    pub async fn flush(&self, all: bool) -> Result<usize> {
        let current = now_ms().div_euclid(MINUTE_MS) * MINUTE_MS;
        let due: Vec<(Key, u64)> = {
            let mut counts = self.lock();
            let (due, keep): (BTreeMap<Key, u64>, BTreeMap<Key, u64>) =
                std::mem::take(&mut *counts)
                    .into_iter()
                    .partition(|((_, _, minute), _)| all || *minute < current);
            *counts = keep;
            due.into_iter().collect()
        };
        if due.is_empty() {
            return Ok(0);
        }
        let entries = due
            .iter()
            .map(|((source, reason, minute), count)| entry(source, reason, *minute, *count));
        match self.audit.append_batch(entries.collect()).await {
            Ok(records) => Ok(records.len()),
            Err(e) => {
                let mut counts = self.lock();
                for (key, n) in due {
                    *counts.entry(key).or_default() += n;
                }
                Err(e.into())
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, u64>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn entry(source: &str, reason: &str, minute: i64, count: u64) -> AuditEntry {
    let origin = if source == "alertmanager" {
        Origin::Alert
    } else if source.starts_with("hook") {
        Origin::Webhook
    } else {
        Origin::Api
    };
    AuditEntry {
        at: Timestamp(minute),
        kind: Some(AuditKind::Refused),
        actor: Some(Actor::Service {
            name: format!("intake:{source}"),
        }),
        origin: Some(origin),
        outcome: Some(json!({
            "refused": reason,
            "source": source,
            "count": count,
            "minute_start_ms": minute,
        })),
        ..AuditEntry::default()
    }
}
