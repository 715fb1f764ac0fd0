//! What the orchestrator reports as requests pass, for metrics. A trait, so the agent does
//! not depend on a metrics library; `steward serve` hands in its Prometheus registry.

use std::fmt::Debug;

use steward_protocol::Origin;

/// A timed stage of the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The planner proposing one step from natural language.
    Plan,
    /// Policy deciding a call.
    Vet,
    /// An executor running a call.
    Execute,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Plan => "plan",
            Stage::Vet => "vet",
            Stage::Execute => "execute",
        }
    }
}

/// Receives the orchestrator's observations; must be cheap (it runs on the request path).
pub trait Meter: Send + Sync + Debug {
    /// A request ended as `outcome`: `done`, `planned`, `pending_approval`, `refused` or
    /// `failed`.
    fn ended(&self, tool: &str, origin: Origin, outcome: &'static str);
    /// A stage took `seconds`.
    fn timed(&self, stage: Stage, seconds: f64);
}
