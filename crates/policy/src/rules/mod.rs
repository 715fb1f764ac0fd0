//! Trigger rulebooks (`policies/rules/*.toml`): data that turns events into ladders of typed
//! calls, checked at load with their own examples, like the Cedar files.
//!
//! - [`Rulebook::load_dir`] parses and checks every file (see `policies/README.md`,
//!   "Rulebooks"); [`Rulebook::matching`] finds the rules for an event.
//! - [`Rule::plan`] renders a rule's ladder for one event from its typed values only, and
//!   [`decide`] says what policy makes of each step. Neither runs anything.
//! - [`draft`] is the grammar a planner fills in to draft a rule from plain words, and the
//!   way from a filled-in draft back to a rule file.

pub mod draft;
mod examples;
mod load;
mod matching;
mod model;
mod render;
mod syntax;
mod template;
pub use template::{fill_previous, needs_previous};

pub use examples::{At, EventInput};
pub use matching::{decide, decide_at};
pub use model::{
    CatchUp, Gate, Matcher, Planned, PlannedStep, Rule, Rulebook, Step, Throttle, Until, FOR_EACH,
};
pub use render::duration;
