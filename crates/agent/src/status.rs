//! One mapping from how a request ended to what the caller sees: the CLI's exit code and the
//! server's HTTP status come from here, so a denial is exit 3 and 403 wherever it happens.

use steward_tools::ErrorKind;

use crate::Outcome;

/// Exit code of a call that ran, was planned or answered.
pub const EXIT_OK: u8 = 0;
/// Exit code of a call that failed while running, or could not reach what it needed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of input the caller must fix (unknown tool, bad JSON, invalid arguments).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code of a call that did not run: refused by policy or a guard, or waiting for a
/// human.
pub const EXIT_NOT_RUN: u8 = 3;

/// The exit code and HTTP status of an error of `kind` raised at `stage` (`validate`, `vet`,
/// `guard`, `dry_run`, `execute`, or `input` for what never reached the orchestrator).
pub fn for_error(stage: &str, kind: ErrorKind) -> (u8, u16) {
    match (stage, kind) {
        (_, ErrorKind::UnknownTool | ErrorKind::InvalidArgs) => (EXIT_BAD_INPUT, 400),
        ("guard", _) => (EXIT_NOT_RUN, 409),
        (_, ErrorKind::Denied) => (EXIT_NOT_RUN, 403),
        (_, ErrorKind::NotFound) => (EXIT_FAILED, 404),
        (_, ErrorKind::Conflict | ErrorKind::NotOwned) => (EXIT_FAILED, 409),
        (_, ErrorKind::Unavailable | ErrorKind::Failed | ErrorKind::Timeout) => (EXIT_FAILED, 502),
        (_, ErrorKind::Unsupported | ErrorKind::Internal) => (EXIT_FAILED, 500),
    }
}

impl Outcome {
    /// `(exit code, HTTP status)`.
    pub fn codes(&self) -> (u8, u16) {
        match self {
            Outcome::Planned { .. } | Outcome::Done { .. } => (EXIT_OK, 200),
            Outcome::PendingApproval { .. } => (EXIT_NOT_RUN, 202),
            Outcome::Refused { stage, kind, .. } => for_error(stage, *kind),
            Outcome::Failed { kind, .. } => for_error("execute", *kind),
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.codes().0
    }

    /// The outcome's name, as the API and metrics give it.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Refused { .. } => "refused",
            Outcome::Planned { .. } => "planned",
            Outcome::PendingApproval { .. } => "pending_approval",
            Outcome::Done { .. } => "done",
            Outcome::Failed { .. } => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_exit_code_and_status_and_they_agree_on_severity() {
        use ErrorKind::*;
        for kind in [
            UnknownTool,
            InvalidArgs,
            Denied,
            NotFound,
            NotOwned,
            Conflict,
            Unavailable,
            Failed,
            Timeout,
            Unsupported,
            Internal,
        ] {
            for stage in ["input", "validate", "vet", "guard", "dry_run", "execute"] {
                let (exit, status) = for_error(stage, kind);
                assert_ne!(exit, EXIT_OK, "{stage}/{kind:?} is an error");
                assert!(status >= 400, "{stage}/{kind:?} -> {status}");
                // Client mistakes are 4xx and exit 2 or 3; the world failing is exit 1.
                if exit == EXIT_BAD_INPUT {
                    assert_eq!(status, 400);
                }
            }
        }
        assert_eq!(for_error("vet", Denied), (EXIT_NOT_RUN, 403));
        assert_eq!(for_error("guard", Denied), (EXIT_NOT_RUN, 409));
        assert_eq!(for_error("validate", InvalidArgs), (EXIT_BAD_INPUT, 400));
        assert_eq!(for_error("execute", Failed), (EXIT_FAILED, 502));
    }
}
