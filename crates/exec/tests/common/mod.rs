//! Shared set-up of the executor integration tests: an [`Env`] on the real services that
//! `scripts/setup` started, scoped by a unique test label so each test finds and removes
//! exactly what it made.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use steward_exec::docker::DockerClient;
use steward_exec::env::{Env, ExecConfig};
use steward_exec::platform::Platform;
use steward_exec::traefik::{RouteDir, TraefikApi};
use steward_tools::{Call, Clock, SystemClock};

/// Label every object made by a test carries, with the test's unique id as value.
pub const TEST_LABEL: &str = "steward.test";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn home() -> PathBuf {
    match std::env::var("STEWARD_HOME") {
        Ok(h) if !h.is_empty() => PathBuf::from(h),
        _ => repo_root().join(".steward"),
    }
}

/// The flat `key = "value"` settings `scripts/setup` wrote to `<home>/config.toml`.
pub fn setting(key: &str) -> String {
    setting_or(key, None)
}

/// Like [`setting`], with a default for keys setup leaves to steward's built-in defaults.
pub fn setting_or(key: &str, default: Option<&str>) -> String {
    let path = home().join("config.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup first", path.display()));
    let table: HashMap<String, toml::Value> = toml::from_str(&text).unwrap();
    table
        .get(key)
        .and_then(|v| v.as_str())
        .or(default)
        .unwrap_or_else(|| panic!("{key} missing in {}", path.display()))
        .to_string()
}

/// A short unique id, so parallel tests and leftovers of earlier runs never collide.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// A test's world: an Env whose objects carry `steward.test=<id>`, and a state dir of its own.
pub struct TestEnv {
    pub id: String,
    pub env: Arc<Env>,
    pub state_dir: PathBuf,
}

pub async fn test_env_with_clock(clock: Arc<dyn Clock>) -> TestEnv {
    let id = unique();
    let state_dir = std::env::temp_dir().join(format!("steward-exec-test-{id}"));
    let mut config = ExecConfig::new(state_dir.clone(), setting("pg_url"));
    config.pg_container_host = setting("pg_container_host");
    config.traefik_web = setting("traefik_web");
    config.domain = setting_or("domain", Some("localhost"));
    config.extra_labels = vec![(TEST_LABEL.to_string(), id.clone())];
    let platform = Platform {
        docker: DockerClient::connect().await.unwrap(),
        routes: RouteDir::new(setting("traefik_dynamic_dir")),
        traefik: TraefikApi::new(&setting("traefik_api")).unwrap(),
    };
    TestEnv {
        id,
        env: Arc::new(Env::new(platform, clock, config)),
        state_dir,
    }
}

pub async fn test_env() -> TestEnv {
    test_env_with_clock(Arc::new(SystemClock)).await
}

/// The `n`th command-line argument of a benchmark, or `default`.
pub fn arg<T: std::str::FromStr>(n: usize, default: T) -> T
where
    T::Err: std::fmt::Debug,
{
    std::env::args()
        .nth(n)
        .map(|a| a.parse().unwrap())
        .unwrap_or(default)
}

/// Runs `body` on a fresh [`TestEnv`] and removes what it made even when `body` panics.
pub async fn scoped(body: impl AsyncFnOnce(&TestEnv)) {
    use futures_util::FutureExt;
    let te = test_env().await;
    let outcome = std::panic::AssertUnwindSafe(body(&te)).catch_unwind().await;
    te.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

pub fn call(tool: &str, args: serde_json::Value) -> Call {
    Call::parse(tool, args).unwrap()
}

impl TestEnv {
    /// A service name unique to this test, e.g. `t-3fa2c1d0-web`.
    pub fn name(&self, suffix: &str) -> String {
        format!("t-{}-{suffix}", self.id)
    }

    /// Removes every container labelled with this test's id and the route files of the
    /// services it named.
    pub async fn cleanup(&self) {
        let api = self.env.platform.docker.api();
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{TEST_LABEL}={}", self.id)],
        )]);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        for c in api.list_containers(Some(opts)).await.unwrap_or_default() {
            if let Some(id) = c.id {
                let _ = api
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                    )
                    .await;
            }
        }
        let networks = api
            .list_networks(Some(
                bollard::query_parameters::ListNetworksOptionsBuilder::new()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap_or_default();
        for n in networks {
            if let Some(id) = n.id {
                let _ = api.remove_network(&id).await;
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.env.platform.routes.path()) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().contains(&self.id) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        self.drop_pg_objects().await;
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }

    /// Drops tenant schemas, roles and scratch databases whose names carry this test's id,
    /// so a test that failed half-way leaves nothing in PostgreSQL either.
    async fn drop_pg_objects(&self) {
        let id = self.id.replace('-', "_");
        let Ok(admin) = sqlx::PgPool::connect(&self.env.config.pg_url).await else {
            return;
        };
        let tenant_url = format!(
            "{}/{}",
            self.env.config.pg_url.rsplit_once('/').map_or("", |p| p.0),
            self.env.config.tenant_database
        );
        let like = format!("%{id}%");
        let names = |sql: &'static str, pool: sqlx::PgPool| {
            let like = like.clone();
            async move {
                sqlx::query_scalar::<_, String>(sql)
                    .bind(like)
                    .fetch_all(&pool)
                    .await
                    .unwrap_or_default()
            }
        };
        if let Ok(tenants) = sqlx::PgPool::connect(&tenant_url).await {
            let schemas = names(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE $1",
                tenants.clone(),
            )
            .await;
            for schema in schemas {
                let _ = sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                    .execute(&tenants)
                    .await;
            }
            let roles = names(
                "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1",
                tenants.clone(),
            )
            .await;
            for role in &roles {
                let _ = sqlx::query(&format!("DROP OWNED BY \"{role}\""))
                    .execute(&tenants)
                    .await;
            }
            tenants.close().await;
        }
        let roles = names(
            "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1",
            admin.clone(),
        )
        .await;
        for role in roles {
            let _ = sqlx::query(&format!("DROP OWNED BY \"{role}\""))
                .execute(&admin)
                .await;
            let _ = sqlx::query(&format!("DROP ROLE \"{role}\""))
                .execute(&admin)
                .await;
        }
        let dbs = names(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1",
            admin.clone(),
        )
        .await;
        for db in dbs {
            let _ = sqlx::query(&format!("DROP DATABASE \"{db}\" WITH (FORCE)"))
                .execute(&admin)
                .await;
        }
        admin.close().await;
    }
}
