use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Timestamp;

/// Identifier of one tool call within an intent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub String);

/// How much a tool can change the world; policy keys on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Answers or asks back; touches nothing.
    None,
    Read,
    Write,
    Destructive,
}

/// A proposed invocation of one catalogue tool. `args` stays untyped JSON here; the tools
/// crate validates it against the tool's schema and deserializes it into the typed struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: CallId,
    pub tool: String,
    pub args: Value,
}

/// How an executed call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ToolOutcome {
    Ok { output: Value },
    Error { message: String },
}

/// The result of running a call (or of dry-running it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    pub call_id: CallId,
    pub tool: String,
    pub dry_run: bool,
    /// One human-readable line, shown in chat and written to the audit log.
    pub summary: String,
    pub outcome: ToolOutcome,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}
