//! Steward's own state: the hash-chained audit log and, later, approvals and sessions.
//! SQLite by default (one file under the data dir), PostgreSQL when given a URL; both are
//! migrated by sqlx from `migrations/<backend>/`.
//!
//! The audit log ([`AuditLog`]) is append-only and hash-chained ([`chain`]): each record's
//! hash covers its seq, its predecessor's hash and its canonical JSON, so an edit, deletion
//! or reordering breaks the chain at a seq [`AuditLog::verify`] can name. Signed head
//! checkpoints ([`checkpoint`]) catch a truncated tail, which leaves a valid chain. Secrets
//! are redacted ([`redact`]) before anything is hashed, stored or indexed. A tantivy index
//! (rebuildable from the store at any time) serves [`AuditLog::search`].

pub mod chain;
pub mod checkpoint;
mod db;
mod error;
mod index;
mod liveness;
mod log;
pub mod redact;
mod store;
mod verify;

pub use checkpoint::Checkpoint;
pub use error::{Error, Result};
pub use liveness::Executing;
pub use log::{AuditLog, AuditOptions, INTERRUPTED};
pub use store::{sql_for, value_rows, Backend, Store};
pub use verify::{Problem, ProblemKind, VerifyReport};
