//! Planner evaluations: cases as data (`evals/cases/*.jsonl`), tool lists (our catalogue or
//! any list in the OpenAI function format), scoring of proposed calls, the report, and the
//! comparison against a committed baseline. Nothing here needs a model: [`run`] drives any
//! [`Backend`](crate::Backend), and everything else is pure. A case with a `rule` drafts a
//! trigger rule from its instruction instead of proposing a call ([`ExpectedRule`]).
//!
//! The case format is documented in `evals/README.md`.

mod baseline;
mod case;
mod report;
mod rule;
mod run;
mod score;
mod tools;

#[cfg(test)]
mod tests;

pub use baseline::{compare, Baseline, Regression};
pub use case::{load_cases, load_inventory, parse_cases, validate, Accept, Case, Expected};
pub use report::{CaseRow, CategoryStats, Report};
pub use rule::{score_rule, ExpectedRule, ExpectedStep};
pub use run::{before_the_newest_words, request_for, run, tools_for, Drafting};
pub use score::{score, Verdict, EVAL_NOW};
pub use tools::{normalize_schema, ToolSet};
