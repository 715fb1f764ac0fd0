use serde::{Deserialize, Serialize};

/// Opaque identifier of one intent; every later step refers back to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IntentId(pub String);

/// Where a request entered Steward. The origin decides how far its text can be trusted:
/// only `Chat`, `Api` and `Schedule` are typed or configured by the operators themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Chat,
    Webhook,
    Alert,
    Monitor,
    Mcp,
    Api,
    Schedule,
}

impl Origin {
    /// Untrusted origins carry text written by something other than an operator
    /// (webhook bodies, alert annotations, outside agents). They may never run a
    /// destructive tool without a human.
    pub fn is_untrusted(self) -> bool {
        matches!(
            self,
            Origin::Webhook | Origin::Alert | Origin::Monitor | Origin::Mcp
        )
    }
}

/// Who is behind an intent: a person, or a named automated source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    User { name: String },
    Service { name: String },
}
