//! Shared set-up of the audit tests: a fresh log on SQLite (a temp file) or on a scratch
//! PostgreSQL database of the server `scripts/setup` started, removed afterwards even when
//! the test panics.

#![allow(dead_code)] // each test binary uses a different subset

/// Generates one test per backend (SQLite, PostgreSQL) for each scenario `async fn(&Place)`.
/// The test file must have `Backend` in scope.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::common::scoped(super::Backend::Sqlite, async |p| super::$name(p).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::common::scoped(super::Backend::Postgres, async |p| super::$name(p).await).await;
                }
            )*
        }
    };
}

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use futures_util::FutureExt;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use steward_audit::{AuditLog, AuditOptions, Backend, Store};
use steward_protocol::{Actor, AuditEntry, AuditKind, Origin, Timestamp};

pub fn home() -> PathBuf {
    match std::env::var("STEWARD_HOME") {
        Ok(h) if !h.is_empty() => PathBuf::from(h),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.steward"),
    }
}

/// The admin URL `scripts/setup` wrote to `<home>/config.toml`.
pub fn pg_url() -> String {
    let path = home().join("config.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup first", path.display()));
    let table: HashMap<String, toml::Value> = toml::from_str(&text).unwrap();
    table["pg_url"].as_str().unwrap().to_string()
}

pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// A place for one test's log: a state URL and an audit dir, both fresh.
pub struct Place {
    pub backend: Backend,
    pub url: String,
    pub dir: PathBuf,
    pub tmp: PathBuf,
    pg_db: Option<String>,
}

impl Place {
    pub async fn new(backend: Backend) -> Place {
        let id = unique();
        let tmp = std::env::temp_dir().join(format!("steward-audit-test-{id}"));
        std::fs::create_dir_all(&tmp).unwrap();
        let dir = tmp.join("audit");
        match backend {
            Backend::Sqlite => Place {
                backend,
                url: format!("sqlite://{}", tmp.join("state.db").display()),
                dir,
                tmp,
                pg_db: None,
            },
            Backend::Postgres => {
                let db = format!("steward_audit_test_{id}");
                let admin = admin_pool().await;
                sqlx::query(&format!("CREATE DATABASE {db}"))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let base = pg_url();
                let cut = base.rfind('/').unwrap();
                Place {
                    backend,
                    url: format!("{}/{db}", &base[..cut]),
                    dir,
                    tmp,
                    pg_db: Some(db),
                }
            }
        }
    }

    pub async fn open(&self) -> AuditLog {
        self.open_with(AuditOptions::default()).await
    }

    /// Opens a log on this place. Right after another log on the same dir was dropped in
    /// this process, its writer's threads may still be removing index files for a few ms,
    /// and an open can read one half-gone: that, and only that, is retried for up to a second.
    pub async fn open_with(&self, opts: AuditOptions) -> AuditLog {
        for _ in 0..50 {
            let store = Store::open(&self.url).await.unwrap();
            match AuditLog::with_store(store, &self.dir, opts.clone()).await {
                Ok(log) => return log,
                Err(steward_audit::Error::Index(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("the index stayed unreadable after the previous log was dropped");
    }

    pub async fn cleanup(&self) {
        if let Some(db) = &self.pg_db {
            let admin = admin_pool().await;
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
        // The dropped log's index threads and background task may still be finishing a
        // write for a moment; retry until the folder is really gone.
        for _ in 0..50 {
            if std::fs::remove_dir_all(&self.tmp).is_ok() || !self.tmp.exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

async fn admin_pool() -> sqlx::PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(&pg_url())
        .await
        .unwrap()
}

/// Runs `body` on a fresh [`Place`] and removes it afterwards, even when `body` panics.
pub async fn scoped(backend: Backend, body: impl AsyncFnOnce(&Place)) {
    let place = Place::new(backend).await;
    let outcome = std::panic::AssertUnwindSafe(body(&place))
        .catch_unwind()
        .await;
    place.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Runs raw SQL against the log's store: how the tests tamper with it.
pub async fn exec(store: &Store, sql: &str) -> u64 {
    match store {
        Store::Sqlite(pool) => sqlx::query(sql)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
        Store::Postgres(pool) => sqlx::query(sql)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
    }
}

/// Every stored row rendered as text, for grepping.
pub async fn dump(store: &Store) -> String {
    let sql =
        "SELECT seq, at_ms, kind, refers_to, entry, prev_hash, hash FROM audit_log ORDER BY seq";
    type R = (
        i64,
        i64,
        Option<String>,
        Option<i64>,
        String,
        String,
        String,
    );
    let rows: Vec<R> = match store {
        Store::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        Store::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    };
    rows.iter().map(|r| format!("{r:?}\n")).collect()
}

/// A typical entry: `n` varies the service and time.
pub fn entry(n: u64) -> AuditEntry {
    let services = ["rentguy", "psra", "vps-manager", "wpcs"];
    AuditEntry {
        at: Timestamp(1_700_000_000_000 + n as i64 * 1000),
        kind: Some(AuditKind::ExecEnd),
        actor: Some(Actor::User {
            name: "alice".into(),
        }),
        origin: Some(Origin::Chat),
        tool: Some("service_restart".into()),
        args: Some(json!({"service": services[n as usize % services.len()]})),
        outcome: Some(json!({"ok": true, "restarted": n})),
        duration_ms: Some(120),
        ..Default::default()
    }
}

pub async fn fill(log: &AuditLog, n: u64) {
    for i in 1..=n {
        log.append(entry(i)).await.unwrap();
    }
}

/// Every file under `dir`, concatenated.
pub fn read_tree(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(read_tree(&p));
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.extend(bytes);
            }
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Waits until `log` owns its index writer. Only needed right after dropping another log on
/// the same dir in the same process: tantivy releases the writer lock a few ms after drop.
pub async fn wait_writable(log: &AuditLog) {
    for _ in 0..200 {
        log.search("*", None, 1).await.unwrap();
        if log.index_status().1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the index writer lock was never released");
}
