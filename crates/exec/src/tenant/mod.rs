//! Tenant provisioning: subdomain checks, provision and destroy, converging after a crash at
//! any step.
//!
//! A tenant `acme-research` (id `acme_research`) is, in this order of creation:
//!
//! | step | object |
//! |---|---|
//! | `database` | the shared tenant database (`tenant_database`), PUBLIC stripped of every privilege on it and on its `public` schema |
//! | `schema` | schema `tenant_acme_research`, owned by the admin role |
//! | `secret` | a random 32-hex password in `<state_dir>/tenants/acme_research/password` (0600) |
//! | `role` | role `tenant_user_acme_research`: LOGIN, connection limit, `search_path`, `statement_timeout` |
//! | `grants` | REVOKE first, then CONNECT on the database and USAGE, CREATE on its schema only; the admin role is made a member so it can dump the schema |
//! | `network` | Docker network `<app>_tenant_acme_research_net` |
//! | `container` | `<app>_tenant_acme_research`: plan limits, `no-new-privileges`, all capabilities dropped, restart `unless-stopped`, `DATABASE_URL` |
//! | `route` | Traefik route `acme-research.<domain>` with a security headers middleware |
//! | `router` | Traefik has loaded the route: its API shows `<subdomain>@file` enabled |
//! | `ready` | the app answers 200 through Traefik to a request with the tenant's Host header |
//!
//! Every step checks before it changes anything, so re-running after a crash anywhere
//! converges, and a re-run of a finished call reports `changed: false`. Destroy runs the other
//! way round after a final backup (`backup`, `route`, `container`, `network`, `sessions`,
//! `schema`, `role`, `secret`): the route goes first so no route ever points at a container
//! that is gone.
//!
//! # Test hook: failpoints
//!
//! `STEWARD_FAILPOINT=tenant_provision:<step>` (or `tenant_destroy:<step>`) makes the process
//! abort (`std::process::abort`) right after that step has finished, the way a crash or a
//! `kill -9` would. The crash tests use it to prove that a re-run converges from every step.
//! It is read when a run starts; unset, it costs nothing.

mod container;
mod destroy;
mod final_backup;
mod names;
mod provision;
mod secret;
mod sql;
mod steps;
mod subdomain;

use std::sync::Arc;

use sqlx::PgPool;
use steward_tools::{Call, Done, ErrorKind, Executor, Plan, Result, ToolError};
use tokio::sync::OnceCell;

use crate::env::Env;

pub use container::Limits;
pub use names::TenantNames;
pub use sql::{quote_ident, quote_literal};
pub use steps::FAILPOINT_VAR;
pub use subdomain::FORMAT_RULES;

/// Serves the tenant tools.
#[derive(Debug, Clone)]
pub struct TenantExecutor {
    shared: Arc<Shared>,
}

/// What the tenant tools share between calls: the world, and a pool on the tenant database
/// (made once that database exists).
#[derive(Debug)]
struct Shared {
    env: Arc<Env>,
    tenant_pool: OnceCell<PgPool>,
}

impl Shared {
    /// The pool on the tenant database, which must exist.
    async fn tenant_pool(&self) -> crate::Result<&PgPool> {
        self.tenant_pool
            .get_or_try_init(|| {
                sql::tenant_pool(&self.env.config.pg_url, &self.env.config.tenant_database)
            })
            .await
    }

    /// The pool on the tenant database, or `None` when the database does not exist yet.
    async fn tenant_pool_if_exists(&self) -> crate::Result<Option<&PgPool>> {
        if let Some(p) = self.tenant_pool.get() {
            return Ok(Some(p));
        }
        let admin = self.env.admin_pool().await?;
        if sql::database_exists(admin, &self.env.config.tenant_database).await? {
            Ok(Some(self.tenant_pool().await?))
        } else {
            Ok(None)
        }
    }
}

impl TenantExecutor {
    pub fn new(env: Arc<Env>) -> Self {
        Self {
            shared: Arc::new(Shared {
                env,
                tenant_pool: OnceCell::new(),
            }),
        }
    }
}

fn wrong_tool(call: &Call) -> ToolError {
    ToolError::new(
        ErrorKind::Unsupported,
        format!("the tenant executor does not serve {}", call.tool()),
    )
}

#[async_trait::async_trait]
impl Executor for TenantExecutor {
    fn tools(&self) -> &'static [&'static str] {
        &[
            "tenant_check_subdomain",
            "tenant_provision",
            "tenant_destroy",
        ]
    }

    async fn dry_run(&self, call: &Call) -> Result<Plan> {
        match call {
            Call::TenantCheckSubdomain(a) => {
                // A malformed name is invalid input (exit 2), refused before anything runs.
                subdomain::refuse_invalid(&self.shared.env, &a.subdomain).await?;
                Ok(Plan {
                    summary: format!("check whether subdomain {:?} is available", a.subdomain),
                    steps: vec![
                        "judge the name against the format rules and the reserved names".into(),
                        "look for tenants, platform services and route files that use it".into(),
                        "suggest 3 free names when it is taken".into(),
                    ],
                    changes: false,
                })
            }
            Call::TenantProvision(a) => provision::plan(&self.shared, a).await,
            Call::TenantDestroy(a) => destroy::plan(&self.shared, a).await,
            other => Err(wrong_tool(other)),
        }
    }

    async fn execute(&self, call: &Call) -> Result<Done> {
        match call {
            Call::TenantCheckSubdomain(a) => {
                let (summary, output) = subdomain::check(&self.shared.env, &a.subdomain).await?;
                Ok(Done {
                    summary,
                    output,
                    changed: false,
                })
            }
            Call::TenantProvision(a) => provision::run(&self.shared, a).await,
            Call::TenantDestroy(a) => destroy::run(&self.shared, a).await,
            other => Err(wrong_tool(other)),
        }
    }
}
