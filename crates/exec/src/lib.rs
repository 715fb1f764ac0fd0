//! The hands of Steward: deterministic code that talks to the real Docker Engine (bollard),
//! PostgreSQL (sqlx) and Traefik (file provider plus its API).
//!
//! Steward only ever touches Docker objects that carry its labels ([`labels`]).

pub mod docker;
mod error;
pub mod labels;
pub mod platform;
pub mod postgres;
pub mod traefik;

pub use error::{Error, Result};
