//! The shipped default policies across the matrix principal × tool × origin.
//!
//! Each row gives, for one principal, the expected decision per effect class and per-tool
//! exceptions, in three columns: a trusted origin (chat, api, schedule), an untrusted origin
//! (webhook, alert, monitor, mcp), and untrusted text (any origin with `untrusted_text`).
//! An expectation is `"<allow|approval|deny> [id,id...]"` with the exact, ordered policy ids
//! (for NeedsApproval: the approval rules, then the grants).
//!
//! A principal arrives only with the origins of its kind (`PrincipalKind::origins`); every
//! other origin is checked to be denied before any policy runs, whatever the columns say.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::*;
use steward_policy::DecisionKind;
use steward_protocol::{Decision, Effect, Origin};
use steward_tools::CATALOGUE;

const TRUSTED: &[Origin] = &[Origin::Chat, Origin::Api, Origin::Schedule];
const UNTRUSTED: &[Origin] = &[Origin::Webhook, Origin::Alert, Origin::Monitor, Origin::Mcp];
const ALL: &[Origin] = &[
    Origin::Chat,
    Origin::Api,
    Origin::Schedule,
    Origin::Webhook,
    Origin::Alert,
    Origin::Monitor,
    Origin::Mcp,
];

/// [trusted origin, untrusted origin, untrusted text]
type Cols = [&'static str; 3];

const fn same(e: &'static str) -> Cols {
    [e, e, e]
}

struct Row {
    principal: &'static str,
    /// By effect: none, read, write, destructive.
    by_effect: [Cols; 4],
    /// Tool-specific exceptions.
    tools: &'static [(&'static str, Cols)],
}

const DENY: Cols = same("deny");
const RESPOND: Cols = same("allow anyone-respond");
const UW: &str = "untrusted-write-needs-approval";

