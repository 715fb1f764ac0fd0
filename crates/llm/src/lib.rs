//! Planner backends, prompts and grammars (later issues), and the model manifests that say
//! which weights Steward runs and how to check them.

mod error;
pub mod manifest;

pub use error::{Error, Result};
