//! The plain types that travel along Steward's single request path:
//!
//! `Intent -> plan -> ToolCall -> validate -> vet (Decision) -> approve (ApprovalRequest)
//! -> execute (ToolResult) -> audit (AuditRecord)`.
//!
//! This crate holds data only. It depends on serde alone so every other crate, including
//! outside clients, can share these shapes without pulling in a runtime.

mod approval;
mod audit;
mod call;
mod decision;
mod intent;
mod time;

pub use approval::{ApprovalRequest, ApprovalStatus};
pub use audit::{AuditEntry, AuditKind, AuditRecord};
pub use call::{CallId, Effect, ToolCall, ToolOutcome, ToolResult};
pub use decision::Decision;
pub use intent::{Actor, Intent, IntentBody, IntentId, Origin};
pub use time::Timestamp;
