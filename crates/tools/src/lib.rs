//! The tool catalogue: the stable contract between planners, policy and executors.
//!
//! Every tool has a name valid for Claude, OpenAI and MCP (`[a-z_]`), a one-line summary, an
//! [`Effect`] that policy keys on, a typed argument struct ([`args`]) and a JSON Schema
//! generated from it. Executors implement [`Executor`] and only ever see a validated [`Call`].

pub mod args;
mod call;
mod catalogue;
mod clock;
mod error;
mod executor;
pub mod ident;
pub mod schemas;
pub mod when;

pub use call::{schema, settings_left_out, Call};
pub use catalogue::{find, ToolSpec, CATALOGUE};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{ErrorKind, Result, ToolError};
pub use executor::{Done, Executor, Plan, Registry};
pub use steward_protocol::Effect;
