//! Audit log benchmarks: sustained append rate on SQLite and PostgreSQL, batch append, and
//! `verify` of a large log. Each figure is the median of several runs on a fresh log.
//!
//! ```text
//! cargo run -p steward-audit --example bench_audit -- [append_records=20000] [runs=3] \
//!     [verify_records=1000000] [backends=sqlite,postgres] [index=live|deferred]
//! ```
//!
//! PostgreSQL runs use a scratch database on the server `scripts/setup` started (admin URL
//! from `<home>/config.toml`), dropped afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use steward_audit::{AuditLog, AuditOptions, Store};
use steward_protocol::{Actor, AuditEntry, AuditKind, Decision, IntentId, Origin, Timestamp};

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T
where
    T::Err: std::fmt::Debug,
{
    std::env::args()
        .nth(n)
        .map(|a| a.parse().unwrap())
        .unwrap_or(default)
}

fn pg_url() -> String {
    let home = match std::env::var("STEWARD_HOME") {
        Ok(h) if !h.is_empty() => PathBuf::from(h),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.steward"),
    };
    let text = std::fs::read_to_string(home.join("config.toml")).unwrap();
    let table: HashMap<String, toml::Value> = toml::from_str(&text).unwrap();
    table["pg_url"].as_str().unwrap().to_string()
}

/// A fresh state URL and audit dir; `drop` removes them.
struct Place {
    url: String,
    dir: PathBuf,
    tmp: PathBuf,
    pg_db: Option<String>,
}

impl Place {
    async fn new(backend: &str) -> Place {
        let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let tmp = std::env::temp_dir().join(format!("steward-audit-bench-{id}"));
        std::fs::create_dir_all(&tmp).unwrap();
        let dir = tmp.join("audit");
        if backend == "postgres" {
            let db = format!("steward_audit_bench_{id}");
            let admin = sqlx::PgPool::connect(&pg_url()).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {db}"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let base = pg_url();
            let cut = base.rfind('/').unwrap();
            Place {
                url: format!("{}/{db}", &base[..cut]),
                dir,
                tmp,
                pg_db: Some(db),
            }
        } else {
            Place {
                url: format!("sqlite://{}", tmp.join("state.db").display()),
                dir,
                tmp,
                pg_db: None,
            }
        }
    }

    async fn open(&self, opts: AuditOptions) -> AuditLog {
        let store = Store::open(&self.url).await.unwrap();
        AuditLog::with_store(store, &self.dir, opts).await.unwrap()
    }

