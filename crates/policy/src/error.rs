//! Errors of loading policies, entities and guard configuration. Vetting itself never
//! returns an error: anything that goes wrong while deciding becomes a `Deny` (fail closed).

use std::path::PathBuf;

/// Why policies, entities or guards could not be loaded. Every variant names the file, and
/// the line when there is one, so an operator can fix the source without guessing.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The Cedar schema does not parse.
    #[error("{}: invalid Cedar schema: {message}", path.display())]
    Schema { path: PathBuf, message: String },

    /// A policy does not parse, lacks its `@id`, or fails schema validation.
    #[error("{}{}: {message}", path.display(), at_line(*line))]
    Policy {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// An `@example` line is malformed or its request cannot be built.
    #[error("{}:{line}: bad example: {message}", path.display())]
    BadExample {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// An example's decision differs from the one it declares; the policies refuse to load.
    #[error(
        "{}:{line}: example failed: {example}\n  expected: {expected}\n  got:      {got}",
        path.display()
    )]
    Example {
        path: PathBuf,
        line: usize,
        example: String,
        expected: String,
        got: String,
    },

    /// The principals file (entities.toml) is malformed or does not match the schema.
    #[error("{}: {message}", path.display())]
    Entities { path: PathBuf, message: String },

    /// The guards configuration is malformed or out of range.
    #[error("{}: {message}", path.display())]
    Guards { path: PathBuf, message: String },

    /// A rulebook file (`policies/rules/*.toml`) is malformed, or one of its rules fails a
    /// check or an example; the message names the rule and the field.
    #[error("{}: {message}", path.display())]
    Rule { path: PathBuf, message: String },

    /// A rule cannot be planned for an event: a value it needs is missing, or the rendered
    /// arguments fail the tool's schema. Nothing runs.
    #[error("rule {rule}: {message}")]
    Plan { rule: String, message: String },

    /// A principal string such as `operator:alice` is malformed.
    #[error("invalid principal {input:?}: {message}")]
    Principal { input: String, message: String },
}

pub type Result<T> = std::result::Result<T, PolicyError>;

/// `:N` for a known line; nothing when the error concerns the whole file (line 0).
fn at_line(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}
