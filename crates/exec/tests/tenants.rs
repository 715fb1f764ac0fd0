//! Tenant tools against the real Docker Engine, PostgreSQL and Traefik: a provisioned tenant
//! answers through Traefik, its container is limited and hardened, its role is isolated from
//! other tenants and from `public`, re-runs change nothing, destroy leaves nothing behind, and
//! hostile or conflicting names are refused before any side effect.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::os::unix::fs::PermissionsExt;
use std::str::FromStr;

use bollard::models::{ContainerCreateBody, RestartPolicyNameEnum};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use common::*;
use futures_util::FutureExt;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use std::sync::Arc;

use steward_exec::env::Env;
use steward_exec::tenant::TenantExecutor;
use steward_exec::traefik::Route;
use steward_tools::{Done, ErrorKind, Executor};

fn tenant_db(te: &TestEnv) -> String {
    te.env.config.tenant_database.clone()
}

async fn admin_conn(te: &TestEnv, db: Option<&str>) -> PgConnection {
    let mut opts = PgConnectOptions::from_str(&te.env.config.pg_url).unwrap();
    if let Some(db) = db {
        opts = opts.database(db);
    }
    opts.connect().await.unwrap()
}

async fn exists(conn: &mut PgConnection, sql: &str, name: &str) -> bool {
    sqlx::query_scalar::<_, bool>(sql)
        .bind(name)
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn role_exists(te: &TestEnv, role: &str) -> bool {
    let mut c = admin_conn(te, None).await;
    exists(
        &mut c,
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
        role,
    )
    .await
}

async fn schema_exists(te: &TestEnv, schema: &str) -> bool {
    let mut c = admin_conn(te, None).await;
    let db_exists = exists(
        &mut c,
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        &tenant_db(te),
    )
    .await;
    if !db_exists {
        return false;
    }
    let mut c = admin_conn(te, Some(&tenant_db(te))).await;
    exists(
        &mut c,
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
        schema,
    )
    .await
}

async fn container_exists(te: &TestEnv, name: &str) -> bool {
    te.env
        .platform
        .docker
        .api()
        .inspect_container(name, None)
        .await
        .is_ok()
}

async fn network_exists(te: &TestEnv, name: &str) -> bool {
    te.env
        .platform
        .docker
        .api()
        .inspect_network(name, None)
        .await
        .is_ok()
}

fn route_exists(te: &TestEnv, sub: &str) -> bool {
    te.env
        .platform
        .routes
        .path()
        .join(format!("{sub}.yml"))
        .exists()
}

/// Names of a tenant as the executor derives them (asserted here, not imported, so a change
/// of convention fails loudly).
struct Names {
    sub: String,
    schema: String,
    role: String,
    container: String,
    network: String,
}

fn names(te: &TestEnv, sub: &str) -> Names {
    let id = sub.replace('-', "_");
    let app = &te.env.config.tenant_app;
    Names {
        sub: sub.into(),
        schema: format!("tenant_{id}"),
        role: format!("tenant_user_{id}"),
        container: format!("{app}_tenant_{id}"),
        network: format!("{app}_tenant_{id}_net"),
    }
}

/// Asserts nothing of the tenant is left.
async fn assert_gone(te: &TestEnv, n: &Names) {
    assert!(!route_exists(te, &n.sub), "route file of {} left", n.sub);
    assert!(
        !container_exists(te, &n.container).await,
        "{} left",
        n.container
    );
    assert!(!network_exists(te, &n.network).await, "{} left", n.network);
    assert!(!schema_exists(te, &n.schema).await, "{} left", n.schema);
    assert!(!role_exists(te, &n.role).await, "{} left", n.role);
    let state = te.state_dir.join("tenants").join(n.sub.replace('-', "_"));
    assert!(!state.exists(), "{} left", state.display());
}

/// Runs `body`, then removes whatever the tenants left (through destroy, then by hand), then
/// re-raises any failure.
async fn with_cleanup<F: std::future::Future<Output = ()>>(te: &TestEnv, subs: &[String], body: F) {
    let result = std::panic::AssertUnwindSafe(body).catch_unwind().await;
    let exec = TenantExecutor::new(te.env.clone());
    for sub in subs {
        let _ = exec
            .execute(&call("tenant_destroy", json!({ "tenant": sub })))
            .await;
        let n = names(te, sub);
        let mut c = admin_conn(te, None).await;
        let db_exists = exists(
            &mut c,
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &tenant_db(te),
        )
        .await;
        if db_exists {
            let mut t = admin_conn(te, Some(&tenant_db(te))).await;
            let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", n.schema))
                .execute(&mut t)
                .await;
            if role_exists(te, &n.role).await {
                let _ = sqlx::raw_sql(&format!(
                    "GRANT \"{r}\" TO CURRENT_USER; DROP OWNED BY \"{r}\"",
                    r = n.role
                ))
                .execute(&mut t)
                .await;
            }
        }
        let _ = sqlx::raw_sql(&format!("DROP ROLE IF EXISTS \"{}\"", n.role))
            .execute(&mut c)
            .await;
        let _ = te.env.platform.routes.remove(sub);
    }
    te.cleanup().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn get_through_traefik(te: &TestEnv, host: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", te.env.config.traefik_web))
        .header("Host", host)
        .send()
        .await
        .unwrap()
}

fn step<'a>(done: &'a Done, name: &str) -> &'a Value {
    done.output["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {}", done.output))
}

