//! The pieces of the `steward` binary, as a library so integration tests can load the same
//! configuration the binary does.

pub mod approvals;
pub mod audit;
pub mod call;
pub mod chat;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod draft;
pub mod eval;
pub mod hooks;
pub mod incidents;
pub mod init;
pub mod origin;
pub mod outbox;
pub mod path;
pub mod planner;
pub mod rules;
pub mod schedules;
pub mod serve;
pub mod status;
pub mod token;
pub mod wiring;

use std::path::{Path, PathBuf};

/// Steward's home: `--home`, else `$STEWARD_HOME`, else `./.steward`; made absolute so
/// paths derived from it do not depend on where a child process runs.
pub fn resolve_home(flag: Option<&Path>, env: Option<String>) -> std::io::Result<PathBuf> {
    let home = match (flag, env.filter(|e| !e.is_empty())) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(e)) => PathBuf::from(e),
        (None, None) => PathBuf::from(".steward"),
    };
    if home.is_absolute() {
        Ok(home)
    } else {
        Ok(std::env::current_dir()?.join(home))
    }
}