const ROWS: &[Row] = &[
    Row {
        principal: "operator:local",
        by_effect: [
            RESPOND,
            same("allow operator-read"),
            [
                "allow operator-write",
                "approval untrusted-write-needs-approval,operator-write",
                "approval untrusted-write-needs-approval,operator-write",
            ],
            [
                "approval destructive-needs-approval,operator-destructive",
                "approval destructive-needs-approval,untrusted-write-needs-approval,operator-destructive",
                "approval destructive-needs-approval,untrusted-write-needs-approval,operator-destructive",
            ],
        ],
        tools: &[],
    },
    Row {
        // On call: the role adds its grant to the service operations on platform services.
        principal: "operator:alice",
        by_effect: [
            RESPOND,
            same("allow operator-read"),
            [
                "allow operator-write",
                "approval untrusted-write-needs-approval,operator-write",
                "approval untrusted-write-needs-approval,operator-write",
            ],
            [
                "approval destructive-needs-approval,operator-destructive",
                "approval destructive-needs-approval,untrusted-write-needs-approval,operator-destructive",
                "approval destructive-needs-approval,untrusted-write-needs-approval,operator-destructive",
            ],
        ],
        tools: &[
            ("service_restart", ONCALL_OPERATOR),
            ("service_stop", ONCALL_OPERATOR),
            ("service_start", ONCALL_OPERATOR),
            ("service_rollback", ONCALL_OPERATOR),
        ],
    },
    Row {
        // Viewer operator: operators' grants plus viewer-read on reads.
        principal: "operator:bob",
        by_effect: [
            RESPOND,
            same("allow operator-read,viewer-read"),
            [
                "allow operator-write",
                "approval untrusted-write-needs-approval,operator-write",
                "approval untrusted-write-needs-approval,operator-write",
            ],
            [
                "approval destructive-needs-approval,operator-destructive",
                "approval destructive-needs-approval,untrusted-write-needs-approval,operator-destructive",
                "approval destructive-needs-approval,untrusted-write-needs-approval,operator-destructive",
            ],
        ],
        tools: &[],
    },
    Row {
        principal: "role:viewer",
        by_effect: [RESPOND, same("allow viewer-read"), DENY, DENY],
        tools: &[],
    },
    Row {
        principal: "role:oncall",
        by_effect: [RESPOND, DENY, DENY, DENY],
        tools: &[
            ("service_restart", ONCALL),
            ("service_stop", ONCALL),
            ("service_start", ONCALL),
            ("service_rollback", ONCALL),
        ],
    },
    Row {
        // Samples name rentguy (a platform service) unless the tool takes a tenant or
        // backup target, which the samples set to the tenant acme, this account's own.
        principal: "service_account:tenant-acme",
        by_effect: [
            RESPOND,
            same("deny tenant-scope"),
            same("deny tenant-scope"),
            same("deny tenant-scope"),
        ],
        tools: &[
            ("db_backups_list", same("allow service-account-read-own-tenant")),
            ("db_verify_backup", same("allow service-account-read-own-tenant")),
            ("db_backup", DENY),
            ("db_restore", DENY),
            ("tenant_destroy", DENY),
        ],
    },
    Row {
        principal: "service_account:tenant-globex",
        by_effect: [
            RESPOND,
            same("deny tenant-scope"),
            same("deny tenant-scope"),
            same("deny tenant-scope"),
        ],
        tools: &[],
    },
    Row {
        // Named service rentguy: reads and writes on it; alert origin alone is no reason for
        // approval (the rule is operator-written), untrusted text is.
        principal: "alert_rule:rentguy-unhealthy",
        by_effect: [RESPOND, DENY, DENY, DENY],
        tools: &[
            ("service_status", same("allow alert-rule-read-own")),
            ("service_logs", same("allow alert-rule-read-own")),
            ("service_metrics", same("allow alert-rule-read-own")),
            ("service_releases", same("allow alert-rule-read-own")),
            ("service_restart", ALERT_WRITE),
            ("service_stop", ALERT_WRITE),
            ("service_start", ALERT_WRITE),
            ("service_deploy", ALERT_WRITE),
            ("service_rollback", ALERT_WRITE),
            ("service_set_limits", ALERT_WRITE),
            (
                "notify",
                [
                    "allow alert-rule-notify",
                    "allow alert-rule-notify",
                    "approval untrusted-write-needs-approval,alert-rule-notify",
                ],
            ),
        ],
    },
    Row {
        principal: "webhook:n8n",
        by_effect: [RESPOND, DENY, DENY, DENY],
        tools: &[
            ("tenant_check_subdomain", same("allow integration-listed-tools")),
            ("service_status", same("allow integration-listed-tools")),
            ("tenant_provision", INTEGRATION_WRITE),
            ("notify", INTEGRATION_WRITE),
        ],
    },
    Row {
        principal: "mcp:claude-desktop",
        by_effect: [RESPOND, same("allow viewer-read"), DENY, DENY],
        tools: &[
            ("respond", same("allow anyone-respond,mcp-listed-tools")),
            ("service_restart", MCP_WRITE),
            ("notify", MCP_WRITE),
        ],
    },
    Row {
        principal: "operator:mallory",
        by_effect: [DENY, DENY, DENY, DENY],
        tools: &[],
    },
    Row {
        principal: "alert_rule:not-configured",
        by_effect: [DENY, DENY, DENY, DENY],
        tools: &[],
    },
];

const ONCALL_OPERATOR: Cols = [
    "allow oncall-service-ops,operator-write",
    "approval untrusted-write-needs-approval,oncall-service-ops,operator-write",
    "approval untrusted-write-needs-approval,oncall-service-ops,operator-write",
];
const ONCALL: Cols = [
    "allow oncall-service-ops",
    "approval untrusted-write-needs-approval,oncall-service-ops",
    "approval untrusted-write-needs-approval,oncall-service-ops",
];
const ALERT_WRITE: Cols = [
    "allow alert-rule-write-own",
    "allow alert-rule-write-own",
    "approval untrusted-write-needs-approval,alert-rule-write-own",
];
// Webhook sources and MCP clients are untrusted whatever the origin, so no column allows.
const INTEGRATION_WRITE: Cols = [
    "approval untrusted-write-needs-approval,integration-listed-tools",
    "approval untrusted-write-needs-approval,integration-listed-tools",
    "approval untrusted-write-needs-approval,integration-listed-tools",
];
const MCP_WRITE: Cols = [
    "approval untrusted-write-needs-approval,mcp-listed-tools",
    "approval untrusted-write-needs-approval,mcp-listed-tools",
    "approval untrusted-write-needs-approval,mcp-listed-tools",
];

fn effect_index(e: Effect) -> usize {
    match e {
        Effect::None => 0,
        Effect::Read => 1,
        Effect::Write => 2,
        Effect::Destructive => 3,
    }
}

