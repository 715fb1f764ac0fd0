//! The executor contract, checked for every executor against the real services:
//! - every tool it serves is in the catalogue, with its effect declared there (that the
//!   binary's one list of executors serves the whole catalogue is checked in
//!   crates/cli/tests/catalogue.rs);
//! - `dry_run` changes nothing: the world (containers, routes, networks, schemas, roles,
//!   backup files) is identical before and after;
//! - `execute` is idempotent: running a finished call again leaves the same world and, for
//!   writes that converge, reports `changed: false`. Reads change nothing at all.
//!
//! Exceptions, by design: `db_backup` makes a new backup on every run (the second run adds
//! one file and changes nothing else), and `service_restart`/`db_restore` redo their work on
//! every run while converging to the same world.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{call, test_env, TestEnv, TEST_LABEL};
use futures_util::FutureExt;
use serde_json::json;
use sqlx::Row;
use std::sync::Arc;

use steward_exec::env::Env;
use steward_exec::platform::ServiceSpec;
use steward_exec::{backup, lifecycle, releases, tenant};
use steward_tools::{Call, Effect, Executor, Registry};

/// Everything a call could change, restricted to what this test made.
#[derive(Debug, PartialEq, Eq)]
struct World {
    containers: BTreeMap<String, String>,
    routes: BTreeMap<String, String>,
    networks: BTreeSet<String>,
    pg_objects: BTreeSet<String>,
    backups: BTreeSet<String>,
}

async fn world(t: &TestEnv) -> World {
    let docker = &t.env.platform.docker;
    let mut containers = BTreeMap::new();
    let label = format!("{TEST_LABEL}={}", t.id);
    let filters = std::collections::HashMap::from([("label".to_string(), vec![label])]);
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    for c in docker.api().list_containers(Some(opts)).await.unwrap() {
        let id = c.id.unwrap();
        let i = docker.api().inspect_container(&id, None).await.unwrap();
        let hc = i.host_config.unwrap_or_default();
        let state = i.state.and_then(|s| s.status).map(|s| s.to_string());
        containers.insert(
            i.name.unwrap_or_default(),
            format!(
                "{:?} image={:?} mem={:?} cpu={:?} pids={:?}",
                state,
                i.config.and_then(|c| c.image),
                hc.memory,
                hc.nano_cpus,
                hc.pids_limit
            ),
        );
    }
    let mut routes = BTreeMap::new();
    for e in std::fs::read_dir(t.env.platform.routes.path())
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains(&t.id) {
            routes.insert(name, std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    let nets = docker
        .api()
        .list_networks(Some(
            bollard::query_parameters::ListNetworksOptionsBuilder::new()
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap();
    let networks = nets.into_iter().filter_map(|n| n.name).collect();
    let mut pg_objects = BTreeSet::new();
    let admin = sqlx::PgPool::connect(&t.env.config.pg_url).await.unwrap();
    let pattern = format!("%{}%", t.id.replace('-', "_"));
    for row in sqlx::query("SELECT 'role ' || rolname FROM pg_roles WHERE rolname LIKE $1")
        .bind(&pattern)
        .fetch_all(&admin)
        .await
        .unwrap()
    {
        pg_objects.insert(row.get::<String, _>(0));
    }
    let tenant_db = format!(
        "{}/{}",
        t.env.config.pg_url.rsplit_once('/').unwrap().0,
        t.env.config.tenant_database
    );
    if let Ok(pool) = sqlx::PgPool::connect(&tenant_db).await {
        let q = "SELECT 'table ' || table_schema || '.' || table_name || ' rows ' || \
                 (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', \
                 table_schema, table_name), false, true, '')))[1]::text \
                 FROM information_schema.tables WHERE table_schema LIKE $1 \
                 UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname LIKE $1";
        for row in sqlx::query(q)
            .bind(&pattern)
            .fetch_all(&pool)
            .await
            .unwrap()
        {
            pg_objects.insert(row.get::<String, _>(0));
        }
        pool.close().await;
    }
    admin.close().await;
    let mut backups = BTreeSet::new();
    let dir = t.state_dir.join("backups");
    for target in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(target.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            backups.insert(f.file_name().to_string_lossy().into_owned());
        }
    }
    World {
        containers,
        routes,
        networks,
        pg_objects,
        backups,
    }
}

/// This crate's executors on one env, as the binary wires them.
fn platform_executors(env: Arc<Env>) -> Vec<Arc<dyn Executor>> {
    vec![
        Arc::new(lifecycle::LifecycleExecutor::new(env.clone())),
        Arc::new(releases::ReleaseExecutor::new(env.clone())),
        Arc::new(tenant::TenantExecutor::new(env.clone())),
        Arc::new(backup::BackupExecutor::new(env)),
    ]
}

#[test]
fn every_tool_served_is_in_the_catalogue_with_a_real_effect() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let t = test_env().await;
        let mut served = BTreeMap::new();
        for e in &platform_executors(t.env.clone()) {
            for tool in e.tools() {
                let spec = steward_tools::find(tool).unwrap_or_else(|| {
                    panic!("{e:?} serves {tool}, which is not in the catalogue")
                });
                assert_ne!(
                    spec.effect,
                    Effect::None,
                    "{tool} must declare a real effect"
                );
                assert!(
                    served.insert(*tool, format!("{e:?}")).is_none(),
                    "{tool} served twice"
                );
            }
        }
        assert!(!served.is_empty());
        t.cleanup().await;
    });
}

