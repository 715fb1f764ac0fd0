//! The backup tools against the real PostgreSQL (and Docker for a platform service's
//! database): backup, list, verify, restore, corruption on disk, hostile input, dry runs.
//!
//! Each test makes its own tenant schema (`tenant_t_<id>_...`) or scratch database and
//! removes it, with its state dir, at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::CreateContainerOptionsBuilder;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use steward_exec::backup::{self, BackupExecutor};
use steward_exec::env::Env;
use steward_protocol::Timestamp;
use steward_tools::{Call, ErrorKind, Executor, ManualClock, SystemClock};

use common::{call, test_env, test_env_with_clock, TestEnv, TEST_LABEL};

fn exec(te: &TestEnv) -> BackupExecutor {
    BackupExecutor::new(te.env.clone())
}

async fn pool_on(env: &Env, db: &str) -> PgPool {
    let opts = PgConnectOptions::from_str(&env.config.pg_url)
        .unwrap()
        .database(db);
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(opts)
        .await
        .unwrap()
}

/// The tenants database, created when missing (tests may run before any tenant exists).
async fn tenants_pool(env: &Env) -> PgPool {
    let admin = env.admin_pool().await.unwrap();
    let db = env.config.tenant_database.clone();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(db.clone())
            .fetch_one(admin)
            .await
            .unwrap();
    if !exists {
        // A parallel test may create it at the same moment; either way it exists after.
        let _ = sqlx::query(&format!("CREATE DATABASE \"{db}\""))
            .execute(admin)
            .await;
    }
    pool_on(env, &db).await
}

