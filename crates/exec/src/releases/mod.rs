//! Releases: health-gated deploy next to the old release, history, and rollback by release or
//! time.
//!
//! A release is a container `<service>-r<N>` labelled with its service, kind and release id.
//! The live one is the container the service's Traefik route points at; retired ones are kept
//! stopped (up to `release_retention`) so a rollback just starts one again. The history of
//! which release served when is a JSON file per service ([`history`]).

mod container;
mod cutover;
mod deploy;
pub mod history;
mod list;
mod rollback;
mod route;
mod state;
pub mod time;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use steward_tools::{Call, Done, ErrorKind, Executor, Plan, Result, ToolError};

use crate::env::Env;

pub use container::STOP_GRACE_SECS;

/// Serves the release tools.
#[derive(Debug, Clone)]
pub struct ReleaseExecutor {
    env: Arc<Env>,
    /// For the confirming request through Traefik's web entry point.
    http: reqwest::Client,
    /// One switch at a time per service within this process: two concurrent deploys would
    /// both pick the same next release id and race for the route.
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl ReleaseExecutor {
    pub fn new(env: Arc<Env>) -> Self {
        Self {
            env,
            http: reqwest::Client::new(),
            locks: Arc::default(),
        }
    }

    fn lock_for(&self, service: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(service.to_string()).or_default().clone()
    }
}

fn not_mine(call: &Call) -> ToolError {
    ToolError::new(
        ErrorKind::Internal,
        format!("{} was routed to the release executor", call.tool()),
    )
}

#[async_trait::async_trait]
impl Executor for ReleaseExecutor {
    fn tools(&self) -> &'static [&'static str] {
        &["service_deploy", "service_releases", "service_rollback"]
    }

    async fn dry_run(&self, call: &Call) -> Result<Plan> {
        let env = &self.env;
        match call {
            Call::ServiceDeploy(a) => deploy::dry_run(env, a).await,
            Call::ServiceReleases(a) => list::dry_run(env, a).await,
            Call::ServiceRollback(a) => rollback::dry_run(env, a).await,
            _ => Err(not_mine(call)),
        }
    }

    async fn execute(&self, call: &Call) -> Result<Done> {
        let env = &self.env;
        match call {
            Call::ServiceDeploy(a) => {
                let lock = self.lock_for(a.service.as_str());
                let _guard = lock.lock().await;
                deploy::execute(env, &self.http, a).await
            }
            Call::ServiceReleases(a) => list::execute(env, a).await,
            Call::ServiceRollback(a) => {
                let lock = self.lock_for(a.service.as_str());
                let _guard = lock.lock().await;
                rollback::execute(env, &self.http, a).await
            }
            _ => Err(not_mine(call)),
        }
    }
}
