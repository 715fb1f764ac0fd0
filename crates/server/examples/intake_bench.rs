//! Load target for the intake benchmark (issue 16): serves `app()` on SQLite in a temp dir
//! with a trigger engine that writes each batch's events to the store in one transaction,
//! and, beside it, a bare axum handler that answers 202. `oha` drives both.
//!
//! ```text
//! cargo run -p steward-server --example intake_bench -- serve   # prints the oha commands
//! cargo run -p steward-server --example intake_bench -- audit   # audit append rate alone
//! ```
//!
//! oha sends the same headers with every request, but deliveries must be unique or every
//! request after the first is a replay. So in `serve` mode a layer in front of `app()` (this
//! example only, not the server) appends a per-request counter to `Steward-Delivery`. The
//! signature covers the body, not the delivery id, so it stays valid; the body and `t` are
//! fixed, which the 300 s tolerance allows for one run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is the report

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::path::Path;
use steward_audit::{AuditLog, AuditOptions, Store};
use steward_protocol::{AuditEntry, AuditKind, Origin, Timestamp};
use steward_server::hooks::{ensure_secret, sign, HookBook};

use steward_agent::approvals::ApprovalStore;
use steward_agent::{Orchestrator, Settings};
use steward_policy::{Guards, PolicySet};
use steward_server::{
    app, AppState, Check, Parts, PlatformView, RateLimit, Readiness, Submission, Triggers,
};
use steward_tools::{Executor, Registry, SystemClock};

/// The intake bench shows no platform.
#[derive(Debug)]
struct NoPlatform;

#[async_trait]
impl PlatformView for NoPlatform {
    async fn status(&self) -> Result<Value, String> {
        Ok(json!({}))
    }
}

/// A trigger engine stand-in that records every batch durably: one transaction per batch.
#[derive(Debug)]
struct StoreTriggers {
    store: Store,
}

