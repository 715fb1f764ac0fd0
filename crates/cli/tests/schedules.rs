//! Scheduled backups end to end, through `steward serve`, the real PostgreSQL and the
//! shipped `nightly-backup` rule (narrowed to one test tenant by `backup_targets`):
//! - a night missed while serve was down runs once at start: backup, verify, then
//!   retention removes older verified backups of the same day, audited;
//! - serve killed (`kill -9`) during the scheduled backup: the next start records the run
//!   as interrupted and runs it again, and every backup listed is whole and verifies;
//! - a corrupted backup makes the scheduled verification fail loudly (a critical
//!   notification), and nothing is pruned.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::str::FromStr;
use std::time::{Duration, Instant};

use common::serve::*;
use common::*;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use steward_cli::config::Key;

/// A tenant schema in the tenants database with `rows` rows of ~200 bytes; dropped on drop.
struct Tenant {
    name: String,
    pg_url: String,
    database: String,
}

impl Tenant {
    async fn new(home: &TestHome, rows: i64) -> Tenant {
        let cfg = home.config();
        let pg_url = get(&cfg, Key::PgUrl);
        let database = get(&cfg, Key::TenantDatabase);
        let name = format!("sched{}", unique());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&pg_url)
            .await
            .unwrap();
        // A parallel test may create the tenants database at the same moment.
        let _ = sqlx::query(&format!("CREATE DATABASE \"{database}\""))
            .execute(&admin)
            .await;
        let tenant = Tenant {
            name,
            pg_url,
            database,
        };
        let pool = tenant.pool().await;
        let s = tenant.schema();
        sqlx::raw_sql(&format!(
            "CREATE SCHEMA \"{s}\"; \
             CREATE TABLE \"{s}\".events (id bigserial PRIMARY KEY, body text NOT NULL); \
             INSERT INTO \"{s}\".events (body) SELECT repeat(md5(g::text), 6) \
             FROM generate_series(1, {rows}) g;"
        ))
        .execute(&pool)
        .await
        .unwrap();
        tenant
    }

    fn schema(&self) -> String {
        format!("tenant_{}", self.name)
    }

    async fn pool(&self) -> sqlx::PgPool {
        let opts = PgConnectOptions::from_str(&self.pg_url)
            .unwrap()
            .database(&self.database);
        PgPoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap()
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema());
        let (url, db) = (self.pg_url.clone(), self.database.clone());
        // Drop runs outside the test's runtime.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let opts = PgConnectOptions::from_str(&url).unwrap().database(&db);
                if let Ok(pool) = PgPoolOptions::new().connect_with(opts).await {
                    let _ = sqlx::query(&sql).execute(&pool).await;
                }
            });
        })
        .join()
        .unwrap();
    }
}

