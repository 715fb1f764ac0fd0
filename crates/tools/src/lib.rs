//! The tool catalogue: the stable contract between planners, policy and executors.
//!
//! Every tool has a name valid for Claude, OpenAI and MCP (`[a-z_]`), a one-line summary and
//! an [`Effect`] that policy keys on.

mod catalogue;

pub use catalogue::{find, ToolSpec, CATALOGUE};
pub use steward_protocol::Effect;
