use serde::{Deserialize, Serialize};

use crate::{Actor, IntentId, Timestamp, ToolCall};

/// Where an approval stands. Expired approvals can never be answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved {
        by: Actor,
        at: Timestamp,
    },
    Rejected {
        by: Actor,
        at: Timestamp,
        reason: Option<String>,
    },
    Expired,
}

/// A call waiting for a human. It carries the dry-run so the approver sees the exact change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: String,
    pub intent_id: IntentId,
    pub call: ToolCall,
    pub reason: String,
    pub dry_run: Option<String>,
    pub requested_by: Actor,
    pub requested_at: Timestamp,
    pub expires_at: Timestamp,
    pub status: ApprovalStatus,
}
