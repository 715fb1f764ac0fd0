//! The plain types that travel between Steward's crates and out to its clients: where a
//! request came from ([`Origin`], [`Actor`]), what policy decided ([`Decision`]), what a
//! trigger source reports ([`Event`]) and what the audit log keeps ([`AuditRecord`]).
//!
//! This crate holds data only. It depends on serde alone so every other crate, including
//! outside clients, can share these shapes without pulling in a runtime.

mod audit;
mod call;
mod decision;
mod event;
mod intent;
mod time;

pub use audit::{AuditEntry, AuditKind, AuditRecord};
pub use call::Effect;
pub use decision::Decision;
pub use event::{Event, EventSource, EventStatus};
pub use intent::{Actor, IntentId, Origin};
pub use time::Timestamp;