/// A tenant schema with three tables and known rows: customers 5, orders 7, notes 3.
async fn make_tenant(te: &TestEnv, suffix: &str) -> (String, String, PgPool) {
    let tenant = te.name(suffix);
    let schema = format!("tenant_{}", tenant.replace('-', "_"));
    let pool = tenants_pool(&te.env).await;
    let sql = format!(
        r#"
        CREATE SCHEMA "{s}";
        CREATE TABLE "{s}".customers (id serial PRIMARY KEY, name text NOT NULL);
        CREATE TABLE "{s}".orders (
            id serial PRIMARY KEY,
            customer_id int NOT NULL REFERENCES "{s}".customers(id),
            amount numeric(10,2),
            placed timestamptz NOT NULL DEFAULT '2026-01-02 03:04:05+00');
        CREATE TABLE "{s}".notes (body text, data bytea, tags text[], meta jsonb, ratio float8,
            legacy json);
        INSERT INTO "{s}".customers (name) VALUES ('ann'), ('bob'), ('cy'), ('dee'), ('eve');
        INSERT INTO "{s}".orders (customer_id, amount)
            SELECT 1 + (g % 5), g * 1.25 FROM generate_series(1, 7) g;
        INSERT INTO "{s}".notes VALUES
            ('tab	and
newline', '\xdeadbeef', '{{a,b}}', '{{"k": [1, 2]}}', 0.1, '[1, 2]'),
            (NULL, NULL, NULL, NULL, NULL, NULL),
            ('quote '' and \ back', '\x00', '{{}}', '{{}}', 1e300, '{{"a" : 1}}');
        "#,
        s = schema
    );
    sqlx::raw_sql(&sql).execute(&pool).await.unwrap();
    (tenant, schema, pool)
}

async fn drop_schema(pool: &PgPool, schema: &str) {
    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(pool)
        .await;
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn rows_of(output: &Value) -> HashMap<String, i64> {
    output["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["rows"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn database_exists(env: &Env, db: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(db.to_string())
        .fetch_one(env.admin_pool().await.unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn backup_list_verify_and_restore_a_tenant_schema() {
    let te = test_env().await;
    let (tenant, schema, pool) = make_tenant(&te, "acme").await;
    let ex = exec(&te);

    // Backup: the manifest counts every table exactly and hashes the file it describes.
    let done = ex
        .execute(&call("db_backup", json!({"target": tenant})))
        .await
        .unwrap();
    assert!(done.changed);
    let id = done.output["backup"].as_str().unwrap().to_string();
    assert!(id.starts_with(&format!("{tenant}-")), "{id}");
    assert_eq!(done.output["kind"], "schema");
    assert_eq!(done.output["schema"], schema.as_str());
    let rows = rows_of(&done.output);
    assert_eq!(rows[&format!("{schema}.customers")], 5);
    assert_eq!(rows[&format!("{schema}.orders")], 7);
    assert_eq!(rows[&format!("{schema}.notes")], 3);
    assert_eq!(rows.len(), 3);
    let dump_path = done.output["path"].as_str().unwrap().to_string();
    let dump = std::fs::read(&dump_path).unwrap();
    assert_eq!(&dump[..5], b"PGDMP", "custom-format archive");
    assert_eq!(done.output["sha256"], sha256_hex(&dump));
    assert_eq!(done.output["size"], dump.len() as u64);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(done.output["manifest"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(manifest["sha256"], sha256_hex(&dump));
    assert_eq!(manifest["target"], tenant.as_str());
    assert_eq!(manifest["database"], te.env.config.tenant_database.as_str());
    // Column hashes where every type has one; row text for notes (json has no hash).
    let checksum = |name: &str| {
        manifest["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["checksum"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(checksum("customers").starts_with("record:"), "{manifest}");
    assert!(checksum("notes").starts_with("text:"), "{manifest}");
    // Only steward can read the dump: it holds the tenant's rows.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dump_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "dump mode {mode:o}");

    // List: the backup, not yet verified.
    let list = ex
        .execute(&call("db_backups_list", json!({"target": tenant})))
        .await
        .unwrap();
    let backups = list.output["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0]["backup"], id.as_str());
    assert_eq!(backups[0]["size"], dump.len() as u64);
    assert!(backups[0]["verified"].is_null());

    // Verify: restored into a scratch database that is gone afterwards.
    let verified = ex
        .execute(&call("db_verify_backup", json!({"backup": id})))
        .await
        .unwrap();
    assert!(!verified.changed);
    assert_eq!(verified.output["ok"], true);
    let checks = verified.output["tables"].as_array().unwrap();
    assert_eq!(checks.len(), 3);
    assert!(checks
        .iter()
        .all(|c| c["rows_ok"] == true && c["checksum_ok"] == true));
    let scratch = verified.output["scratch_database"].as_str().unwrap();
    assert!(scratch.starts_with("steward_verify_"));
    assert!(
        !database_exists(&te.env, scratch).await,
        "{scratch} left behind"
    );
    let in_dir = std::fs::read_dir(te.state_dir.join("backups").join(&tenant))
        .unwrap()
        .count();
    assert_eq!(
        in_dir, 2,
        "verifying reads the backup dir and writes nothing into it"
    );
    let list = ex
        .execute(&call("db_backups_list", json!({"target": tenant})))
        .await
        .unwrap();
    assert_eq!(list.output["backups"][0]["verified"]["ok"], true);

    // Damage: delete and change rows, add a table the backup never had.
    sqlx::raw_sql(&format!(
        r#"DELETE FROM "{schema}".orders WHERE id > 2;
           UPDATE "{schema}".customers SET name = 'mallory' WHERE id = 1;
           DELETE FROM "{schema}".notes;
           CREATE TABLE "{schema}".intruder (x int);"#
    ))
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(count(&pool, &format!("\"{schema}\".orders")).await, 2);

    // Restore: a safety backup first, then the data as it was, checked against the manifest.
    let restored = ex
        .execute(&call("db_restore", json!({"target": tenant, "backup": id})))
        .await
        .unwrap();
    assert!(restored.changed);
    assert_eq!(count(&pool, &format!("\"{schema}\".orders")).await, 7);
    assert_eq!(count(&pool, &format!("\"{schema}\".notes")).await, 3);
    let name: String = sqlx::query_scalar(&format!(
        "SELECT name FROM \"{schema}\".customers WHERE id = 1"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(name, "ann");
    let intruder: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'intruder')",
    )
    .bind(schema.clone())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(!intruder, "objects made after the backup are replaced too");
    // The serial sequences came back with the data: new rows do not collide.
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".customers (name) VALUES ('fay')"
    ))
    .execute(&pool)
    .await
    .unwrap();

    let safety = restored.output["safety_backup"]
        .as_str()
        .unwrap()
        .to_string();
    let in_dir: Vec<String> = std::fs::read_dir(te.state_dir.join("backups").join(&tenant))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        in_dir.len(),
        4,
        "two backups, no restore leftovers: {in_dir:?}"
    );
    assert_ne!(safety, id);
    let list = ex
        .execute(&call("db_backups_list", json!({"target": tenant})))
        .await
        .unwrap();
    let backups = list.output["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 2);
    assert_eq!(backups[0]["backup"], safety.as_str(), "newest first");
    assert!(backups[0]["reason"].as_str().unwrap().contains("safety"));
    // The safety backup holds the damaged state, intruder table included.
    assert_eq!(
        backups[0]["rows"], 7,
        "orders 2 + customers 5 + notes 0 + intruder 0"
    );
    assert_eq!(backups[0]["tables"], 4);

    // The helper tenant_destroy uses: a backup id the list knows.
    let final_id = backup::backup_tenant_schema(&te.env, &tenant)
        .await
        .unwrap();
    let list = ex
        .execute(&call("db_backups_list", json!({"target": tenant})))
        .await
        .unwrap();
    assert_eq!(list.output["backups"][0]["backup"], final_id.as_str());

    drop_schema(&pool, &schema).await;
    te.cleanup().await;
}

#[tokio::test]
async fn a_corrupted_dump_fails_verification_and_is_never_restored() {
    let te = test_env().await;
    let (tenant, schema, pool) = make_tenant(&te, "rot").await;
    let ex = exec(&te);
    let done = ex
        .execute(&call("db_backup", json!({"target": tenant})))
        .await
        .unwrap();
    let id = done.output["backup"].as_str().unwrap().to_string();
    let path = done.output["path"].as_str().unwrap().to_string();

    // Flip one byte in the middle of the dump.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let err = ex
        .execute(&call("db_verify_backup", json!({"backup": id})))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Failed, "{err}");
    assert!(err.message.contains("sha256 mismatch"), "{err}");
    assert!(err.message.contains(&id), "{err}");

    let list = ex
        .execute(&call("db_backups_list", json!({"target": tenant})))
        .await
        .unwrap();
    assert_eq!(list.output["backups"][0]["verified"]["ok"], false);
    assert!(list.output["backups"][0]["verified"]["message"]
        .as_str()
        .unwrap()
        .contains("sha256 mismatch"));

    // Restore refuses the corrupted file before touching anything (no safety backup taken).
    sqlx::query(&format!("DELETE FROM \"{schema}\".orders WHERE id = 7"))
        .execute(&pool)
        .await
        .unwrap();
    let err = ex
        .execute(&call("db_restore", json!({"target": tenant, "backup": id})))
        .await
        .unwrap_err();
    assert!(err.message.contains("sha256 mismatch"), "{err}");
    assert_eq!(count(&pool, &format!("\"{schema}\".orders")).await, 6);
    let list = ex
        .execute(&call("db_backups_list", json!({"target": tenant})))
        .await
        .unwrap();
    assert_eq!(list.output["backups"].as_array().unwrap().len(), 1);

    drop_schema(&pool, &schema).await;
    te.cleanup().await;
}

/// Damage the sha256 cannot see (the manifest "fixed" to match a truncated file, or a
/// manifest whose counts were edited): the restore into the scratch database catches it.
#[tokio::test]
async fn damage_behind_a_matching_sha256_is_caught_by_the_scratch_restore() {
    let te = test_env().await;
    let (tenant, schema, pool) = make_tenant(&te, "trunc").await;
    let ex = exec(&te);
    let done = ex
        .execute(&call("db_backup", json!({"target": tenant})))
        .await
        .unwrap();
    let id = done.output["backup"].as_str().unwrap().to_string();
    let path = done.output["path"].as_str().unwrap().to_string();
    let manifest_path = done.output["manifest"].as_str().unwrap().to_string();
    let original: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();

    // 1. A manifest that claims a different row count for one table.
    let mut edited = original.clone();
    let tables = edited["tables"].as_array_mut().unwrap();
    let orders = tables.iter_mut().find(|t| t["name"] == "orders").unwrap();
    orders["rows"] = json!(8);
    std::fs::write(&manifest_path, serde_json::to_vec(&edited).unwrap()).unwrap();
    let err = ex
        .execute(&call("db_verify_backup", json!({"backup": id})))
        .await
        .unwrap_err();
    assert!(
        err.message
            .contains(&format!("{schema}.orders has 7 rows, the manifest says 8")),
        "{err}"
    );

    // 2. A manifest with the right count but another checksum: content differs.
    let mut edited = original.clone();
    let tables = edited["tables"].as_array_mut().unwrap();
    let notes = tables.iter_mut().find(|t| t["name"] == "notes").unwrap();
    notes["checksum"] = json!("12345");
    std::fs::write(&manifest_path, serde_json::to_vec(&edited).unwrap()).unwrap();
    let err = ex
        .execute(&call("db_verify_backup", json!({"backup": id})))
        .await
        .unwrap_err();
    assert!(err.message.contains(&format!("{schema}.notes")), "{err}");
    assert!(err.message.contains("checksum mismatch"), "{err}");

    // 3. A truncated dump with the manifest's sha256 and size rewritten to match it.
    let bytes = std::fs::read(&path).unwrap();
    let cut = &bytes[..bytes.len() * 2 / 3];
    std::fs::write(&path, cut).unwrap();
    let mut edited = original.clone();
    edited["sha256"] = json!(sha256_hex(cut));
    edited["size"] = json!(cut.len());
    std::fs::write(&manifest_path, serde_json::to_vec(&edited).unwrap()).unwrap();
    let err = ex
        .execute(&call("db_verify_backup", json!({"backup": id})))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Failed, "{err}");
    assert!(err.message.contains("does not restore"), "{err}");

    // And db_restore refuses it without changing the tenant's data.
    sqlx::query(&format!("DELETE FROM \"{schema}\".orders WHERE id = 7"))
        .execute(&pool)
        .await
        .unwrap();
    let err = ex
        .execute(&call("db_restore", json!({"target": tenant, "backup": id})))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("nothing was restored or changed"),
        "{err}"
    );
    assert_eq!(count(&pool, &format!("\"{schema}\".orders")).await, 6);
    assert_eq!(count(&pool, &format!("\"{schema}\".customers")).await, 5);
    let list = ex
        .execute(&call("db_backups_list", json!({"target": tenant})))
        .await
        .unwrap();
    assert_eq!(
        list.output["backups"].as_array().unwrap().len(),
        1,
        "no safety backup for a restore that never started"
    );

    drop_schema(&pool, &schema).await;
    te.cleanup().await;
}

#[tokio::test]
async fn hostile_unknown_and_foreign_targets_are_refused() {
    let te = test_env().await;
    let ex = exec(&te);
    for bad in ["x; DROP", "../etc", "Tenant", &"a".repeat(64), "a'b"] {
        let err = Call::parse("db_backup", json!({"target": bad})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgs, "{bad}: {err}");
    }
    for bad in ["../../etc/passwd", "x-20260101T000000Z; rm", "acme"] {
        let err = Call::parse("db_verify_backup", json!({"backup": bad})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgs, "{bad}: {err}");
    }

    // Neither a tenant schema nor a platform service with a database.
    let nobody = te.name("nobody");
    let err = ex
        .execute(&call("db_backup", json!({"target": nobody})))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.message.contains("tenant schema"), "{err}");
    assert!(err.message.contains("steward.database"), "{err}");
    let err = ex
        .dry_run(&call("db_backup", json!({"target": nobody})))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");

    // A backup id that names no backup.
    let missing = format!("{nobody}-20260101T000000000Z");
    let err = ex
        .execute(&call("db_verify_backup", json!({"backup": missing})))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.message.contains("db_backups_list"), "{err}");

    // One tenant's backup is never restored over another tenant.
    let (a, a_schema, pool) = make_tenant(&te, "aa").await;
    let (b, b_schema, _) = make_tenant(&te, "bb").await;
    let done = ex
        .execute(&call("db_backup", json!({"target": a})))
        .await
        .unwrap();
    let id = done.output["backup"].as_str().unwrap();
    for res in [
        ex.execute(&call("db_restore", json!({"target": b, "backup": id})))
            .await
            .map(|_| ()),
        ex.dry_run(&call("db_restore", json!({"target": b, "backup": id})))
            .await
            .map(|_| ()),
    ] {
        let err = res.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
        assert!(err.message.contains("belongs to"), "{err}");
    }
    // A backup file planted under another target's directory is refused by its manifest.
    let a_dir = te.state_dir.join("backups").join(&a);
    let b_dir = te.state_dir.join("backups").join(&b);
    std::fs::create_dir_all(&b_dir).unwrap();
    let planted = id.replacen(&a, &b, 1);
    std::fs::copy(
        a_dir.join(format!("{id}.dump")),
        b_dir.join(format!("{planted}.dump")),
    )
    .unwrap();
    std::fs::copy(
        a_dir.join(format!("{id}.json")),
        b_dir.join(format!("{planted}.json")),
    )
    .unwrap();
    let err = ex
        .execute(&call("db_restore", json!({"target": b, "backup": planted})))
        .await
        .unwrap_err();
    assert!(err.message.contains("moved or edited"), "{err}");
    assert_eq!(count(&pool, &format!("\"{b_schema}\".orders")).await, 7);

    drop_schema(&pool, &a_schema).await;
    drop_schema(&pool, &b_schema).await;
    te.cleanup().await;
}

#[tokio::test]
async fn dry_runs_describe_the_steps_and_change_nothing() {
    let te = test_env().await;
    let (tenant, schema, pool) = make_tenant(&te, "dry").await;
    let ex = exec(&te);
    let password = te
        .env
        .config
        .pg_url
        .split_once("://")
        .unwrap()
        .1
        .split_once('@')
        .unwrap()
        .0
        .split_once(':')
        .unwrap()
        .1
        .to_string();

    let plan = ex
        .dry_run(&call("db_backup", json!({"target": tenant})))
        .await
        .unwrap();
    assert!(plan.changes);
    let steps = plan.steps.join("\n");
    assert!(steps.contains("pg_dump"), "{steps}");
    assert!(steps.contains("--format=custom"), "{steps}");
    assert!(steps.contains(&format!("--schema=\"{schema}\"")), "{steps}");
    assert!(steps.contains("PGPASSWORD=<from pg_url>"), "{steps}");
    assert!(
        !steps.contains(&password),
        "the password must never be shown"
    );
    assert!(
        !te.state_dir.join("backups").exists(),
        "dry run wrote files"
    );

    let plan = ex
        .dry_run(&call("db_backups_list", json!({"target": tenant})))
        .await
        .unwrap();
    assert!(!plan.changes);

    let done = ex
        .execute(&call("db_backup", json!({"target": tenant})))
        .await
        .unwrap();
    let id = done.output["backup"].as_str().unwrap().to_string();
    let dir = te.state_dir.join("backups").join(&tenant);
    let files_before = std::fs::read_dir(&dir).unwrap().count();
    sqlx::query(&format!("DELETE FROM \"{schema}\".orders"))
        .execute(&pool)
        .await
        .unwrap();

    let plan = ex
        .dry_run(&call("db_verify_backup", json!({"backup": id})))
        .await
        .unwrap();
    assert!(!plan.changes);
    assert!(plan.steps.join("\n").contains("pg_restore"));
    let plan = ex
        .dry_run(&call("db_restore", json!({"target": tenant, "backup": id})))
        .await
        .unwrap();
    assert!(plan.changes);
    let steps = plan.steps.join("\n");
    assert!(steps.contains("safety backup"), "{steps}");
    assert!(steps.contains("--single-transaction"), "{steps}");
    assert!(
        steps.contains(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")),
        "{steps}"
    );
    assert!(!steps.contains(&password));

    assert_eq!(count(&pool, &format!("\"{schema}\".orders")).await, 0);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), files_before);

    drop_schema(&pool, &schema).await;
    te.cleanup().await;
}

/// A platform service whose container names its database: the whole database is backed
/// up, verified and restored, other schemas included.
#[tokio::test]
async fn a_platform_service_database_is_backed_up_and_restored_whole() {
    let te = test_env().await;
    let service = te.name("ledger");
    let db = format!("steward_bk_{}", te.id);
    let admin = te.env.admin_pool().await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{db}\""))
        .execute(admin)
        .await
        .unwrap();
    let pool = pool_on(&te.env, &db).await;
    sqlx::raw_sql(
        r#"CREATE TABLE public.items (id int PRIMARY KEY, label text);
           INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 40) g;
           CREATE SCHEMA billing;
           CREATE TABLE billing.invoices (id bigserial PRIMARY KEY, item int REFERENCES public.items(id), total numeric);
           INSERT INTO billing.invoices (item, total) SELECT g, g * 10 FROM generate_series(1, 12) g;
           CREATE VIEW billing.big AS SELECT * FROM billing.invoices WHERE total > 50;"#,
    )
    .execute(&pool)
    .await
    .unwrap();

    // Labelled like a platform service; created, not started: inventory reads labels only.
    let labels = HashMap::from([
        ("steward.service".to_string(), service.clone()),
        ("steward.kind".to_string(), "platform".to_string()),
        ("steward.release".to_string(), "r1".to_string()),
        (backup::target::DATABASE_LABEL.to_string(), db.clone()),
        (TEST_LABEL.to_string(), te.id.clone()),
    ]);
    te.env
        .platform
        .docker
        .api()
        .create_container(
            Some(
                CreateContainerOptionsBuilder::new()
                    .name(&format!("{service}-r1"))
                    .build(),
            ),
            ContainerCreateBody {
                image: Some("steward-demo:v1".into()),
                labels: Some(labels),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let ex = exec(&te);
    let done = ex
        .execute(&call("db_backup", json!({"target": service})))
        .await
        .unwrap();
    assert_eq!(done.output["kind"], "database");
    assert_eq!(done.output["database"], db.as_str());
    let rows = rows_of(&done.output);
    assert_eq!(rows["public.items"], 40);
    assert_eq!(rows["billing.invoices"], 12);
    assert_eq!(rows.len(), 2);
    let id = done.output["backup"].as_str().unwrap().to_string();

    ex.execute(&call("db_verify_backup", json!({"backup": id})))
        .await
        .unwrap();

    sqlx::raw_sql(
        r#"DELETE FROM billing.invoices WHERE id > 3;
           UPDATE public.items SET label = 'gone';
           CREATE SCHEMA scratchpad;
           CREATE TABLE scratchpad.junk (x int);
           CREATE TABLE public.extra (y int);"#,
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let restored = ex
        .execute(&call(
            "db_restore",
            json!({"target": service, "backup": id}),
        ))
        .await
        .unwrap();
    assert!(restored.output["safety_backup"].as_str().is_some());
    let pool = pool_on(&te.env, &db).await;
    assert_eq!(count(&pool, "billing.invoices").await, 12);
    let labels_ok: i64 =
        sqlx::query_scalar("SELECT count(*) FROM public.items WHERE label = 'item ' || id")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(labels_ok, 40);
    assert_eq!(count(&pool, "billing.big").await, 7);
    let leftovers: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'scratchpad') \
              + (SELECT count(*) FROM pg_tables WHERE tablename = 'extra')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(leftovers, 0, "objects made after the backup are gone");
    pool.close().await;

    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
        .execute(admin)
        .await
        .unwrap();
    te.cleanup().await;
}

/// PostgreSQL not answering is `Unavailable`, with a hint, not a bare failure.
#[tokio::test]
async fn postgres_down_is_unavailable() {
    let te = test_env().await;
    let mut config = te.env.config.clone();
    // Nothing listens on port 1.
    config.pg_url = "postgres://steward:secret@127.0.0.1:1/steward".into();
    let env = Arc::new(Env::new(
        te.env.platform.clone(),
        Arc::new(SystemClock),
        config,
    ));
    let ex = BackupExecutor::new(env);
    let target = te.name("down");
    for tool in ["db_backup"] {
        let err = ex
            .execute(&call(tool, json!({"target": target})))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
        assert!(err.message.contains("PostgreSQL"), "{err}");
    }
    // Listing reads files only and works without the database.
    let list = ex
        .execute(&call("db_backups_list", json!({"target": target})))
        .await
        .unwrap();
    assert_eq!(list.output["backups"].as_array().unwrap().len(), 0);
    te.cleanup().await;
}

/// Two backups started in the same millisecond (here: a clock standing still) get distinct
/// ids, and both are complete.
#[tokio::test]
async fn simultaneous_backups_get_distinct_ids() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_795_428_900_000)));
    let te = test_env_with_clock(clock).await;
    let (tenant, schema, pool) = make_tenant(&te, "twin").await;
    let ex = exec(&te);
    let c = call("db_backup", json!({"target": tenant}));
    let (a, b) = tokio::join!(ex.execute(&c), ex.execute(&c));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.output["backup"], b.output["backup"]);
    assert_eq!(a.output["created_at"], "2026-11-23T10:15:00.000Z");
    assert_eq!(a.output["created_at"], b.output["created_at"]);
    let list = ex
        .execute(&call("db_backups_list", json!({"target": tenant})))
        .await
        .unwrap();
    assert_eq!(list.output["backups"].as_array().unwrap().len(), 2);
    for backup in [&a, &b] {
        ex.execute(&call(
            "db_verify_backup",
            json!({"backup": backup.output["backup"]}),
        ))
        .await
        .unwrap();
    }
    drop_schema(&pool, &schema).await;
    te.cleanup().await;
}

