use serde::{Deserialize, Serialize};

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
