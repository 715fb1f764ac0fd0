use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Actor, Decision, IntentId, Origin, Timestamp};

/// Which step of the request path an audit record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A call was refused (invalid, denied by policy or a guard); nothing ran.
    Refused,
    /// A call needs a human; the record holds the plan and the approval id.
    ApprovalRequested,
    /// A human approved or denied a pending call, or it expired.
    ApprovalAnswered,
    /// Execution started. Until a matching `ExecEnd` exists the record is open.
    ExecBegin,
    /// Execution finished (result or error, duration); `refers_to` is the begin's seq.
    ExecEnd,
    /// An open `ExecBegin` found at start-up (a crash between execute and audit-end),
    /// closed with an unknown outcome; `refers_to` is the begin's seq.
    Reconciled,
    /// A person changed what Steward may do: a rule file written by `steward rules draft
    /// --save`. `args` holds the change, `outcome` the file and its sha256.
    PolicyChanged,
}

/// What a caller appends. The audit log redacts secrets in `args`, `plan` and `outcome`,
/// then assigns `seq`, `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub kind: Option<AuditKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_id: Option<IntentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The natural-language text the call was planned from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Approval id and how it stands (`pending`, `approved by ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Value>,
    /// The dry-run plan shown before execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
    /// Result or error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// For `ExecEnd` and `Reconciled`: the seq of the `ExecBegin` they close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<u64>,
}

/// One append-only, hash-chained entry. `hash` covers `seq`, `prev_hash` and the entry, so
/// an edit, deletion or reordering breaks the chain at a pinpointable `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub prev_hash: String,
    pub hash: String,
    #[serde(flatten)]
    pub entry: AuditEntry,
}