/// The layout tenant provisioning makes: the schema owned by steward's admin role, the
/// tables owned by the tenant's role (a member of which the admin role is). The restore
/// brings back owners and grants, which needs the schema's grants in place before the
/// tables are handed to their owner.
#[tokio::test]
async fn restore_keeps_a_tenant_roles_ownership_and_grants() {
    let te = test_env().await;
    let tenant = te.name("own");
    let schema = format!("tenant_{}", tenant.replace('-', "_"));
    let role = format!("tenant_user_{}", tenant.replace('-', "_"));
    let pool = tenants_pool(&te.env).await;
    sqlx::raw_sql(&format!(
        r#"CREATE ROLE "{role}" NOLOGIN;
           GRANT "{role}" TO CURRENT_USER;
           CREATE SCHEMA "{schema}";
           REVOKE ALL ON SCHEMA "{schema}" FROM PUBLIC;
           GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{role}";
           SET ROLE "{role}";
           CREATE TABLE "{schema}".items (id serial PRIMARY KEY, label text);
           INSERT INTO "{schema}".items (label) SELECT 'item ' || g FROM generate_series(1, 9) g;
           RESET ROLE;"#
    ))
    .execute(&pool)
    .await
    .unwrap();

    let ex = exec(&te);
    let done = ex
        .execute(&call("db_backup", json!({"target": tenant})))
        .await
        .unwrap();
    let id = done.output["backup"].as_str().unwrap().to_string();
    sqlx::query(&format!("DELETE FROM \"{schema}\".items WHERE id > 3"))
        .execute(&pool)
        .await
        .unwrap();
    ex.execute(&call("db_restore", json!({"target": tenant, "backup": id})))
        .await
        .unwrap();

    assert_eq!(count(&pool, &format!("\"{schema}\".items")).await, 9);
    let owner: String = sqlx::query_scalar(
        "SELECT tableowner::text FROM pg_tables WHERE schemaname = $1 AND tablename = 'items'",
    )
    .bind(schema.clone())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(owner, role);
    let role_can: (bool, bool) = sqlx::query_as(
        "SELECT has_schema_privilege($1, $2, 'USAGE'), has_schema_privilege($1, $2, 'CREATE')",
    )
    .bind(role.clone())
    .bind(schema.clone())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(role_can, (true, true));
    let public_can: bool = sqlx::query_scalar("SELECT has_schema_privilege('public', $1, 'USAGE')")
        .bind(schema.clone())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!public_can, "PUBLIC stays shut out of the tenant schema");

    drop_schema(&pool, &schema).await;
    sqlx::raw_sql(&format!(r#"DROP OWNED BY "{role}"; DROP ROLE "{role}";"#))
        .execute(&pool)
        .await
        .unwrap();
    te.cleanup().await;
}