async fn container_env(te: &TestEnv, container: &str, key: &str) -> String {
    let c = te
        .env
        .platform
        .docker
        .api()
        .inspect_container(container, None)
        .await
        .unwrap();
    c.config
        .unwrap()
        .env
        .unwrap()
        .into_iter()
        .find_map(|e| e.strip_prefix(&format!("{key}=")).map(str::to_string))
        .unwrap_or_else(|| panic!("{key} not in the environment of {container}"))
}

#[tokio::test]
async fn provision_serves_through_traefik_limited_hardened_idempotent_then_destroy_leaves_nothing()
{
    let te = test_env().await;
    let sub = format!("t{}", te.id);
    let exec = TenantExecutor::new(te.env.clone());
    with_cleanup(&te, std::slice::from_ref(&sub), async {
        let n = names(&te, &sub);
        let host = format!("{sub}.{}", te.env.config.domain);
        let provision = call("tenant_provision", json!({ "subdomain": sub }));

        // Dry run first: it plans every step and creates nothing.
        let plan = exec.dry_run(&provision).await.unwrap();
        assert!(plan.changes, "{plan:?}");
        assert!(
            plan.steps.iter().any(|s| s.contains(&n.container)),
            "{plan:?}"
        );
        assert!(!role_exists(&te, &n.role).await);
        assert!(!container_exists(&te, &n.container).await);
        assert!(!route_exists(&te, &sub));

        let done = exec.execute(&provision).await.unwrap();
        assert!(done.changed, "{done:?}");
        assert_eq!(done.output["container"], n.container);
        assert_eq!(done.output["role"], n.role);
        for s in [
            "database",
            "schema",
            "secret",
            "role",
            "grants",
            "network",
            "container",
            "route",
            "router",
            "ready",
        ] {
            assert!(
                done.output["timings_ms"][s].as_f64().is_some(),
                "no timing for {s}: {}",
                done.output
            );
        }
        assert!(!done.output.to_string().contains("DATABASE_URL="));

        // The app answers through Traefik by host name, with the security headers.
        let resp = get_through_traefik(&te, &host, "/").await;
        assert_eq!(resp.status().as_u16(), 200);
        let h = resp.headers().clone();
        assert_eq!(h.get("x-frame-options").unwrap(), "DENY");
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert!(h.get("referrer-policy").is_some());
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["service"], sub.as_str());
        assert_eq!(body["rows"], 0, "the app reads its own schema: {body}");

        // The container is limited and hardened, and carries the ownership labels.
        let c = te
            .env
            .platform
            .docker
            .api()
            .inspect_container(&n.container, None)
            .await
            .unwrap();
        let hc = c.host_config.clone().unwrap();
        assert_eq!(hc.memory, Some(512 * 1024 * 1024));
        assert_eq!(hc.memory_swap, Some(512 * 1024 * 1024));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.pids_limit, Some(100));
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]));
        assert!(hc
            .security_opt
            .unwrap()
            .iter()
            .any(|o| o.starts_with("no-new-privileges")));
        assert_eq!(
            hc.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert_eq!(hc.network_mode.as_deref(), Some(n.network.as_str()));
        let labels = c.config.clone().unwrap().labels.unwrap();
        assert_eq!(labels["steward.service"], sub);
        assert_eq!(labels["steward.kind"], "tenant");
        assert_eq!(labels["steward.release"], "r1");
        assert_eq!(labels[TEST_LABEL], te.id);
        let db_url = container_env(&te, &n.container, "DATABASE_URL").await;
        assert!(
            db_url.starts_with(&format!("postgres://{}:", n.role))
                && db_url.contains(&format!("@{}:", te.env.config.pg_container_host))
                && db_url.ends_with(&format!("/{}", tenant_db(&te))),
            "{db_url}"
        );
        assert_eq!(container_env(&te, &n.container, "PORT").await, "8080");
        let net = te
            .env
            .platform
            .docker
            .api()
            .inspect_network(&n.network, None)
            .await
            .unwrap();
        let nl = net.labels.unwrap();
        assert_eq!(nl["steward.owned"], "true");
        assert_eq!(nl[TEST_LABEL], te.id);

        // The password is only in the container env and a 0600 file.
        let pw_file = te
            .state_dir
            .join("tenants")
            .join(sub.replace('-', "_"))
            .join("password");
        let pw = std::fs::read_to_string(&pw_file).unwrap();
        assert_eq!(pw.trim().len(), 32);
        assert!(db_url.contains(pw.trim()));
        let mode = std::fs::metadata(&pw_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // The subdomain is now taken by the tenant, with 3 free suggestions.
        let check = exec
            .execute(&call("tenant_check_subdomain", json!({ "subdomain": sub })))
            .await
            .unwrap();
        assert_eq!(check.output["available"], false, "{}", check.output);
        assert_eq!(check.output["status"], "taken_by_tenant");
        let sugg: Vec<String> =
            serde_json::from_value(check.output["suggestions"].clone()).unwrap();
        assert_eq!(
            sugg,
            [
                format!("{sub}-2"),
                format!("{sub}-app"),
                format!("{sub}-hq")
            ]
        );

        // Re-running changes nothing; the dry run agrees.
        let container_id = c.id.clone().unwrap();
        let again = exec.execute(&provision).await.unwrap();
        assert!(!again.changed, "{}", again.output);
        let plan = exec.dry_run(&provision).await.unwrap();
        assert!(!plan.changes, "{plan:?}");

        // A bigger plan updates the limits in place (same container).
        let medium = call(
            "tenant_provision",
            json!({ "subdomain": sub, "plan": "medium" }),
        );
        let bigger = exec.execute(&medium).await.unwrap();
        assert!(bigger.changed);
        assert_eq!(step(&bigger, "container")["changed"], true);
        let c = te
            .env
            .platform
            .docker
            .api()
            .inspect_container(&n.container, None)
            .await
            .unwrap();
        assert_eq!(c.id.unwrap(), container_id);
        let hc = c.host_config.unwrap();
        assert_eq!(
            (hc.memory, hc.nano_cpus, hc.pids_limit),
            (Some(1024 * 1024 * 1024), Some(1_000_000_000), Some(200))
        );

        // Destroy: final backup, then nothing is left; a re-run changes nothing.
        let destroy = call("tenant_destroy", json!({ "tenant": sub }));
        let plan = exec.dry_run(&destroy).await.unwrap();
        assert!(
            plan.changes && plan.steps[0].contains("final backup"),
            "{plan:?}"
        );
        let gone = exec.execute(&destroy).await.unwrap();
        assert!(gone.changed, "{}", gone.output);
        let backup = gone.output["backup"].as_str().unwrap().to_string();
        assert!(backup.starts_with(&format!("{sub}-")), "{backup}");
        let order: Vec<&str> = gone.output["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step"].as_str().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "backup",
                "route",
                "container",
                "network",
                "sessions",
                "schema",
                "role",
                "secret"
            ]
        );
        let dump = te
            .state_dir
            .join("backups")
            .join(&sub)
            .join(format!("{backup}.dump"));
        assert!(dump.exists(), "final backup {} not found", dump.display());
        assert_gone(&te, &n).await;
        assert_eq!(
            get_through_traefik(&te, &host, "/").await.status().as_u16(),
            404
        );
        let again = exec.execute(&destroy).await.unwrap();
        assert!(!again.changed, "{}", again.output);
        assert!(!exec.dry_run(&destroy).await.unwrap().changes);
    })
    .await;
}

