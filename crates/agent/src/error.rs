use steward_tools::ToolError;

/// Errors of the orchestrator itself (a refused or failed call is an `Outcome`, not this).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("audit log: {0}")]
    Audit(#[from] steward_audit::Error),
    #[error("policy: {0}")]
    Policy(#[from] steward_policy::Error),
    #[error("state store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("no approval with id {0:?}; `steward approvals` lists them")]
    NoSuchApproval(String),
    /// An answer to an approval request was refused (and audited as such).
    #[error("{0}")]
    Refused(String),
    #[error("approval key: {0}")]
    Seal(String),
    #[error("state store holds a damaged row: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Tool(ToolError),
    #[error("planner: {0}")]
    Planner(steward_llm::Error),
    #[error("trigger engine: {0}")]
    Triggers(String),
}

pub type Result<T> = std::result::Result<T, Error>;
