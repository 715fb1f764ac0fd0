//! Everything the executors need, passed in explicitly (no globals): clients for the real
//! services, the injected clock and the settings the binary resolved from steward's config.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use steward_tools::Clock;
use tokio::sync::OnceCell;

use crate::platform::Platform;
use crate::{Error, Result};

/// Settings of the executors.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// Steward's own files for the executors: release history, backups, progress journals.
    pub state_dir: PathBuf,
    /// Admin URL of the platform's PostgreSQL (role with CREATEROLE and CREATEDB).
    pub pg_url: String,
    /// Address containers use to reach PostgreSQL (the Docker bridge gateway).
    pub pg_container_host: String,
    /// Traefik's web entry point, for confirming a route with a real request.
    pub traefik_web: String,
    /// Base domain: services answer on `<service>.<domain>`.
    pub domain: String,
    /// App name in tenant container names, `<app>_tenant_<id>`.
    pub tenant_app: String,
    /// Image tenants run unless `tenant_provision` names another.
    pub tenant_image: String,
    /// Database that holds one schema per tenant.
    pub tenant_database: String,
    /// IPv4 range per-tenant networks take their /28 subnets from.
    pub tenant_subnet_pool: String,
    /// How many retired releases of a service are kept (stopped) for rollback.
    pub release_retention: usize,
    /// How long a new container may take to turn healthy.
    pub health_timeout: Duration,
    /// Labels added to everything created, e.g. a test run's id for clean-up.
    pub extra_labels: Vec<(String, String)>,
    /// Names of the platform's own services (`platform_services` in policies/entities.toml).
    /// No tenant may take one, even while the service has no container here, because policy
    /// would treat such a tenant as the platform service.
    pub reserved_services: Vec<String>,
}

/// The platform services of the design, the default of [`ExecConfig::reserved_services`].
pub const DEFAULT_PLATFORM_SERVICES: [&str; 8] = [
    "rentguy",
    "psra",
    "vps-manager",
    "wpcs",
    "claude-chat",
    "n8n",
    "trading-dashboard",
    "langgraph",
];

impl ExecConfig {
    /// Defaults for everything but the locations, which the caller must know.
    pub fn new(state_dir: PathBuf, pg_url: String) -> Self {
        Self {
            state_dir,
            pg_url,
            pg_container_host: "172.17.0.1".into(),
            traefik_web: "http://127.0.0.1:58000".into(),
            domain: "localhost".into(),
            tenant_app: "fresco".into(),
            tenant_image: "steward-demo:v1".into(),
            tenant_database: "steward_tenants".into(),
            tenant_subnet_pool: "10.213.0.0/16".into(),
            release_retention: 5,
            health_timeout: Duration::from_secs(30),
            extra_labels: Vec::new(),
            reserved_services: DEFAULT_PLATFORM_SERVICES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// The world the executors act on.
#[derive(Debug)]
pub struct Env {
    pub platform: Platform,
    pub clock: Arc<dyn Clock>,
    pub config: ExecConfig,
    admin_pool: OnceCell<PgPool>,
}

impl Env {
    pub fn new(platform: Platform, clock: Arc<dyn Clock>, config: ExecConfig) -> Self {
        Self {
            platform,
            clock,
            config,
            admin_pool: OnceCell::new(),
        }
    }

    /// A pool on the admin URL's own database, connected on first use so read-only tools
    /// work while PostgreSQL is down.
    pub async fn admin_pool(&self) -> Result<&PgPool> {
        self.admin_pool
            .get_or_try_init(|| async {
                if self.config.pg_url.is_empty() {
                    return Err(Error::Invalid {
                        what: "PostgreSQL admin URL",
                        value: String::new(),
                        rule: "pg_url is not set: run scripts/setup or set STEWARD_PG_URL",
                    });
                }
                let opts: PgConnectOptions = self.config.pg_url.parse()?;
                Ok::<_, Error>(
                    PgPoolOptions::new()
                        .max_connections(4)
                        .acquire_timeout(Duration::from_secs(5))
                        .connect_with(opts)
                        .await?,
                )
            })
            .await
    }
}
