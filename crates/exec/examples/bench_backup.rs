//! Benchmark: `db_backup` + `db_verify_backup` of a 100k-row tenant schema against plain
//! `pg_dump -Fc -n` + `pg_restore` into a scratch database (created and dropped, as the
//! verification does). The goal of issue 3 is a ratio of at most 1.2.
//!
//! Runs against the services scripts/setup started:
//!   cargo run -p steward-exec --example bench_backup -- [runs] [rows]
//! (defaults: 10 runs, 100000 rows; dependencies are optimized in the dev profile and the
//! work is in PostgreSQL). The two variants alternate order run by run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report

#[path = "../tests/common/mod.rs"]
mod common;

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use steward_exec::backup::pgtools::PgTools;
use steward_exec::backup::BackupExecutor;
use steward_tools::Executor;

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(10);
    let rows: i64 = args.next().map(|a| a.parse().unwrap()).unwrap_or(100_000);

    let te = common::test_env().await;
    let env = te.env.clone();
    let tenant = te.name("bench");
    let schema = format!("tenant_{}", tenant.replace('-', "_"));
    let db = env.config.tenant_database.clone();
    let admin = env.admin_pool().await.unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(db.clone())
            .fetch_one(admin)
            .await
            .unwrap();
    if !exists {
        let _ = sqlx::query(&format!("CREATE DATABASE \"{db}\""))
            .execute(admin)
            .await;
    }
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            PgConnectOptions::from_str(&env.config.pg_url)
                .unwrap()
                .database(&db),
        )
        .await
        .unwrap();
    let customers = (rows / 10).max(1);
    let orders = rows - customers;
    sqlx::raw_sql(&format!(
        r#"CREATE SCHEMA "{schema}";
           CREATE TABLE "{schema}".customers (id bigint PRIMARY KEY, name text NOT NULL,
               email text, created timestamptz NOT NULL DEFAULT '2026-01-01');
           CREATE TABLE "{schema}".orders (id bigint PRIMARY KEY,
               customer_id bigint NOT NULL REFERENCES "{schema}".customers(id),
               amount numeric(12,2), status text, placed timestamptz NOT NULL DEFAULT '2026-01-02');
           CREATE INDEX ON "{schema}".orders (customer_id);
           INSERT INTO "{schema}".customers (id, name, email)
               SELECT g, 'customer ' || g, 'c' || g || '@example.test' FROM generate_series(1, {customers}) g;
           INSERT INTO "{schema}".orders (id, customer_id, amount, status)
               SELECT g, 1 + g % {customers}, (g % 1000) * 1.37, (ARRAY['new','paid','sent'])[1 + g % 3]
               FROM generate_series(1, {orders}) g;
           ANALYZE "{schema}".customers; ANALYZE "{schema}".orders;"#
    ))
    .execute(&pool)
    .await
    .unwrap();

    let ex = BackupExecutor::new(env.clone());
    let tools = PgTools::discover(&env).await.unwrap();
    let plain_dir = te.state_dir.join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();

    let mut steward = Vec::new();
    let mut backup_only = Vec::new();
    let mut verify_only = Vec::new();
    let mut plain = Vec::new();
    let mut size = 0;
    let mut plain_size = 0;

    for run in 0..runs {
        for variant in if run % 2 == 0 { [0, 1] } else { [1, 0] } {
            if variant == 0 {
                let t0 = Instant::now();
                let done = ex
                    .execute(&common::call("db_backup", json!({"target": tenant})))
                    .await
                    .unwrap();
                let t1 = Instant::now();
                let id = done.output["backup"].as_str().unwrap().to_string();
                ex.execute(&common::call("db_verify_backup", json!({"backup": id})))
                    .await
                    .unwrap();
                let t2 = Instant::now();
                steward.push(t2 - t0);
                backup_only.push(t1 - t0);
                verify_only.push(t2 - t1);
                size = done.output["size"].as_u64().unwrap();
            } else {
                let file = plain_dir.join(format!("{run}.dump"));
                let scratch = format!("steward_bench_{}_{run}", te.id);
                let t0 = Instant::now();
                let dump = tools.command(
                    "pg_dump",
                    &db,
                    &[
                        "--format=custom".into(),
                        format!("--schema={schema}"),
                        format!("--file={}", file.display()),
                    ],
                );
                tools.run(&dump, "plain pg_dump").await.unwrap();
                sqlx::query(&format!("CREATE DATABASE \"{scratch}\" TEMPLATE template0"))
                    .execute(admin)
                    .await
                    .unwrap();
                let restore = tools.command(
                    "pg_restore",
                    &scratch,
                    &[
                        "--no-owner".into(),
                        "--no-privileges".into(),
                        file.display().to_string(),
                    ],
                );
                tools.run(&restore, "plain pg_restore").await.unwrap();
                sqlx::query(&format!("DROP DATABASE \"{scratch}\" WITH (FORCE)"))
                    .execute(admin)
                    .await
                    .unwrap();
                plain.push(t0.elapsed());
                plain_size = std::fs::metadata(&file).unwrap().len();
                std::fs::remove_file(&file).unwrap();
            }
        }
    }

    let _ = sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&pool)
        .await;
    te.cleanup().await;

    let s = median(&mut steward);
    let p = median(&mut plain);
    let spread = |v: &[Duration]| format!("min {:.1}, max {:.1}", ms(v[0]), ms(v[v.len() - 1]));
    println!("rows: {rows} ({customers} customers, {orders} orders), runs: {runs}");
    println!("dump size: steward {size} B, plain {plain_size} B");
    println!(
        "db_backup median {:.1} ms, db_verify_backup median {:.1} ms",
        ms(median(&mut backup_only)),
        ms(median(&mut verify_only))
    );
    println!(
        "steward (db_backup + db_verify_backup) median: {:.1} ms ({})",
        ms(s),
        spread(&steward)
    );
    println!(
        "plain (pg_dump + createdb + pg_restore + dropdb) median: {:.1} ms ({})",
        ms(p),
        spread(&plain)
    );
    println!(
        "ratio: {:.3} (goal <= 1.2)",
        s.as_secs_f64() / p.as_secs_f64()
    );
}