fn parse_expect(s: &str) -> (DecisionKind, Vec<String>) {
    let (kind, ids) = s.split_once(' ').unwrap_or((s, ""));
    let kind = match kind {
        "allow" => DecisionKind::Allow,
        "approval" => DecisionKind::NeedsApproval,
        "deny" => DecisionKind::Deny,
        other => panic!("bad expectation {other}"),
    };
    let ids = ids
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (kind, ids)
}

#[test]
fn default_policies_across_principal_tool_origin() {
    let set = shipped();
    let _ = UW;
    let mut checked = 0;
    let mut failures = Vec::new();
    for row in ROWS {
        for spec in CATALOGUE {
            let cols = row
                .tools
                .iter()
                .find(|(t, _)| *t == spec.name)
                .map(|(_, c)| *c)
                .unwrap_or(row.by_effect[effect_index(spec.effect)]);
            let call = call(spec.name, sample_args(spec.name));
            let cases = TRUSTED
                .iter()
                .map(|o| (*o, false, cols[0]))
                .chain(UNTRUSTED.iter().map(|o| (*o, false, cols[1])))
                .chain(ALL.iter().map(|o| (*o, true, cols[2])));
            let kind = steward_policy::Principal::parse(row.principal)
                .unwrap()
                .kind;
            for (origin, text, expect) in cases {
                let expect = if kind.origins().contains(&origin) {
                    expect
                } else {
                    "deny"
                };
                let got = vet(&set, row.principal, &call, origin, text);
                let (kind, ids) = parse_expect(expect);
                checked += 1;
                if DecisionKind::of(&got) != kind || got.policies() != ids.as_slice() {
                    failures.push(format!(
                        "{} {} origin={origin:?} untrusted_text={text}: expected {expect}, got {}",
                        row.principal,
                        spec.name,
                        steward_policy::describe(&got)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, ROWS.len() * CATALOGUE.len() * 14);
}

/// The five promises of the shipped defaults, stated directly.
#[test]
fn default_promises_hold() {
    let set = shipped();
    // Destructive tools always need approval, whoever asks, from wherever.
    for tool in CATALOGUE.iter().filter(|t| t.effect == Effect::Destructive) {
        let c = call(tool.name, sample_args(tool.name));
        for row in ROWS {
            for origin in ALL {
                for text in [false, true] {
                    let d = vet(&set, row.principal, &c, *origin, text);
                    assert!(
                        !d.is_allow(),
                        "{} {} {origin:?} was allowed",
                        row.principal,
                        tool.name
                    );
                }
            }
        }
    }
    // Nothing from untrusted text runs a write without approval.
    for tool in CATALOGUE
        .iter()
        .filter(|t| matches!(t.effect, Effect::Write | Effect::Destructive))
    {
        let c = call(tool.name, sample_args(tool.name));
        for row in ROWS {
            for origin in ALL {
                let d = vet(&set, row.principal, &c, *origin, true);
                assert!(
                    !d.is_allow(),
                    "{} {} from text was allowed",
                    row.principal,
                    tool.name
                );
            }
        }
    }
    // Tenant scope: acme's account reads acme, never globex or the platform.
    let own = call("service_status", serde_json::json!({"service": "acme"}));
    let other = call("service_logs", serde_json::json!({"service": "globex"}));
    assert!(vet(
        &set,
        "service_account:tenant-acme",
        &own,
        Origin::Api,
        false
    )
    .is_allow());
    let d = vet(
        &set,
        "service_account:tenant-acme",
        &other,
        Origin::Api,
        false,
    );
    assert!(
        matches!(&d, Decision::Deny { policies, .. } if policies == &["tenant-scope"]),
        "{d:?}"
    );
    // Alert rules write only the services they name.
    let psra = call("service_restart", serde_json::json!({"service": "psra"}));
    let d = vet(
        &set,
        "alert_rule:rentguy-unhealthy",
        &psra,
        Origin::Alert,
        false,
    );
    assert!(
        matches!(&d, Decision::Deny { reason, .. } if reason.contains("default deny")),
        "{d:?}"
    );
    assert!(vet(
        &set,
        "alert_rule:container-unhealthy",
        &psra,
        Origin::Alert,
        false
    )
    .is_allow());
}