#[tokio::test]
async fn tenant_role_cannot_read_other_tenants_or_public() {
    let te = test_env().await;
    let a = format!("t{}a", te.id);
    let b = format!("t{}b", te.id);
    let exec = TenantExecutor::new(te.env.clone());
    with_cleanup(&te, &[a.clone(), b.clone()], async {
        let (na, nb) = (names(&te, &a), names(&te, &b));
        let (ca, cb) = (
            call("tenant_provision", json!({ "subdomain": a })),
            call("tenant_provision", json!({ "subdomain": b })),
        );
        // In parallel: concurrent grants on the shared database must not collide.
        let (ra, rb) = tokio::join!(exec.execute(&ca), exec.execute(&cb));
        ra.unwrap();
        rb.unwrap();
        // Tenant B's app created its table on the first request (the readiness check).
        let mut admin = admin_conn(&te, Some(&tenant_db(&te))).await;
        let table = format!("secret_{}", te.id);
        sqlx::raw_sql(&format!(
            "CREATE TABLE public.{table} (v text); INSERT INTO public.{table} VALUES ('admin only')"
        ))
        .execute(&mut admin)
        .await
        .unwrap();
        let b_items: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}.items", nb.schema))
            .fetch_one(&mut admin)
            .await
            .expect("the admin role can read tenant tables (for dumps)");
        assert_eq!(b_items, 0);

        // Connect as tenant A with the password from its container's environment (from the
        // host, so through the admin URL's address rather than the Docker bridge's).
        let url = container_env(&te, &na.container, "DATABASE_URL")
            .await
            .replace(
                &format!("@{}:", te.env.config.pg_container_host),
                &format!(
                    "@{}:",
                    PgConnectOptions::from_str(&te.env.config.pg_url)
                        .unwrap()
                        .get_host()
                ),
            );
        let mut conn = PgConnection::connect(&url).await.unwrap();
        let denied = |r: Result<sqlx::postgres::PgQueryResult, sqlx::Error>, what: &str| match r {
            Err(sqlx::Error::Database(e)) => {
                assert_eq!(e.code().as_deref(), Some("42501"), "{what}: {e}");
            }
            other => panic!("{what} was not refused: {other:?}"),
        };
        denied(
            sqlx::query(&format!("SELECT * FROM {}.items", nb.schema))
                .execute(&mut conn)
                .await,
            "reading tenant B's table",
        );
        denied(
            sqlx::query(&format!("SELECT * FROM public.{table}"))
                .execute(&mut conn)
                .await,
            "reading a table in public",
        );
        denied(
            sqlx::query("CREATE TABLE public.intruder (x int)")
                .execute(&mut conn)
                .await,
            "creating a table in public",
        );
        denied(
            sqlx::query(&format!("CREATE TABLE {}.intruder (x int)", nb.schema))
                .execute(&mut conn)
                .await,
            "creating a table in tenant B's schema",
        );
        denied(
            sqlx::query("CREATE TEMP TABLE scratch (x int)")
                .execute(&mut conn)
                .await,
            "creating a temp table",
        );
        // Its own schema works and is its search_path; settings come from the role.
        sqlx::query("CREATE TABLE mine (x int)")
            .execute(&mut conn)
            .await
            .unwrap();
        let path: String = sqlx::query_scalar("SHOW search_path")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(path, na.schema);
        let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(timeout, "30s");
        let own: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(own, 0);
        conn.close().await.unwrap();

        sqlx::raw_sql(&format!("DROP TABLE public.{table}"))
            .execute(&mut admin)
            .await
            .unwrap();

        // Destroy terminates A's open sessions before dropping its role.
        let mut open = PgConnection::connect(&url).await.unwrap();
        let gone = exec
            .execute(&call("tenant_destroy", json!({ "tenant": a })))
            .await
            .unwrap();
        assert_eq!(step(&gone, "sessions")["changed"], true);
        assert!(sqlx::query("SELECT 1").execute(&mut open).await.is_err());
        assert_gone(&te, &na).await;
    })
    .await;
}

