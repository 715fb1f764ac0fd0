use std::fmt;

/// What kind of failure a tool call met; callers (policy, the planner loop, the CLI) branch
/// on the kind and show the message to a person as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The tool does not exist in the catalogue.
    UnknownTool,
    /// The arguments do not match the tool's schema or naming rules.
    InvalidArgs,
    /// Policy or a guard refused the call.
    Denied,
    /// The target does not exist.
    NotFound,
    /// The target exists but Steward does not own it (no ownership labels).
    NotOwned,
    /// The world is not in a state where the call can run (e.g. name taken).
    Conflict,
    /// A platform dependency (Docker, PostgreSQL, Traefik) did not answer.
    Unavailable,
    /// The change was attempted and failed; the message says what state was left.
    Failed,
    /// A wait (health, route) ran out of time.
    Timeout,
    /// No executor is wired in for this tool.
    Unsupported,
    /// A bug in Steward.
    Internal,
}

/// A tool call's failure, with a message that says what happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ToolError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ToolError {}

pub type Result<T> = std::result::Result<T, ToolError>;
