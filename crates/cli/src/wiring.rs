//! Steward assembled once. Every command that runs tools, and `steward serve`, open one
//! [`Steward`]: one state store, the audit log and the inbox on it, the policies and guards,
//! every executor in one list, and the orchestrator over them. Nothing else in the binary
//! builds executors or opens the store for the request path.

use std::sync::Arc;

use anyhow::{Context, Result};
use steward_agent::approvals::ApprovalStore;
use steward_agent::audit_tool::AuditSearchExecutor;
use steward_agent::inbox::{Inbox, NotifyExecutor};
use steward_agent::{Orchestrator, Settings};
use steward_audit::{AuditLog, AuditOptions, Store};
use steward_exec::docker::DockerClient;
use steward_exec::env::{Env, ExecConfig};
use steward_exec::origin::{OriginExecutor, OriginStore};
use steward_exec::platform::Platform;
use steward_exec::traefik::{RouteDir, TraefikApi};
use steward_exec::{backup, lifecycle, releases, tenant};
use steward_tools::{Clock, Executor, Registry, SystemClock};

use crate::config::{Config, Key};
use crate::outbox::Channels;
use crate::path;

/// The assembled Steward.
#[derive(Debug)]
pub struct Steward {
    pub store: Store,
    pub audit: Arc<AuditLog>,
    pub inbox: Inbox,
    /// Where notifications are pushed besides the inbox (`[notify.*]` in config.toml).
    pub channels: Arc<Channels>,
    /// The platform as the executors see it (the planner reads its inventory too).
    pub env: Arc<Env>,
    pub clock: Arc<dyn Clock>,
    pub orchestrator: Arc<Orchestrator>,
}

impl Steward {
    /// Opens the store (migrating it), the audit log on it, and starts the orchestrator
    /// (which reconciles executions a crash left open). A Docker Engine that does not answer
    /// is not an error here: platform tools report it when called.
    pub async fn open(cfg: &Config) -> Result<Steward> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = open_store(cfg).await?;
        let audit = Arc::new(
            AuditLog::with_store(
                store.clone(),
                &cfg.home.join("audit"),
                AuditOptions::default(),
            )
            .await
            .context("cannot open the audit log")?,
        );
        let channels = Arc::new(Channels::load(&cfg.home)?);
        let inbox = Inbox::with_routes(store.clone(), channels.routes());
        let env = env(cfg, clock.clone()).await?;
        let origin =
            steward_origin::Engine::load().context("cannot compile the rules of origin")?;
        let executors = executors(Parts {
            env: env.clone(),
            origin: Arc::new(origin),
            store: store.clone(),
            audit: audit.clone(),
            inbox: inbox.clone(),
            clock: clock.clone(),
        });
        let orchestrator = Orchestrator::start(
            Registry::new(executors),
            path::load_policies(cfg)?,
            path::load_guards(cfg)?
                .with_lock_dir(&cfg.home.join("run"))
                .context("cannot create the lock folder for the guards")?,
            audit.clone(),
            ApprovalStore::new(store.clone()),
            clock.clone(),
            Settings {
                approval_ttl_ms: path::approval_ttl_ms(cfg)?,
            },
        )
        .await?;
        Ok(Steward {
            store,
            audit,
            inbox,
            channels,
            env,
            clock,
            orchestrator: Arc::new(orchestrator),
        })
    }

    /// Refreshes the search index and signs a checkpoint over the new head, so a truncated
    /// tail is caught from here on. Call it before the process ends.
    pub async fn close(&self) -> Result<()> {
        self.audit.close().await?;
        Ok(())
    }
}

/// The state store of `state_url`, migrated. Commands that only read or write its tables
/// (incidents, tokens, stored products) open it alone, without the rest of Steward.
pub async fn open_store(cfg: &Config) -> Result<Store> {
    Store::open(cfg.require(Key::StateUrl)?)
        .await
        .context("cannot open the state store")
}

/// What the executors are built from.
#[derive(Debug)]
pub struct Parts {
    pub env: Arc<Env>,
    pub origin: Arc<steward_origin::Engine>,
    pub store: Store,
    pub audit: Arc<AuditLog>,
    pub inbox: Inbox,
    pub clock: Arc<dyn Clock>,
}

/// Every executor Steward has, in one list; `tests/catalogue.rs` checks that together they
/// serve the whole catalogue, each tool once.
pub fn executors(p: Parts) -> Vec<Arc<dyn Executor>> {
    vec![
        Arc::new(lifecycle::LifecycleExecutor::new(p.env.clone())),
        Arc::new(releases::ReleaseExecutor::new(p.env.clone())),
        Arc::new(tenant::TenantExecutor::new(p.env.clone())),
        Arc::new(backup::BackupExecutor::new(p.env)),
        Arc::new(OriginExecutor::new(
            p.origin,
            Some(OriginStore::new(p.store)),
            p.clock.clone(),
        )),
        Arc::new(AuditSearchExecutor::new(p.audit, p.clock.clone())),
        Arc::new(NotifyExecutor::new(p.inbox, p.clock)),
    ]
}

/// The executors' view of the platform: Docker, PostgreSQL, Traefik and their settings.
pub async fn env(cfg: &Config, clock: Arc<dyn Clock>) -> Result<Arc<Env>> {
    let platform = Platform {
        docker: DockerClient::connect_deferred()
            .await
            .context("DOCKER_HOST is not a Docker Engine address")?,
        routes: RouteDir::new(cfg.require(Key::TraefikDynamicDir)?),
        traefik: TraefikApi::new(cfg.require(Key::TraefikApi)?)?,
    };
    // Unset on a host without PostgreSQL: the tools that need it say so when called, the
    // rest (origin, audit, lifecycle) work.
    let pg_url = cfg
        .get(Key::PgUrl)
        .map(|s| s.value.clone())
        .unwrap_or_default();
    let mut exec = ExecConfig::new(cfg.home.join("exec"), pg_url);
    exec.pg_container_host = cfg.require(Key::PgContainerHost)?.to_string();
    exec.traefik_web = cfg.require(Key::TraefikWeb)?.to_string();
    exec.domain = cfg.require(Key::Domain)?.to_string();
    exec.tenant_image = cfg.require(Key::TenantImage)?.to_string();
    exec.tenant_app = cfg.require(Key::TenantApp)?.to_string();
    exec.tenant_database = cfg.require(Key::TenantDatabase)?.to_string();
    exec.tenant_subnet_pool = cfg.require(Key::TenantSubnetPool)?.to_string();
    // The platform's services, from the same file policy reads: no tenant may take a name
    // policy would treat as a platform service.
    let policies = path::policies_dir(cfg)?;
    exec.reserved_services = steward_policy::platform_services(&policies).with_context(|| {
        format!(
            "cannot read the platform services in {}",
            policies.display()
        )
    })?;
    exec.release_retention = cfg
        .require(Key::ReleaseRetention)?
        .parse()
        .map_err(|e| anyhow::anyhow!("release_retention must be a whole number: {e}"))?;
    Ok(Arc::new(Env::new(platform, clock, exec)))
}
