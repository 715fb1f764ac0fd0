//! The local inbox: notifications for people, kept in the state store so they survive a
//! restart and can be read from any process (`steward notifications`). The `notify` tool
//! writes here, and so do incidents that pause for approval or give up. Each post also
//! queues one delivery per push channel its severity selects ([`crate::outbox`]), in the
//! same transaction, so what a channel is sent was always stored first.

use serde::Serialize;
use serde_json::json;
use steward_audit::{on_pool, sql_for, Store};
use steward_protocol::Timestamp;
use steward_tools::{Call, Clock, Done, ErrorKind, Executor, Plan, ToolError};

use std::sync::Arc;

use crate::Result;

/// A notification to post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewNotification {
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub message: String,
    /// Who posted it: `principal:<kind:id>` for the tool, `incident:<id>` for incidents.
    pub source: String,
    pub incident: Option<String>,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Notification {
    pub id: String,
    pub at_ms: i64,
    pub severity: String,
    pub message: String,
    pub source: String,
    pub incident: Option<String>,
}

/// A push channel and the severities it is sent (empty: every severity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub channel: String,
    pub severities: Vec<String>,
}

impl Route {
    fn takes(&self, severity: &str) -> bool {
        self.severities.is_empty() || self.severities.iter().any(|s| s == severity)
    }
}

/// The notifications table, and the routes that queue deliveries for each post.
#[derive(Debug, Clone)]
pub struct Inbox {
    store: Store,
    routes: Arc<Vec<Route>>,
}

impl Inbox {
    /// An inbox with no push channels: posts stay in the store.
    pub fn new(store: Store) -> Self {
        Self::with_routes(store, Vec::new())
    }

    pub fn with_routes(store: Store, routes: Vec<Route>) -> Self {
        Self {
            store,
            routes: Arc::new(routes),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores a notification and queues its deliveries in one transaction; returns its id.
    pub async fn post_at(&self, n: &NewNotification, at: Timestamp) -> Result<String> {
        let id = format!("n-{}", uuid::Uuid::new_v4().simple());
        let channels: Vec<&str> = self
            .routes
            .iter()
            .filter(|r| r.takes(&n.severity))
            .map(|r| r.channel.as_str())
            .collect();
        let notification = sql_for(
            &self.store,
            "INSERT INTO notifications (id, at_ms, severity, message, source, incident) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        );
        let delivery = sql_for(
            &self.store,
            "INSERT INTO deliveries (notification, channel, state, attempts, next_at_ms, \
             created_ms) VALUES ($1, $2, 'pending', 0, $3, $3)",
        );
        on_pool!(&self.store, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(&notification)
                .bind(&id)
                .bind(at.0)
                .bind(&n.severity)
                .bind(&n.message)
                .bind(&n.source)
                .bind(&n.incident)
                .execute(&mut *tx)
                .await?;
            for channel in &channels {
                sqlx::query(&delivery)
                    .bind(&id)
                    .bind(channel)
                    .bind(at.0)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        tracing::info!(id = %id, severity = %n.severity, source = %n.source, channels = ?channels, "notification posted");
        if !channels.is_empty() {
            crate::outbox::wake();
        }
        Ok(id)
    }

    /// The push channels a notification of `severity` is queued for.
    pub fn channels_for(&self, severity: &str) -> Vec<String> {
        self.routes
            .iter()
            .filter(|r| r.takes(severity))
            .map(|r| r.channel.clone())
            .collect()
    }

    /// Stores a notification now (wall clock) and returns its id.
    pub async fn post(&self, n: &NewNotification) -> Result<String> {
        self.post_at(n, steward_tools::SystemClock.now()).await
    }

    /// The newest notifications first, at most `limit`.
    pub async fn recent(&self, limit: i64) -> Result<Vec<Notification>> {
        let sql = "SELECT id, at_ms, severity, message, source, incident FROM notifications \
                   ORDER BY at_ms DESC, id DESC LIMIT $1";
        let sql = sql_for(&self.store, sql);
        Ok(on_pool!(&self.store, pool => {
            sqlx::query_as(&sql).bind(limit).fetch_all(pool).await?
        }))
    }
}

/// Serves `notify` by posting to the inbox, which queues the push channels the severity
/// selects; the post is durable before the call reports done, and delivery goes on in the
/// background (`steward serve`), retried until the receiver takes it.
#[derive(Debug)]
pub struct NotifyExecutor {
    inbox: Inbox,
    clock: Arc<dyn Clock>,
}

impl NotifyExecutor {
    pub fn new(inbox: Inbox, clock: Arc<dyn Clock>) -> Self {
        Self { inbox, clock }
    }
}

#[async_trait::async_trait]
impl Executor for NotifyExecutor {
    fn tools(&self) -> &'static [&'static str] {
        &["notify"]
    }

    async fn dry_run(&self, call: &Call) -> steward_tools::Result<Plan> {
        let Call::Notify(args) = call else {
            return Err(wrong_tool(call));
        };
        let severity = args.severity.unwrap_or_default();
        Ok(Plan {
            summary: format!(
                "post a {} notification to the local inbox",
                severity_name(severity)
            ),
            steps: vec![format!("store {:?} in the inbox", args.message)],
            changes: true,
        })
    }

    async fn execute(&self, call: &Call) -> steward_tools::Result<Done> {
        let Call::Notify(args) = call else {
            return Err(wrong_tool(call));
        };
        let severity = severity_name(args.severity.unwrap_or_default());
        let id = self
            .inbox
            .post_at(
                &NewNotification {
                    severity: severity.to_string(),
                    message: args.message.clone(),
                    source: "tool:notify".into(),
                    incident: None,
                },
                self.clock.now(),
            )
            .await
            .map_err(|e| ToolError::new(ErrorKind::Unavailable, e.to_string()))?;
        let channels = self.inbox.channels_for(severity);
        Ok(Done {
            summary: if channels.is_empty() {
                format!("posted {severity} notification {id} to the inbox")
            } else {
                format!(
                    "posted {severity} notification {id} to the inbox and queued it for {}",
                    channels.join(", ")
                )
            },
            output: json!({"id": id, "severity": severity, "channel": "inbox", "queued": channels}),
            changed: true,
        })
    }
}

fn severity_name(s: steward_tools::args::Severity) -> &'static str {
    use steward_tools::args::Severity;
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

fn wrong_tool(call: &Call) -> ToolError {
    ToolError::new(
        ErrorKind::Internal,
        format!("notify executor was given {}", call.tool()),
    )
}
