use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{IntentId, Timestamp};

/// Which step of the request path an audit record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    IntentReceived,
    Planned,
    Validated,
    Vetted,
    ApprovalRequested,
    ApprovalAnswered,
    DryRun,
    ExecBegin,
    ExecEnd,
    Observed,
}

/// One append-only, hash-chained entry. `hash` covers `prev_hash` and every other field, so
/// an edit, deletion or reordering breaks the chain at a pinpointable `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub at: Timestamp,
    pub kind: AuditKind,
    pub intent_id: Option<IntentId>,
    pub payload: Value,
    pub prev_hash: String,
    pub hash: String,
}
