//! Trigger rulebooks (`policies/rules/*.toml`): data that turns events into ladders of typed
//! calls, checked at load with their own examples, like the Cedar files.
//!
//! - [`Rulebook::load_dir`] parses and checks every file (see `policies/README.md`,
//!   "Rulebooks"); [`Rulebook::matching`] finds the rules for an event.
//! - [`Rule::plan`] renders a rule's ladder for one event from its typed values only, and
//!   [`decide`] says what policy makes of each step. Neither runs anything.

mod examples;
mod load;
mod matching;
mod model;
mod render;
mod syntax;
mod template;

pub use examples::{At, EventInput};
pub use matching::{decide, decide_at};
pub use model::{Gate, Matcher, Planned, PlannedStep, Rule, Rulebook, Step, Throttle, Until};
pub use render::duration;