/// Runs `c` through the contract and returns its second execution's output.
async fn check(t: &TestEnv, reg: &Registry, c: &Call, expect_converged: bool) {
    let tool = c.tool();
    let before = world(t).await;
    let plan = reg
        .dry_run(c)
        .await
        .unwrap_or_else(|e| panic!("dry_run {tool}: {e}"));
    assert!(!plan.summary.is_empty(), "{tool}: empty plan summary");
    assert_eq!(
        world(t).await,
        before,
        "dry_run of {tool} changed the world"
    );

    let first = reg
        .execute(c)
        .await
        .unwrap_or_else(|e| panic!("execute {tool}: {e}"));
    let after_first = world(t).await;
    if c.spec().effect == Effect::Read {
        assert_eq!(after_first, before, "read {tool} changed the world");
        assert!(!first.changed, "read {tool} reported a change");
    }
    let second = reg
        .execute(c)
        .await
        .unwrap_or_else(|e| panic!("re-run of {tool}: {e}"));
    let after_second = world(t).await;
    if tool == "db_backup" {
        assert_eq!(
            after_second.backups.len(),
            after_first.backups.len() + 2,
            "{tool}"
        );
        assert_eq!(after_second.pg_objects, after_first.pg_objects, "{tool}");
        assert_eq!(after_second.containers, after_first.containers, "{tool}");
    } else if tool == "db_restore" {
        // The safety backup is new; the restored data is the same.
        assert_eq!(after_second.pg_objects, after_first.pg_objects, "{tool}");
    } else {
        assert_eq!(
            after_second, after_first,
            "re-run of {tool} did not converge"
        );
    }
    if expect_converged {
        assert!(
            !second.changed,
            "re-run of {tool} reported a change: {}",
            second.summary
        );
        let replan = reg.dry_run(c).await.unwrap();
        assert!(
            !replan.changes,
            "after {tool}, dry_run still plans changes: {replan:?}"
        );
    }
}

#[test]
fn every_executor_honours_dry_run_and_idempotence() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let t = test_env().await;
        let reg = Registry::new(platform_executors(t.env.clone()));
        let svc = t.name("web");
        let spec = ServiceSpec {
            service: svc.clone(),
            kind: "platform".into(),
            release: "r1".into(),
            image: "steward-demo:v1".into(),
            env: vec![],
            port: 8080,
            host: format!("{svc}.localhost"),
            extra_labels: t.env.config.extra_labels.clone(),
        };
        t.env
            .platform
            .ensure_service(&spec, std::time::Duration::from_secs(30))
            .await
            .unwrap();
        let tenant = t.name("ten");
        let s = json!({"service": svc});
        let steps: Vec<(Call, bool)> = vec![
            (call("service_list", json!({})), true),
            (call("service_status", s.clone()), true),
            (
                call("service_logs", json!({"service": svc, "tail": 5})),
                true,
            ),
            (call("service_metrics", s.clone()), false),
            (call("service_releases", s.clone()), true),
            (
                call(
                    "service_set_limits",
                    json!({"service": svc, "memory_mb": 256, "pids": 128}),
                ),
                true,
            ),
            (call("service_stop", s.clone()), true),
            (call("service_start", s.clone()), true),
            (call("service_restart", s.clone()), false),
            (
                call(
                    "service_deploy",
                    json!({"service": svc, "image": "steward-demo:v2"}),
                ),
                true,
            ),
            (
                call("service_rollback", json!({"service": svc, "to": "r1"})),
                true,
            ),
            (
                call("tenant_check_subdomain", json!({"subdomain": tenant})),
                true,
            ),
            (call("tenant_provision", json!({"subdomain": tenant})), true),
            (call("db_backup", json!({"target": tenant})), false),
            (call("db_backups_list", json!({"target": tenant})), true),
        ];
        let run = async {
            for (c, converges) in &steps {
                check(&t, &reg, c, *converges).await;
            }
            let list = reg
                .execute(&call("db_backups_list", json!({"target": tenant})))
                .await
                .unwrap();
            let backup = first_backup_id(&list.output).expect("a backup id in db_backups_list");
            check(
                &t,
                &reg,
                &call("db_verify_backup", json!({"backup": backup})),
                true,
            )
            .await;
            check(
                &t,
                &reg,
                &call("db_restore", json!({"target": tenant, "backup": backup})),
                false,
            )
            .await;
            check(
                &t,
                &reg,
                &call("tenant_destroy", json!({"tenant": tenant})),
                true,
            )
            .await;
        };
        let outcome = std::panic::AssertUnwindSafe(run).catch_unwind().await;
        t.cleanup().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
}