#[async_trait]
impl Triggers for StoreTriggers {
    async fn submit(&self, batch: Vec<Submission>) -> Result<Vec<Value>, String> {
        let Store::Sqlite(pool) = &self.store else {
            return Err("the bench runs on SQLite".into());
        };
        let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
        // Multi-row inserts, as a real engine would batch them.
        for chunk in batch.chunks(200) {
            let rows = vec!["(?, ?, ?)"; chunk.len()].join(",");
            let sql =
                format!("INSERT INTO bench_events (request_id, principal, events) VALUES {rows}");
            let mut q = sqlx::query(&sql);
            for s in chunk {
                let events = serde_json::to_string(&s.events).map_err(|e| e.to_string())?;
                q = q.bind(&s.request_id).bind(&s.principal).bind(events);
            }
            q.execute(&mut *tx).await.map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(batch
            .iter()
            .map(|s| json!({"request_id": s.request_id, "status": "accepted"}))
            .collect())
    }

    async fn request(&self, _id: &str) -> Result<Option<Value>, String> {
        Ok(None)
    }
}

#[derive(Debug)]
struct Ready;

#[async_trait]
impl Readiness for Ready {
    async fn check(&self) -> Vec<Check> {
        vec![Check::ok("bench")]
    }
}

/// Appends `-<n>` to `Steward-Delivery` so every oha request is a new delivery.
async fn unique_delivery(counter: Arc<AtomicU64>, mut req: Request, next: Next) -> Response {
    if let Some(d) = req
        .headers()
        .get("steward-delivery")
        .and_then(|v| v.to_str().ok())
    {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(v) = HeaderValue::from_str(&format!("{d}-{n}")) {
            req.headers_mut().insert("steward-delivery", v);
        }
    }
    next.run(req).await
}

async fn open(dir: &std::path::Path) -> anyhow_like::Result<AuditLog> {
    let url = format!("sqlite://{}", dir.join("state.db").display());
    let store = Store::open(&url).await?;
    Ok(AuditLog::with_store(store, &dir.join("audit"), AuditOptions::default()).await?)
}

/// The example's own tiny error type (the workspace keeps anyhow to the binary).
mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

#[tokio::main]
async fn main() -> anyhow_like::Result<()> {
    // STEWARD_LOG=steward_server::commit=debug shows each batch's stages.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("STEWARD_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let mode = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    let dir = std::env::temp_dir().join(format!("steward-intake-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let audit = open(&dir).await?;
    let result = match mode.as_str() {
        "serve" => serve(&dir, audit).await,
        "audit" => audit_rate(audit).await,
        other => Err(format!("unknown mode {other:?}: serve or audit").into()),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn serve(dir: &std::path::Path, audit: AuditLog) -> anyhow_like::Result<()> {
    let store = audit.store().clone();
    if let Store::Sqlite(pool) = &store {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bench_events \
             (request_id TEXT PRIMARY KEY, principal TEXT NOT NULL, events TEXT NOT NULL)",
        )
        .execute(pool)
        .await?;
    }
    let hooks = HookBook::parse(
        "[hook.signup]\ndescription = \"bench\"\nfields = { subdomain = \"/subdomain\", plan = \"/plan\" }\n",
        "bench hooks",
    )?;
    let secrets_dir = dir.join("secrets/hooks");
    let secret = ensure_secret(&secrets_dir, "signup", false)?.secret;
    // The intake never reaches the orchestrator; it is here because the state holds one.
    let orchestrator = Orchestrator::start(
        Registry::new(Vec::<Arc<dyn Executor>>::new()),
        PolicySet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"))?,
        Guards::defaults(),
        Arc::new(audit.clone()),
        ApprovalStore::new(store.clone()),
        Arc::new(SystemClock),
        Settings::default(),
    )
    .await?;
    let state = AppState::new(Parts {
        audit,
        triggers: Arc::new(StoreTriggers {
            store: store.clone(),
        }),
        readiness: Arc::new(Ready),
        hooks,
        secrets_dir,
        orchestrator: Arc::new(orchestrator),
        platform: Arc::new(NoPlatform),
        rate_limit: RateLimit::default(),
        metrics: Arc::new(steward_server::metrics::Metrics::new().unwrap()),
        planner: Arc::new(steward_server::chat::NoPlanner),
    });
    let token = state.tokens().create("webhook:signup", None).await?.token;
    let body = r#"{"subdomain":"acme","plan":"small"}"#;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let signature = sign(secret.as_bytes(), t, body.as_bytes());

    let counter = Arc::new(AtomicU64::new(0));
    let intake = app(state.clone()).layer(axum::middleware::from_fn(move |req, next| {
        unique_delivery(counter.clone(), req, next)
    }));
    let bare = Router::new().route("/hooks/signup", post(|| async { StatusCode::ACCEPTED }));
    let l1 = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let l2 = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (a1, a2) = (l1.local_addr()?, l2.local_addr()?);
    let headers = format!(
        "-m POST -H 'Authorization: Bearer {token}' -H 'Steward-Signature: {signature}' \
         -H 'Steward-Delivery: bench' -H 'Content-Type: application/json' -d '{body}'"
    );
    println!("intake http://{a1}/hooks/signup   bare http://{a2}/hooks/signup");
    println!("oha -z 10s -c 50 --no-tui {headers} http://{a1}/hooks/signup");
    println!("oha -z 10s -c 50 --no-tui {headers} http://{a2}/hooks/signup");
    println!(
        "(valid until t+300 s = {}; Ctrl-C or SIGTERM ends it)",
        t + 300
    );
    let s1 = state.clone();
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let bare_task = tokio::spawn(async move { axum::serve(l2, bare).await });
    let served = axum::serve(l1, intake).with_graceful_shutdown(stop).await;
    bare_task.abort();
    s1.close().await?;
    if let Store::Sqlite(pool) = &store {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM bench_events")
            .fetch_one(pool)
            .await?;
        let (d,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM server_deliveries")
            .fetch_one(pool)
            .await?;
        println!("recorded: {n} submissions, {d} deliveries");
    }
    Ok(served?)
}

/// The audit log's append rate alone: 64 concurrent appenders for 5 s.
async fn audit_rate(audit: AuditLog) -> anyhow_like::Result<()> {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(5);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let audit = audit.clone();
            let done = done.clone();
            tokio::spawn(async move {
                while Instant::now() < until {
                    let entry = AuditEntry {
                        at: Timestamp(0),
                        kind: Some(AuditKind::Refused),
                        origin: Some(Origin::Webhook),
                        outcome: Some(json!({"bench": i})),
                        ..AuditEntry::default()
                    };
                    if audit.append(entry).await.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let n = done.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "audit appends: {n} in {secs:.2} s = {:.0}/s (64 concurrent appenders, SQLite)",
        n as f64 / secs
    );
    audit.close().await?;
    Ok(())
}