/// The home's state store, migrated by a first `steward` command.
async fn state(home: &TestHome) -> SqlitePool {
    let out = home.run(&["incidents"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let opts = SqliteConnectOptions::new().filename(home.state_db());
    SqlitePool::connect_with(opts).await.unwrap()
}

/// Serve was last watching the schedule two days ago: the nights since were missed.
async fn last_watched_two_days_ago(home: &TestHome) {
    let two_days_ago = chrono::Utc::now().timestamp_millis() - 2 * 24 * 3600 * 1000;
    sqlx::query(
        "INSERT INTO schedule_runs (rule, slot_ms, target, attempt, started_ms) \
         VALUES ('nightly-backup', ?1, '', 0, ?1)",
    )
    .bind(two_days_ago)
    .execute(&state(home).await)
    .await
    .unwrap();
}

fn call(home: &TestHome, tool: &str, args: Value) -> Value {
    let out = home.run(&["call", tool, &args.to_string(), "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}{}", stdout(&out), stderr(&out)));
    v
}

fn backups(home: &TestHome, target: &str) -> Vec<Value> {
    let v = call(home, "db_backups_list", json!({ "target": target }));
    assert_eq!(v["ok"], true, "{v:#}");
    v["output"]["backups"].as_array().unwrap().clone()
}

/// The schedule's incidents of this home, oldest first, once none is still open.
async fn settled_schedule_incidents(home: &TestHome, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out = home.run(&["incidents", "--json"]);
        let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        let mut found: Vec<Value> = all
            .into_iter()
            .filter(|i| i["principal"] == "alert_rule:nightly-backup")
            .collect();
        let open = found
            .iter()
            .any(|i| ["open", "waiting_approval"].contains(&i["status"].as_str().unwrap()));
        if found.len() >= want && !open {
            found.reverse();
            return found
                .iter()
                .map(|i| {
                    let out = home.run(&["incident", i["id"].as_str().unwrap(), "--json"]);
                    serde_json::from_slice(&out.stdout).unwrap()
                })
                .collect();
        }
        assert!(Instant::now() < deadline, "{found:#?}\n{}", serve_log(home));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn backup_env(tenant: &Tenant) -> Vec<(&'static str, String)> {
    vec![
        ("STEWARD_MONITOR", "off".to_string()),
        ("STEWARD_BACKUP_TARGETS", tenant.name.clone()),
    ]
}

fn start(home: &TestHome, env: &[(&'static str, String)]) -> (Server, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    start_serve_with(home, &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_night_runs_once_at_start_then_retention_keeps_the_verified_newest() {
    let home = TestHome::new();
    let tenant = Tenant::new(&home, 1000).await;
    // Two backups from earlier today, both verified: retention keeps one per day.
    for _ in 0..2 {
        let b = call(&home, "db_backup", json!({ "target": tenant.name }));
        assert_eq!(b["ok"], true, "{b:#}");
        let id = b["output"]["backup"].as_str().unwrap();
        let v = call(&home, "db_verify_backup", json!({ "backup": id }));
        assert_eq!(v["ok"], true, "{v:#}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let before = backups(&home, &tenant.name);
    assert_eq!(before.len(), 2);
    last_watched_two_days_ago(&home).await;

    let (mut server, base) = start(&home, &backup_env(&tenant));
    let client = reqwest::Client::new();
    wait_ready(&client, &base, &mut server).await;
    let runs = settled_schedule_incidents(&home, 1).await;
    assert_eq!(runs.len(), 1, "two nights missed, one run: {runs:#?}");
    let run = &runs[0];
    assert_eq!(run["status"], "resolved", "{run:#}");
    assert_eq!(finished_tools(run), ["db_backup", "db_verify_backup"]);
    assert_eq!(run["event"]["labels"]["target"], json!(tenant.name));

    // Retention follows the verified run: only the newest verified backup of today stays.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let now = backups(&home, &tenant.name);
        if now.len() == 1 || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(after.len(), 1, "{after:#?}\n{}", serve_log(&home));
    let kept = after[0]["backup"].as_str().unwrap();
    assert!(
        before.iter().all(|b| b["backup"] != kept),
        "the new one is kept"
    );
    // The audit index commits shortly after the record is appended: search until it shows.
    let deadline = Instant::now() + Duration::from_secs(10);
    let audit = loop {
        let found = stdout(&home.run(&["audit", "search", "backup_retention", "--json"]));
        if found.contains("schedule:nightly-backup") || Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(audit.contains("schedule:nightly-backup"), "{audit}");
    for old in &before {
        assert!(audit.contains(old["backup"].as_str().unwrap()), "{audit}");
    }

    // Started again the same day: nothing was missed, nothing runs.
    stop_serve(server, &home).await;
    let (mut server, base) = start(&home, &backup_env(&tenant));
    wait_ready(&client, &base, &mut server).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(settled_schedule_incidents(&home, 1).await.len(), 1);
    stop_serve(server, &home).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_during_a_scheduled_backup_runs_it_again_and_leaves_no_half_backup() {
    let home = TestHome::new();
    // Large enough that dump and verification take seconds.
    let tenant = Tenant::new(&home, 400_000).await;
    last_watched_two_days_ago(&home).await;
    let db = state(&home).await;
    let (mut server, base) = start(&home, &backup_env(&tenant));
    let client = reqwest::Client::new();
    wait_ready(&client, &base, &mut server).await;

    // Kill -9 as soon as a step of the run has started.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM incident_steps s JOIN incidents i ON i.id = s.incident_id \
             WHERE i.principal = 'alert_rule:nightly-backup' AND s.finished_at_ms IS NULL",
        )
        .fetch_one(&db)
        .await
        .unwrap_or(0);
        if running > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", serve_log(&home));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut child = server.0.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut server, base) = start(&home, &backup_env(&tenant));
    wait_ready(&client, &base, &mut server).await;
    let runs = settled_schedule_incidents(&home, 2).await;
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_eq!(runs[0]["status"], "interrupted", "{:#}", runs[0]);
    assert_eq!(runs[1]["status"], "resolved", "{:#}", runs[1]);
    assert_eq!(runs[1]["event"]["fields"]["attempt"], 2);
    assert_eq!(
        runs[0]["event"]["fields"]["slot"],
        runs[1]["event"]["fields"]["slot"]
    );

    // Whatever the kill cut short is not a backup: every one listed is whole and verifies.
    let listed = backups(&home, &tenant.name);
    assert!(!listed.is_empty());
    for b in &listed {
        let v = call(&home, "db_verify_backup", json!({ "backup": b["backup"] }));
        assert_eq!(v["ok"], true, "{v:#}");
    }
    stop_serve(server, &home).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_backup_fails_the_scheduled_verification_loudly_and_nothing_is_pruned() {
    let home = TestHome::new();
    let tenant = Tenant::new(&home, 1000).await;
    let good = call(&home, "db_backup", json!({ "target": tenant.name }));
    let good = good["output"]["backup"].as_str().unwrap().to_string();
    assert_eq!(
        call(&home, "db_verify_backup", json!({ "backup": good }))["ok"],
        true
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let bad = call(&home, "db_backup", json!({ "target": tenant.name }));
    let path = bad["output"]["path"].as_str().unwrap().to_string();
    let bad = bad["output"]["backup"].as_str().unwrap().to_string();
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    // Tonight's schedule re-verifies the newest backup instead of taking one.
    std::fs::write(
        home.policies.join("rules/backups.toml"),
        format!(
            "[[rule]]\nid = \"nightly-backup\"\non = \"schedule:30 2 * * *\"\n\
             timezone = \"UTC\"\nfor_each = \"database\"\n\
             [[rule.step]]\ntool = \"db_verify_backup\"\nargs = {{ backup = \"{bad}\" }}\n\
             [[rule.example]]\nevent = {{ source = \"schedule\", name = \"nightly-backup\", \
             labels = {{ target = \"x\" }} }}\nsteps = [\"db_verify_backup\"]\n"
        ),
    )
    .unwrap();
    last_watched_two_days_ago(&home).await;
    let (mut server, base) = start(&home, &backup_env(&tenant));
    let client = reqwest::Client::new();
    wait_ready(&client, &base, &mut server).await;
    let runs = settled_schedule_incidents(&home, 1).await;
    assert_eq!(runs[0]["status"], "failed", "{:#}", runs[0]);
    let reason = runs[0]["close_reason"].as_str().unwrap();
    assert!(reason.contains("db_verify_backup"), "{reason}");

    let out = home.run(&["notifications", "--json"]);
    let notes: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n["severity"] == "critical" && n["incident"] == runs[0]["id"]),
        "a failed verification pages: {notes:#?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let listed: Vec<String> = backups(&home, &tenant.name)
        .iter()
        .map(|b| b["backup"].as_str().unwrap().to_string())
        .collect();
    assert!(
        listed.contains(&good) && listed.contains(&bad),
        "{listed:?}"
    );
    stop_serve(server, &home).await;
}