/// The first string field named `id` or `backup` found in a backups listing.
fn first_backup_id(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Object(m) => {
            for key in ["id", "backup", "backup_id"] {
                if let Some(s) = m.get(key).and_then(|x| x.as_str()) {
                    if steward_tools::ident::BackupId::parse(s).is_ok() {
                        return Some(s.to_string());
                    }
                }
            }
            m.values().find_map(first_backup_id)
        }
        serde_json::Value::Array(a) => a.iter().find_map(first_backup_id),
        _ => None,
    }
}

/// The origin executor against the same contract, on a SQLite state store (no platform):
/// its tools are reads in the catalogue; dry run and execute change no stored row; execute
/// is idempotent (the same verdict twice, `changed: false`).
#[test]
fn origin_executor_honours_the_contract() {
    use std::sync::Arc;
    use steward_exec::origin::{OriginExecutor, OriginStore};
    use steward_tools::Executor;

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("steward-origin-compliance-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("state.db").display());
        let store = steward_audit::Store::open(&url).await.unwrap();
        let origin_store = OriginStore::new(store.clone());
        origin_store
            .put_product(
                "bike-1",
                &json!({"id": "bike-1", "product": {"hs": "871200", "exw": 200},
                        "materials": [{"hs": "871491", "value": 60, "origin": "non-originating"}]}),
                0,
            )
            .await
            .unwrap();
        let exec = OriginExecutor::new(
            Arc::new(steward_origin::Engine::load().unwrap()),
            Some(origin_store),
            Arc::new(steward_tools::SystemClock),
        );
        for tool in exec.tools() {
            assert_eq!(steward_tools::find(tool).unwrap().effect, Effect::Read, "{tool}");
        }
        let rows = |store: steward_audit::Store| async move {
            let steward_audit::Store::Sqlite(pool) = store else { unreachable!() };
            let p: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM origin_products").fetch_one(&pool).await.unwrap();
            let d: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM origin_declarations").fetch_one(&pool).await.unwrap();
            (p, d)
        };
        let before = rows(store.clone()).await;
        let calls = [
            call("origin_check", json!({"product": "bike-1", "agreement": "uk-eu-tca", "shipment_date": "2026-06-01"})),
            call("origin_compare", json!({"product": "bike-1", "shipment_date": "2026-06-01"})),
            call("origin_check", json!({"agreement": "uk-japan-cepa", "shipment_date": "2026-06-01",
                "product": {"hs": "871200", "exw": 100, "fob": 130},
                "materials": [{"hs": "871491", "value": 50, "origin": "non-originating"}]})),
        ];
        for c in &calls {
            let plan = exec.dry_run(c).await.unwrap();
            assert!(!plan.changes && plan.summary.starts_with("read only"), "{plan:?}");
            let first = exec.execute(c).await.unwrap();
            let second = exec.execute(c).await.unwrap();
            assert!(!first.changed && !second.changed);
            assert_eq!(first.output, second.output, "{} is not idempotent", c.tool());
        }
        assert_eq!(rows(store.clone()).await, before, "a read changed the store");
        let missing = exec
            .execute(&call("origin_check", json!({"product": "nope", "agreement": "uk-eu-tca"})))
            .await
            .unwrap_err();
        assert_eq!(missing.kind, steward_tools::ErrorKind::NotFound);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}