#[tokio::test]
async fn check_subdomain_reports_reserved_bad_format_route_and_free() {
    let te = test_env().await;
    let exec = TenantExecutor::new(te.env.clone());
    let routed = format!("t{}r", te.id);
    with_cleanup(&te, std::slice::from_ref(&routed), async {
        let check = |s: &str| {
            let exec = exec.clone();
            let c = call("tenant_check_subdomain", json!({ "subdomain": s }));
            async move { exec.execute(&c).await.unwrap().output }
        };
        let www = check("www").await;
        assert_eq!(www["status"], "reserved", "{www}");
        assert!(www["reason"].as_str().unwrap().contains("reserved"));
        assert_eq!(www["suggestions"], json!(["www-2", "www-app", "www-hq"]));
        assert!(www["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "must start with a letter"));

        // A malformed name is invalid input (exit 2 at the CLI), at dry-run and at execute
        // alike; the message names the rule and still suggests corrected names.
        for (value, rule, suggestion) in [
            ("X; DROP", "must be lowercase", Some("x-drop")),
            ("Bad_Name!", "must be lowercase", Some("bad-name")),
            (&"a".repeat(64), "must be at most 40 characters", None),
            ("../etc", "may contain only a-z, 0-9 and '-'", Some("etc")),
        ] {
            let c = call("tenant_check_subdomain", json!({ "subdomain": value }));
            let planned = exec.dry_run(&c).await.unwrap_err();
            let done = exec.execute(&c).await.unwrap_err();
            for e in [planned, done] {
                assert_eq!(e.kind, ErrorKind::InvalidArgs, "{value}: {e}");
                assert!(e.message.contains(rule), "{value}: {e}");
                if let Some(s) = suggestion {
                    assert!(e.message.contains(&format!("try {s}")), "{value}: {e}");
                }
            }
        }

        // Platform services' names are reserved, running here or not.
        for platform in ["wpcs", "rentguy", "n8n", "langgraph"] {
            let r = check(platform).await;
            assert_eq!(r["available"], false, "{r}");
            assert_eq!(r["status"], "reserved", "{r}");
            assert!(
                r["reason"].as_str().unwrap().contains("platform service"),
                "{r}"
            );
            assert_eq!(r["suggestions"].as_array().unwrap().len(), 3, "{r}");
            assert!(r["reserved"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == platform));
        }

        // A route file (something else's) makes a name taken.
        te.env
            .platform
            .routes
            .write(&Route::new(&routed, "elsewhere.localhost", "http://127.0.0.1:9").unwrap())
            .unwrap();
        let taken = check(&routed).await;
        assert_eq!(taken["status"], "taken_by_route", "{taken}");
        assert_eq!(taken["suggestions"].as_array().unwrap().len(), 3);

        let free = format!("t{}free", te.id);
        let ok = check(&free).await;
        assert_eq!(ok["available"], true, "{ok}");
        assert_eq!(ok["suggestions"], json!([]));

        let plan = exec
            .dry_run(&call(
                "tenant_check_subdomain",
                json!({ "subdomain": "www" }),
            ))
            .await
            .unwrap();
        assert!(!plan.changes);
    })
    .await;
}

#[tokio::test]
async fn hostile_and_conflicting_names_are_refused_before_any_side_effect() {
    let te = test_env().await;
    let exec = TenantExecutor::new(te.env.clone());
    let routed = format!("t{}r", te.id);
    let squatted = format!("t{}s", te.id);
    let platform = format!("t{}p", te.id);
    let subs = [routed.clone(), squatted.clone(), platform.clone()];
    with_cleanup(&te, &subs, async {
        // Hostile identifiers never become a call.
        for (bad, rule) in [
            ("x; DROP", "must be lowercase"),
            ("x;drop", "may contain only"),
            ("../etc", "may contain only"),
            ("Acme", "must be lowercase"),
            (&"a".repeat(64), "at most 40"),
            ("www", "reserved"),
            ("api", "reserved"),
            ("traefik", "reserved"),
            ("tenant\"; DROP ROLE steward; --", "lowercase"),
        ] {
            let err = steward_tools::Call::parse("tenant_provision", json!({ "subdomain": bad }))
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidArgs, "{bad}");
            assert!(err.message.contains(rule), "{bad}: {err}");
            if bad != "www" && bad != "api" && bad != "traefik" {
                let err = steward_tools::Call::parse("tenant_destroy", json!({ "tenant": bad }))
                    .unwrap_err();
                assert_eq!(err.kind, ErrorKind::InvalidArgs, "{bad}");
            }
        }

        // A route file steward wrote for something else.
        te.env
            .platform
            .routes
            .write(&Route::new(&routed, "elsewhere.localhost", "http://127.0.0.1:9").unwrap())
            .unwrap();
        // A container with the tenant's container name that steward does not own.
        let api = te.env.platform.docker.api();
        let squat = names(&te, &squatted);
        api.create_container(
            Some(
                CreateContainerOptionsBuilder::new()
                    .name(&squat.container)
                    .build(),
            ),
            ContainerCreateBody {
                image: Some("steward-demo:v1".into()),
                labels: Some([(TEST_LABEL.to_string(), te.id.clone())].into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        // A platform service of the same name.
        api.create_container(
            Some(
                CreateContainerOptionsBuilder::new()
                    .name(&format!("{platform}-r1"))
                    .build(),
            ),
            ContainerCreateBody {
                image: Some("steward-demo:v1".into()),
                labels: Some(
                    [
                        (TEST_LABEL.to_string(), te.id.clone()),
                        ("steward.service".to_string(), platform.clone()),
                        ("steward.kind".to_string(), "platform".to_string()),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
        )
        .await
        .unwrap();

        for (sub, kind) in [
            (&routed, ErrorKind::Conflict),
            (&squatted, ErrorKind::NotOwned),
            (&platform, ErrorKind::Conflict),
        ] {
            let c = call("tenant_provision", json!({ "subdomain": sub }));
            let err = exec.dry_run(&c).await.unwrap_err();
            assert_eq!(err.kind, kind, "dry run {sub}: {err}");
            let err = exec.execute(&c).await.unwrap_err();
            assert_eq!(err.kind, kind, "{sub}: {err}");
            assert!(err.message.contains("preflight"), "{err}");
            let n = names(&te, sub);
            assert!(!role_exists(&te, &n.role).await, "{sub}: role created");
            assert!(
                !schema_exists(&te, &n.schema).await,
                "{sub}: schema created"
            );
            assert!(
                !network_exists(&te, &n.network).await,
                "{sub}: network created"
            );
            let state = te.state_dir.join("tenants").join(sub.replace('-', "_"));
            assert!(!state.exists(), "{sub}: state dir created");

            let d = call("tenant_destroy", json!({ "tenant": sub }));
            let err = exec.execute(&d).await.unwrap_err();
            assert_eq!(err.kind, kind, "destroy {sub}: {err}");
        }
        // Nothing that was refused was touched.
        assert!(route_exists(&te, &routed));
        assert!(container_exists(&te, &squat.container).await);
        assert!(container_exists(&te, &format!("{platform}-r1")).await);

        // Destroying a tenant that never existed is a no-op, not an error.
        let never = format!("t{}n", te.id);
        let done = exec
            .execute(&call("tenant_destroy", json!({ "tenant": never })))
            .await
            .unwrap();
        assert!(!done.changed, "{}", done.output);
    })
    .await;
}

#[tokio::test]
async fn concurrent_provisions_of_one_tenant_take_turns() {
    let te = test_env().await;
    let sub = format!("t{}c", te.id);
    // Two executors, as two steward processes would be: they share nothing but the world.
    let (e1, e2) = (
        TenantExecutor::new(te.env.clone()),
        TenantExecutor::new(te.env.clone()),
    );
    with_cleanup(&te, std::slice::from_ref(&sub), async {
        let n = names(&te, &sub);
        let c = call("tenant_provision", json!({ "subdomain": sub }));
        let (r1, r2) = tokio::join!(e1.execute(&c), e2.execute(&c));
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        assert!(
            r1.changed != r2.changed,
            "exactly one run should have changed anything: {} / {}",
            r1.output,
            r2.output
        );
        let filters = std::collections::HashMap::from([(
            "label".to_string(),
            vec![format!("steward.service={sub}")],
        )]);
        let all = te
            .env
            .platform
            .docker
            .api()
            .list_containers(Some(
                bollard::query_parameters::ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap();
        assert_eq!(all.len(), 1);
        let pw = std::fs::read_to_string(
            te.state_dir
                .join("tenants")
                .join(sub.replace('-', "_"))
                .join("password"),
        )
        .unwrap();
        assert!(container_env(&te, &n.container, "DATABASE_URL")
            .await
            .contains(pw.trim()));
        let host = format!("{sub}.{}", te.env.config.domain);
        assert_eq!(
            get_through_traefik(&te, &host, "/").await.status().as_u16(),
            200
        );
    })
    .await;
}

#[tokio::test]
async fn platform_service_names_are_never_tenants() {
    let te = test_env().await;
    // A reserved name of this test's own, so nothing outside it can hold it; the shipped
    // platform names (`wpcs`, ...) are checked too, but only for the refusal itself.
    let reserved = format!("t{}plat", te.id);
    let mut config = te.env.config.clone();
    config.reserved_services.push(reserved.clone());
    let env = Arc::new(Env::new(
        te.env.platform.clone(),
        te.env.clock.clone(),
        config,
    ));
    let exec = TenantExecutor::new(env);
    with_cleanup(&te, std::slice::from_ref(&reserved), async {
        for name in [reserved.as_str(), "wpcs", "rentguy", "claude-chat"] {
            let r = exec
                .execute(&call(
                    "tenant_check_subdomain",
                    json!({ "subdomain": name }),
                ))
                .await
                .unwrap()
                .output;
            assert_eq!(r["available"], false, "{name}: {r}");
            assert_eq!(r["status"], "reserved", "{name}: {r}");
            assert_eq!(r["suggestions"].as_array().unwrap().len(), 3, "{r}");

            let c = call("tenant_provision", json!({ "subdomain": name }));
            let planned = exec.dry_run(&c).await.unwrap_err();
            let done = exec.execute(&c).await.unwrap_err();
            for e in [planned, done] {
                assert_eq!(e.kind, ErrorKind::InvalidArgs, "{name}: {e}");
                assert!(e.message.contains("platform service"), "{name}: {e}");
            }
        }
        // Refused before any side effect.
        let n = names(&te, &reserved);
        assert!(!role_exists(&te, &n.role).await, "role created");
        assert!(!schema_exists(&te, &n.schema).await, "schema created");
        assert!(!network_exists(&te, &n.network).await, "network created");
        assert!(
            !container_exists(&te, &n.container).await,
            "container created"
        );
        assert!(!route_exists(&te, &reserved), "route written");
        let state = te
            .state_dir
            .join("tenants")
            .join(reserved.replace('-', "_"));
        assert!(!state.exists(), "state dir created");
    })
    .await;
}
