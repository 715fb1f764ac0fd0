//! The notification outbox: the deliveries [`Inbox::post_at`](crate::inbox::Inbox::post_at)
//! queued, one per notification and push channel. `steward serve` takes the due ones,
//! sends them, and records each attempt here; a failed attempt is retried with backoff,
//! after a restart too, so every stored notification reaches every channel at least once.
//! The notification id travels with each attempt, so a receiver that sees it twice can tell.

use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;
use steward_audit::{on_pool, sql_for, Store};
use steward_protocol::Timestamp;
use tokio::sync::Notify;

use crate::inbox::Notification;
use crate::Result;

/// A delivery waiting to be sent, with its notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Due {
    pub channel: String,
    /// Attempts made before this one.
    pub attempts: i64,
    pub created_ms: i64,
    pub notification: Notification,
}

/// One delivery's state, for `steward notifications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub notification: String,
    pub channel: String,
    /// `pending` (retried until delivered), `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: i64,
    pub next_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct DueRow {
    channel: String,
    attempts: i64,
    created_ms: i64,
    id: String,
    at_ms: i64,
    severity: String,
    message: String,
    source: String,
    incident: Option<String>,
}

/// Wakes a waiting delivery loop of this process (a post queued something).
pub fn wake() {
    waker().notify_one();
}

/// Waits for [`wake`] or `at_most`, whichever comes first; posts by other processes
/// (`steward call notify`) are found by the timeout.
pub async fn wait(at_most: Duration) {
    let _ = tokio::time::timeout(at_most, waker().notified()).await;
}

fn waker() -> &'static Notify {
    static WAKER: OnceLock<Notify> = OnceLock::new();
    WAKER.get_or_init(Notify::new)
}

/// The wait before retry number `attempt` (1: the first retry): 1 s doubling to `cap`.
pub fn backoff(attempt: i64, cap: Duration) -> Duration {
    let exp = attempt.clamp(1, 20) as u32 - 1;
    Duration::from_secs(1u64 << exp).min(cap)
}

/// The deliveries table.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: Store,
}

impl Outbox {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Pending deliveries due at `now`, oldest first, at most `limit`.
    pub async fn due(&self, now: Timestamp, limit: i64) -> Result<Vec<Due>> {
        let sql = sql_for(
            &self.store,
            "SELECT d.channel, d.attempts, d.created_ms, n.id, n.at_ms, n.severity, n.message, \
             n.source, n.incident FROM deliveries d JOIN notifications n \
             ON n.id = d.notification WHERE d.state = 'pending' AND d.next_at_ms <= $1 \
             ORDER BY d.next_at_ms, n.id LIMIT $2",
        );
        let rows: Vec<DueRow> = on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).bind(now.0).bind(limit).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|r| Due {
                channel: r.channel,
                attempts: r.attempts,
                created_ms: r.created_ms,
                notification: Notification {
                    id: r.id,
                    at_ms: r.at_ms,
                    severity: r.severity,
                    message: r.message,
                    source: r.source,
                    incident: r.incident,
                },
            })
            .collect())
    }

    /// The receiver took it.
    pub async fn delivered(&self, d: &Due, now: Timestamp) -> Result<()> {
        self.update(
            d,
            "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, \
             delivered_at_ms = $1, last_error = NULL WHERE notification = $2 AND channel = $3",
            now.0,
            None,
        )
        .await
    }

    /// The attempt failed: try again at `next`.
    pub async fn retry(&self, d: &Due, next: Timestamp, error: &str) -> Result<()> {
        self.update(
            d,
            "UPDATE deliveries SET attempts = attempts + 1, next_at_ms = $1, last_error = $4 \
             WHERE notification = $2 AND channel = $3",
            next.0,
            Some(error),
        )
        .await
    }

    /// Given up after the last attempt.
    pub async fn failed(&self, d: &Due, now: Timestamp, error: &str) -> Result<()> {
        self.update(
            d,
            "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, next_at_ms = $1, \
             last_error = $4 WHERE notification = $2 AND channel = $3",
            now.0,
            Some(error),
        )
        .await
    }

    async fn update(&self, d: &Due, sql: &str, ms: i64, error: Option<&str>) -> Result<()> {
        let sql = sql_for(&self.store, sql);
        on_pool!(&self.store, pool => {
            let q = sqlx::query(&sql)
                .bind(ms)
                .bind(&d.notification.id)
                .bind(&d.channel);
            let q = match error {
                Some(e) => q.bind(e.to_string()),
                None => q,
            };
            q.execute(pool).await?;
        });
        Ok(())
    }

    /// The deliveries of the given notifications.
    pub async fn of(&self, notifications: &[String]) -> Result<Vec<Delivery>> {
        if notifications.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=notifications.len()).map(|i| format!("${i}")).collect();
        let sql = sql_for(
            &self.store,
            &format!(
                "SELECT notification, channel, state, attempts, next_at_ms, delivered_at_ms, \
                 last_error FROM deliveries WHERE notification IN ({}) ORDER BY channel",
                marks.join(", ")
            ),
        );
        Ok(on_pool!(&self.store, pool => {
            let mut q = sqlx::query_as(&sql);
            for n in notifications {
                q = q.bind(n);
            }
            q.fetch_all(pool).await?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_one_second_doubling_to_the_cap() {
        let cap = Duration::from_secs(300);
        let waits: Vec<u64> = (1..=10).map(|a| backoff(a, cap).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(backoff(1000, cap), cap);
    }
}
