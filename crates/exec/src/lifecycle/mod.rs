//! Inventory and lifecycle of services: list, status, logs, metrics, restart, stop, start, limits.
//!
//! Every tool finds its service through the ownership labels ([`crate::inventory`]), so a
//! container without `steward.service` is never touched: naming one is `NotOwned`. The
//! container a tool acts on is the service's *live* container ([`target`]). Reads return a
//! plan marked "read only" on dry run; writes describe the concrete containers and values
//! before and after, and change nothing.

mod limits;
mod list;
mod logs;
mod metrics;
mod power;
mod status;
mod target;

use std::sync::Arc;

use steward_tools::{Call, Done, ErrorKind, Executor, Plan, Result, ToolError};

use crate::env::Env;

/// Serves inventory and lifecycle tools.
#[derive(Debug, Clone)]
pub struct LifecycleExecutor {
    env: Arc<Env>,
}

impl LifecycleExecutor {
    pub fn new(env: Arc<Env>) -> Self {
        Self { env }
    }
}

#[async_trait::async_trait]
impl Executor for LifecycleExecutor {
    fn tools(&self) -> &'static [&'static str] {
        &[
            "service_list",
            "service_status",
            "service_logs",
            "service_metrics",
            "service_restart",
            "service_stop",
            "service_start",
            "service_set_limits",
        ]
    }

    async fn dry_run(&self, call: &Call) -> Result<Plan> {
        let env = &self.env;
        match call {
            Call::ServiceList(a) => Ok(list::plan(env, a)),
            Call::ServiceStatus(a) => status::plan(env, a.service.as_str()).await,
            Call::ServiceLogs(a) => logs::plan(env, a).await,
            Call::ServiceMetrics(a) => metrics::plan(env, a).await,
            Call::ServiceRestart(a) => power::plan_restart(env, a.service.as_str()).await,
            Call::ServiceStop(a) => power::plan_stop(env, a.service.as_str()).await,
            Call::ServiceStart(a) => power::plan_start(env, a.service.as_str()).await,
            Call::ServiceSetLimits(a) => limits::plan(env, a).await,
            other => Err(not_mine(other)),
        }
    }

    async fn execute(&self, call: &Call) -> Result<Done> {
        let env = &self.env;
        match call {
            Call::ServiceList(a) => list::run(env, a).await,
            Call::ServiceStatus(a) => status::run(env, a.service.as_str()).await,
            Call::ServiceLogs(a) => logs::run(env, a).await,
            Call::ServiceMetrics(a) => metrics::run(env, a).await,
            Call::ServiceRestart(a) => power::restart(env, a.service.as_str()).await,
            Call::ServiceStop(a) => power::stop(env, a.service.as_str()).await,
            Call::ServiceStart(a) => power::start(env, a.service.as_str()).await,
            Call::ServiceSetLimits(a) => limits::run(env, a).await,
            other => Err(not_mine(other)),
        }
    }
}

/// A call routed here by mistake: a wiring bug, never a user error.
fn not_mine(call: &Call) -> ToolError {
    ToolError::new(
        ErrorKind::Unsupported,
        format!("the lifecycle executor does not serve {}", call.tool()),
    )
}

/// A Docker call that was refused: the engine's own reason with what steward was doing.
/// Anything else (engine down, timeouts) keeps its usual kind, so "Docker is down" stays
/// `Unavailable`.
fn docker_refused(e: bollard::errors::Error, doing: String) -> ToolError {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } if status_code != 404 => ToolError::new(
            ErrorKind::Failed,
            format!("{doing}: docker refused: {message}"),
        ),
        other => crate::Error::from(other).into(),
    }
}

/// The plan of a read-only tool: it names what is read and promises no change.
fn read_only(summary: String, steps: Vec<String>) -> Plan {
    Plan {
        summary: format!("read only: {summary}"),
        steps,
        changes: false,
    }
}

/// Milliseconds as seconds with one decimal, for summaries ("2.3s").
fn secs(ms: u128) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}
