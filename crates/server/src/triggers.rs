//! What the server hands its events to, and what it asks before saying it is ready. Both
//! are traits so this crate does not depend on the trigger engine; `steward serve` adapts
//! the real engine, tests use in-memory ones.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use steward_protocol::Event;

/// One accepted request: its id, who made it and what it reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub request_id: String,
    /// The authenticated principal (`webhook:alertmanager`, `webhook:signup`).
    pub principal: String,
    pub events: Vec<Event>,
}

/// The trigger engine as the server sees it.
#[async_trait]
pub trait Triggers: Send + Sync + Debug {
    /// Records a batch of submissions durably, in one transaction, and answers one value per
    /// submission in order (at least `{"request_id", "status"}`). The server group-commits:
    /// many concurrent requests arrive here as one batch.
    async fn submit(&self, batch: Vec<Submission>) -> Result<Vec<Value>, String>;

    /// The engine's view of a request, `None` when it does not know the id.
    async fn request(&self, id: &str) -> Result<Option<Value>, String>;
}

/// One readiness check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Check {
    pub fn ok(name: &str) -> Check {
        Check {
            name: name.to_string(),
            ok: true,
            detail: String::new(),
        }
    }

    pub fn failed(name: &str, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_string(),
            ok: false,
            detail: detail.into(),
        }
    }
}

/// What `/readyz` asks (state store, Docker, policies and rules loaded, ...).
#[async_trait]
pub trait Readiness: Send + Sync + Debug {
    async fn check(&self) -> Vec<Check>;
}