    async fn cleanup(self) {
        if let Some(db) = &self.pg_db {
            let admin = sqlx::PgPool::connect(&pg_url()).await.unwrap();
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
        for _ in 0..50 {
            if std::fs::remove_dir_all(&self.tmp).is_ok() || !self.tmp.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A record of typical size (about 600 bytes of canonical JSON).
fn entry(n: u64) -> AuditEntry {
    let services = ["rentguy", "psra", "vps-manager", "wpcs", "n8n", "langgraph"];
    let service = services[n as usize % services.len()];
    AuditEntry {
        at: Timestamp(1_700_000_000_000 + n as i64 * 10),
        kind: Some(if n.is_multiple_of(2) {
            AuditKind::ExecBegin
        } else {
            AuditKind::ExecEnd
        }),
        intent_id: Some(IntentId(format!("intent-{:08}", n / 2))),
        actor: Some(Actor::User {
            name: "alice".into(),
        }),
        origin: Some(Origin::Chat),
        intent_text: Some(format!(
            "restart {service} please, it looks stuck since the deploy"
        )),
        tool: Some("service_restart".into()),
        args: Some(json!({"service": service})),
        decision: Some(Decision::Allow {
            policies: vec!["operators-write".into(), "default-read".into()],
        }),
        plan: Some(
            json!({"steps": [format!("restart container {service}"), "wait until healthy"]}),
        ),
        outcome: (n % 2 == 1).then(|| json!({"status": "healthy", "restarts": n % 7})),
        duration_ms: (n % 2 == 1).then_some(1200),
        refers_to: (n % 2 == 1).then_some(n.saturating_sub(1)),
        ..Default::default()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn bench_append(backend: &str, records: u64, runs: usize, live_index: bool) {
    let mut rates = Vec::new();
    let mut concurrent_rates = Vec::new();
    let mut batch_rates = Vec::new();
    for run in 1..=runs {
        let place = Place::new(backend).await;
        let opts = if live_index {
            AuditOptions::default()
        } else {
            // Indexing deferred to the first search: shows what live indexing costs.
            AuditOptions {
                index_interval: Duration::from_secs(86_400),
                ..AuditOptions::default()
            }
        };
        let log = place.open(opts).await;

        // One caller appending one record at a time, awaiting each.
        let t = Instant::now();
        for i in 0..records {
            log.append(entry(i)).await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        let rate = records as f64 / secs;
        // The index kept up: the first search commits what is pending and finds records.
        let t_search = Instant::now();
        let hits = log.search("rentguy", None, 5).await.unwrap();
        let search_ms = t_search.elapsed().as_secs_f64() * 1000.0;
        assert!(!hits.is_empty());

        // Sixteen callers at once (concurrent requests): group commit shares transactions.
        let callers = 16;
        let t = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|c| {
                let log = log.clone();
                tokio::spawn(async move {
                    for i in 0..records / callers {
                        log.append(entry(c * records + i)).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let concurrent_rate = (records / callers * callers) as f64 / t.elapsed().as_secs_f64();

        // append_batch of 1000.
        let t = Instant::now();
        let batch: Vec<AuditEntry> = (0..records).map(entry).collect();
        for chunk in batch.chunks(1000) {
            log.append_batch(chunk.to_vec()).await.unwrap();
        }
        let batch_rate = records as f64 / t.elapsed().as_secs_f64();
        let report = log.verify().await.unwrap();
        assert!(report.ok, "{report:#?}");
        println!(
            "{backend}{}: run {run}: append {rate:.0} records/s ({records} in {secs:.2} s, one \
             caller); first search after {search_ms:.1} ms; {callers} callers {concurrent_rate:.0} \
             records/s; append_batch(1000) {batch_rate:.0} records/s",
            if live_index { "" } else { " (index deferred)" }
        );
        rates.push(rate);
        concurrent_rates.push(concurrent_rate);
        batch_rates.push(batch_rate);
        drop(log);
        place.cleanup().await;
    }
    println!(
        "{backend}: MEDIAN over {runs} runs: append {:.0} records/s (one caller), {:.0} \
         records/s (16 callers), append_batch {:.0} records/s",
        median(rates),
        median(concurrent_rates),
        median(batch_rates)
    );
}

async fn bench_verify(backend: &str, records: u64, runs: usize) {
    let place = Place::new(backend).await;
    // No index work during the measurement: the background task never ticks again.
    let opts = AuditOptions {
        index_interval: Duration::from_secs(86_400),
        checkpoint_interval: Duration::from_secs(86_400),
        checkpoint_every: 0,
    };
    let log = place.open(opts).await;
    let t = Instant::now();
    let mut n = 0;
    while n < records {
        let k = (records - n).min(5_000);
        log.append_batch((n..n + k).map(entry).collect())
            .await
            .unwrap();
        n += k;
    }
    log.checkpoint().await.unwrap();
    println!(
        "{backend}: setup: {records} records by append_batch in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut secs = Vec::new();
    for run in 1..=runs {
        let t = Instant::now();
        let report = log.verify().await.unwrap();
        let s = t.elapsed().as_secs_f64();
        assert!(report.ok && report.records == records, "{report:#?}");
        println!("{backend}: run {run}: verify of {records} records in {s:.2} s");
        secs.push(s);
    }
    println!(
        "{backend}: MEDIAN verify {:.2} s for {records} records over {runs} runs",
        median(secs)
    );
    let t = Instant::now();
    let indexed = log.rebuild_index().await.unwrap();
    println!(
        "{backend}: rebuild_index of {indexed} records in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(log);
    place.cleanup().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let records: u64 = arg(1, 20_000);
    let runs: usize = arg(2, 3);
    let verify_records: u64 = arg(3, 1_000_000);
    let backends: String = arg(4, "sqlite,postgres".to_string());
    let live_index = arg(5, "live".to_string()) != "deferred";
    for backend in backends.split(',') {
        bench_append(backend, records, runs, live_index).await;
    }
    if verify_records > 0 {
        for backend in backends.split(',') {
            bench_verify(backend, verify_records, runs).await;
        }
    }
}
