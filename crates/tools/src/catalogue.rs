use steward_protocol::Effect;

/// Static description of one catalogue tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub effect: Effect,
}

const fn spec(name: &'static str, effect: Effect, summary: &'static str) -> ToolSpec {
    ToolSpec {
        name,
        summary,
        effect,
    }
}

use Effect::{Destructive, None as NoEffect, Read, Write};

/// The catalogue from DESIGN.md. Names are stable; tools may be added, never renamed.
pub const CATALOGUE: &[ToolSpec] = &[
    spec(
        "service_list",
        Read,
        "List managed services, optionally by kind (platform|tenant).",
    ),
    spec(
        "service_status",
        Read,
        "Health, image, release, route and limits of one service.",
    ),
    spec(
        "service_logs",
        Read,
        "Recent log lines of a service (errors, output), filtered by since, tail and grep.",
    ),
    spec(
        "service_metrics",
        Read,
        "CPU, memory, network and PIDs of a service.",
    ),
    spec(
        "service_releases",
        Read,
        "Release history of a service with timestamps.",
    ),
    spec(
        "service_restart",
        Write,
        "Restart (bounce, kick) a service's live container.",
    ),
    spec(
        "service_stop",
        Write,
        "Stop a service: shut it down, take it offline.",
    ),
    spec(
        "service_start",
        Write,
        "Start a stopped service again: bring it back up.",
    ),
    spec(
        "service_deploy",
        Write,
        "Deploy an image, health-gated, keeping the old release.",
    ),
    spec(
        "service_rollback",
        Write,
        "Return a service to a previous release or point in time.",
    ),
    spec(
        "service_set_limits",
        Write,
        "Set memory, CPU and PID limits of a running service.",
    ),
    spec(
        "tenant_check_subdomain",
        Read,
        "Check whether a tenant subdomain is free; suggest others.",
    ),
    spec(
        "tenant_provision",
        Write,
        "Create a tenant: schema, role, container and route.",
    ),
    spec(
        "tenant_destroy",
        Destructive,
        "Remove a tenant after a final backup.",
    ),
    spec(
        "db_backup",
        Write,
        "Back up a tenant schema or platform database.",
    ),
    spec("db_backups_list", Read, "List the backups of a target."),
    spec(
        "db_verify_backup",
        Read,
        "Check that a backup is good: load it into a scratch copy and compare.",
    ),
    spec("db_restore", Destructive, "Restore a target from a backup."),
    spec(
        "audit_search",
        Read,
        "Search Steward's audit log: who did what, when (not a service's own logs).",
    ),
    spec(
        "origin_check",
        Read,
        "Decide whether a product originates under an agreement.",
    ),
    spec(
        "origin_compare",
        Read,
        "Under which of our agreements does a product qualify?",
    ),
    spec(
        "notify",
        Write,
        "Escalate a message to a human through the configured channel.",
    ),
    spec("respond", NoEffect, "Answer or ask back without acting."),
];

/// Looks a tool up by name. Unknown names are the caller's error to report (fail closed).
/// What a call whose tool is missing from the catalogue is treated as: destructive, under a
/// name no policy permits, so that a mismatch between `Call` and the catalogue fails closed
/// (denied, or put in front of a human) instead of passing for a read.
pub const UNLISTED: ToolSpec = spec(
    "unlisted",
    Destructive,
    "A call whose tool is not in the catalogue; never permitted.",
);

pub fn find(name: &str) -> Option<&'static ToolSpec> {
    CATALOGUE.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_portable() {
        let mut seen = HashSet::new();
        for t in CATALOGUE {
            assert!(seen.insert(t.name), "duplicate tool {}", t.name);
            assert!(
                !t.name.is_empty() && t.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{} is not [a-z_]",
                t.name
            );
        }
    }

    #[test]
    fn effects_match_the_design() {
        assert_eq!(
            find("tenant_destroy").map(|t| t.effect),
            Some(Effect::Destructive)
        );
        assert_eq!(
            find("db_restore").map(|t| t.effect),
            Some(Effect::Destructive)
        );
        assert_eq!(find("respond").map(|t| t.effect), Some(Effect::None));
        assert_eq!(find("service_logs").map(|t| t.effect), Some(Effect::Read));
        assert!(find("rm_rf").is_none());
    }
}
