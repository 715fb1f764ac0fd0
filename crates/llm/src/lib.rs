//! The planner: backends that turn natural language into proposed tool calls (llama.cpp
//! locally, Claude over the Messages API), the prompts and the constrained decoding behind
//! them, tool retrieval, the evals, and the model manifests that say which weights Steward
//! runs and how to check them.

pub mod answer;
pub mod claude;
pub mod complete;
pub mod decode;
pub mod draft;
mod error;
pub mod eval;
pub mod facts;
pub mod fence;
pub mod given;
pub mod ground;
pub mod intent;
pub mod local;
pub mod manifest;
pub mod plan;
pub mod prompt;
pub mod retrieval;
pub mod retrieving;
pub mod router;
mod saved;
pub mod scale;
pub mod shape;
pub mod typos;

pub use claude::{ClaudeBackend, ClaudeConfig};
pub use error::{Error, Result};
pub use plan::{
    Backend, Inventory, InventoryItem, PlanRequest, Proposal, ProposedCall, TextStream, ToolDef,
    Turn, UntrustedSource,
};
pub use router::{validate_call, Route, Router};
