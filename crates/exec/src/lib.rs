//! The hands of Steward: deterministic code that talks to the real Docker Engine (bollard),
//! PostgreSQL (sqlx) and Traefik (file provider plus its API).
//!
//! Steward only ever touches Docker objects that carry its labels ([`labels`]). Every tool is
//! served by an [`Executor`](steward_tools::Executor); the binary's one wiring
//! (`steward-cli`'s `wiring` module) lists them all, with the agent's own, in one registry.
//! The origin executor ([`origin::OriginExecutor`]) needs no platform, only the state store.

pub mod backup;
pub mod docker;
pub mod env;
mod error;
pub mod inventory;
pub mod labels;
pub mod lifecycle;
pub mod monitor;
pub mod origin;
pub mod platform;
pub mod postgres;
pub mod releases;
pub mod tenant;
pub mod traefik;

pub use error::{Error, Result};
