use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC.
///
/// Kept as a plain integer so the protocol needs no date library; crates that do calendar
/// arithmetic (time expressions such as `yesterday`) convert at their edge.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }
}
