use serde::{Deserialize, Serialize};

/// The policy verdict on one call. Anything that cannot be decided is `Deny` (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Allow { policy: String },
    NeedsApproval { policy: String, reason: String },
    Deny { policy: String, reason: String },
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}
