use serde::{Deserialize, Serialize};

/// The policy verdict on one call. Anything that cannot be decided is `Deny` (fail closed).
/// `policies` are the ids of the policies that decided it (empty for the default deny).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Allow {
        policies: Vec<String>,
    },
    NeedsApproval {
        policies: Vec<String>,
        reason: String,
    },
    Deny {
        policies: Vec<String>,
        reason: String,
    },
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The ids of the policies behind the verdict.
    pub fn policies(&self) -> &[String] {
        match self {
            Decision::Allow { policies }
            | Decision::NeedsApproval { policies, .. }
            | Decision::Deny { policies, .. } => policies,
        }
    }
}
