//! The hands of Steward: deterministic code that talks to the real Docker Engine (bollard),
//! PostgreSQL (sqlx) and Traefik (file provider plus its API).
//!
//! Steward only ever touches Docker objects that carry its labels ([`labels`]). Every tool is
//! served by an [`Executor`](steward_tools::Executor); [`executors`] lists them for the binary
//! to wire into a registry. The origin executor ([`origin::OriginExecutor`]) needs no
//! platform, only the state store, and is built on its own.

pub mod backup;
pub mod docker;
pub mod env;
mod error;
pub mod inventory;
pub mod labels;
pub mod lifecycle;
pub mod origin;
pub mod platform;
pub mod postgres;
pub mod releases;
pub mod tenant;
pub mod traefik;

use std::sync::Arc;

use steward_tools::Executor;

pub use error::{Error, Result};

/// Every executor of this crate, sharing one [`env::Env`].
pub fn executors(env: Arc<env::Env>) -> Vec<Arc<dyn Executor>> {
    vec![
        Arc::new(lifecycle::LifecycleExecutor::new(env.clone())),
        Arc::new(releases::ReleaseExecutor::new(env.clone())),
        Arc::new(tenant::TenantExecutor::new(env.clone())),
        Arc::new(backup::BackupExecutor::new(env)),
    ]
}
