//! The executor contract. `agent` sees the hands of Steward only through this trait; the
//! concrete executors live in `steward-exec` and are wired in by the binary.
//!
//! Contract, checked for every executor by the shared compliance test:
//! - it declares the tools it serves, and each tool's effect comes from the catalogue;
//! - `dry_run` describes the change and changes nothing;
//! - `execute` is idempotent: re-running a finished call converges to the same state and
//!   reports that nothing changed;
//! - it touches only objects that carry Steward's ownership labels.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call::Call;
use crate::error::{ErrorKind, Result, ToolError};

/// What a dry run says would happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// One line for a person: "restart rentguy (container rentguy-r2)".
    pub summary: String,
    /// The concrete steps, in order.
    pub steps: Vec<String>,
    /// False when the world already matches: executing would change nothing.
    pub changes: bool,
}

/// What an executed call did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// One line for a person and the audit log.
    pub summary: String,
    /// Structured result for the planner and `--json`.
    pub output: Value,
    /// False when the world already matched and nothing was changed.
    pub changed: bool,
}

/// Runs catalogue tools against the real world.
#[async_trait::async_trait]
pub trait Executor: Send + Sync + Debug {
    /// The catalogue tools this executor serves.
    fn tools(&self) -> &'static [&'static str];

    /// Describes what `execute` would do, without changing anything.
    async fn dry_run(&self, call: &Call) -> Result<Plan>;

    /// Performs the call; idempotent.
    async fn execute(&self, call: &Call) -> Result<Done>;
}

/// Executors by tool name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_tool: HashMap<&'static str, Arc<dyn Executor>>,
}

impl Registry {
    pub fn new(executors: impl IntoIterator<Item = Arc<dyn Executor>>) -> Self {
        let mut by_tool = HashMap::new();
        for executor in executors {
            for tool in executor.tools() {
                by_tool.insert(*tool, executor.clone());
            }
        }
        Self { by_tool }
    }

    /// The executor for a tool, or an `Unsupported` error naming it.
    pub fn get(&self, tool: &str) -> Result<&Arc<dyn Executor>> {
        self.by_tool.get(tool).ok_or_else(|| {
            ToolError::new(
                ErrorKind::Unsupported,
                format!("no executor is wired in for {tool}"),
            )
        })
    }

    /// Every distinct executor, for the compliance test.
    pub fn executors(&self) -> Vec<Arc<dyn Executor>> {
        let mut out: Vec<Arc<dyn Executor>> = Vec::new();
        for e in self.by_tool.values() {
            if !out.iter().any(|o| Arc::ptr_eq(o, e)) {
                out.push(e.clone());
            }
        }
        out
    }

    pub async fn dry_run(&self, call: &Call) -> Result<Plan> {
        self.get(call.tool())?.dry_run(call).await
    }

    pub async fn execute(&self, call: &Call) -> Result<Done> {
        self.get(call.tool())?.execute(call).await
    }
}
