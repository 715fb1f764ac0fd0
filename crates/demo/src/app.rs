use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::metrics::Counters;

#[derive(Debug, Clone)]
pub struct Settings {
    pub service: String,
    pub version: String,
    pub database_url: Option<String>,
    pub start_unhealthy: bool,
}

impl Settings {
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            service: var("SERVICE_NAME").unwrap_or_else(|| "demo".into()),
            version: var("DEMO_VERSION").unwrap_or_else(|| "dev".into()),
            database_url: var("DATABASE_URL"),
            start_unhealthy: var("DEMO_START_UNHEALTHY").is_some_and(|v| v != "0"),
        }
    }
}

#[derive(Debug)]
struct AppState {
    settings: Settings,
    healthy: AtomicBool,
    /// Set by `POST /admin/errors/on`: every request but health, metrics and admin answers
    /// 500. Kept in memory only, so a restart clears it (what `HighErrorRate`'s rule tries).
    errors: AtomicBool,
    counters: Counters,
    db: Option<PgPool>,
}

type Shared = Arc<AppState>;

pub async fn serve(addr: SocketAddr, settings: Settings) -> std::io::Result<()> {
    let db = match &settings.database_url {
        // Lazy: the app must come up (and say why the database fails) even when it is down.
        Some(url) => Some(
            PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(3))
                .connect_lazy(url)
                .map_err(|e| std::io::Error::other(format!("DATABASE_URL: {e}")))?,
        ),
        None => None,
    };
    let state = Arc::new(AppState {
        healthy: AtomicBool::new(!settings.start_unhealthy && !broken_marker().exists()),
        errors: AtomicBool::new(false),
        counters: Counters::default(),
        settings,
        db,
    });
    let app = Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .route("/items", post(add_item))
        .route("/admin/health/fail", post(fail))
        .route("/admin/health/ok", post(recover))
        .route("/admin/health/break", post(break_for_good))
        .route("/admin/errors/on", post(errors_on))
        .route("/admin/errors/off", post(errors_off))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log_request,
        ))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!(
        "steward-demo: {} {} listening on {addr}",
        state.settings.service, state.settings.version
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

/// Ctrl-C or SIGTERM: `docker stop` sends SIGTERM, and a PID 1 that ignores it makes every
/// stop and restart wait out Docker's 10 s grace period.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// One log line per request (health probes and scrapes excepted: they come every few
/// seconds), so `service_logs` has something real to read and filter; each answer is counted for `/metrics`. While errors are injected, the
/// app's own pages answer 500 (health, metrics and admin keep working, so the fault can be
/// seen and cleared).
async fn log_request(
    State(s): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let exempt = path == "/health" || path == "/metrics" || path.starts_with("/admin/");
    let resp = if s.errors.load(Ordering::SeqCst) && !exempt {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "injected by POST /admin/errors/on"})),
        )
            .into_response()
    } else {
        next.run(req).await
    };
    s.counters.record(&path, resp.status().as_u16());
    if path != "/health" && path != "/metrics" {
        eprintln!(
            "steward-demo: {method} {path} -> {}",
            resp.status().as_u16()
        );
    }
    resp
}

/// Prometheus text format (version 0.0.4).
async fn metrics(State(s): State<Shared>) -> impl axum::response::IntoResponse {
    let body = s.counters.render(
        s.healthy.load(Ordering::SeqCst),
        s.errors.load(Ordering::SeqCst),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

async fn errors_on(State(s): State<Shared>) -> Json<Value> {
    s.errors.store(true, Ordering::SeqCst);
    Json(json!({"errors": "on"}))
}

async fn errors_off(State(s): State<Shared>) -> Json<Value> {
    s.errors.store(false, Ordering::SeqCst);
    Json(json!({"errors": "off"}))
}

async fn health(State(s): State<Shared>) -> (StatusCode, Json<Value>) {
    let healthy = s.healthy.load(Ordering::SeqCst);
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let status = if healthy { "ok" } else { "unhealthy" };
    (
        code,
        Json(json!({"status": status, "version": s.settings.version})),
    )
}

async fn index(State(s): State<Shared>) -> (StatusCode, Json<Value>) {
    let mut body = json!({
        "service": s.settings.service,
        "version": s.settings.version,
        "healthy": s.healthy.load(Ordering::SeqCst),
    });
    let Some(db) = &s.db else {
        return (StatusCode::OK, Json(body));
    };
    match count_items(db).await {
        Ok(rows) => {
            body["rows"] = json!(rows);
            (StatusCode::OK, Json(body))
        }
        Err(e) => {
            body["db_error"] = json!(e.to_string());
            (StatusCode::BAD_GATEWAY, Json(body))
        }
    }
}

async fn add_item(State(s): State<Shared>) -> (StatusCode, Json<Value>) {
    let Some(db) = &s.db else {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "DATABASE_URL is not set"})),
        );
    };
    let added = async {
        ensure_table(db).await?;
        sqlx::query("INSERT INTO items DEFAULT VALUES")
            .execute(db)
            .await?;
        count_items(db).await
    };
    match added.await {
        Ok(rows) => (StatusCode::CREATED, Json(json!({"rows": rows}))),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": e.to_string()})),
        ),
    }
}

async fn fail(State(s): State<Shared>) -> Json<Value> {
    s.healthy.store(false, Ordering::SeqCst);
    Json(json!({"status": "unhealthy"}))
}

/// Fails `/health` and leaves a marker in the container's own filesystem, so the release
/// stays broken across restarts (only a rollback to another container, or `/ok`, heals it).
async fn break_for_good(State(s): State<Shared>) -> (StatusCode, Json<Value>) {
    s.healthy.store(false, Ordering::SeqCst);
    match std::fs::write(broken_marker(), b"broken\n") {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "broken"}))),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": format!("cannot write the marker: {e}")})),
        ),
    }
}

/// Where [`break_for_good`] leaves its marker: a directory the image gives the app's user,
/// in the container's writable layer.
fn broken_marker() -> &'static std::path::Path {
    std::path::Path::new("/var/lib/steward-demo/broken")
}

async fn recover(State(s): State<Shared>) -> Json<Value> {
    let _ = std::fs::remove_file(broken_marker());
    s.healthy.store(true, Ordering::SeqCst);
    Json(json!({"status": "ok"}))
}

async fn ensure_table(db: &PgPool) -> sqlx::Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS items (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(db)
    .await
    .map(|_| ())
}

async fn count_items(db: &PgPool) -> sqlx::Result<i64> {
    ensure_table(db).await?;
    sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(db)
        .await
}
