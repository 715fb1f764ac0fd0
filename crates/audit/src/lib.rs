//! Steward's own state: the hash-chained audit log and, later, approvals and sessions.
//! SQLite by default (one file under the data dir), PostgreSQL when given a URL; both are
//! migrated by sqlx from `migrations/<backend>/`.

mod error;
mod store;

pub use error::{Error, Result};
pub use store::{Backend, Store};
