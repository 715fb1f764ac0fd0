//! The orchestrator: one request path for every way into Steward (CLI, chat, webhooks,
//! alerts, MCP): validate → vet → approve → dry-run → execute → audit.
//!
//! This crate sees executors only through `steward_tools::Executor`; it never depends on
//! `steward-exec`.

pub mod approvals;
pub mod audit_tool;
mod clip;
pub mod conversation;
mod error;
pub mod inbox;
pub mod incidents;
pub mod meter;
pub mod orchestrator;
pub mod outbox;
pub mod principal;
pub mod seal;
pub mod status;
pub mod triggers;

pub use error::{Error, Result};
pub use orchestrator::{Orchestrator, Outcome, Request, Settings};
