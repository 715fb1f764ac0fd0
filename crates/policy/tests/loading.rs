//! Loading refuses anything it cannot trust: failing examples, invalid Cedar, policies that
//! do not validate against the schema, unknown principals' attributes. And vetting fails
//! closed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::*;
use serde_json::json;
use steward_policy::{PolicyError, PolicySet, Principal, VetRequest};
use steward_protocol::{Decision, Origin};

fn load_err(s: &Scratch) -> String {
    match PolicySet::load_dir(s.path()) {
        Ok(_) => panic!("loaded, but should have been refused"),
        Err(e) => {
            eprintln!("--- refused:\n{e}");
            e.to_string()
        }
    }
}

#[test]
fn shipped_policies_load_with_their_examples() {
    let set = shipped();
    assert_eq!(set.len(), 19);
    assert!(set.examples_checked() >= 30, "{}", set.examples_checked());
}

#[test]
fn a_failing_example_refuses_the_load_naming_file_example_expected_and_got() {
    let s = Scratch::new();
    // Claim that an alert rule may restart a service it does not name.
    s.edit(
        "alert_rules.cedar",
        r#"// @example deny {"principal":"alert_rule:rentguy-unhealthy","tool":"service_restart","args":{"service":"psra"}"#,
        r#"// @example allow {"principal":"alert_rule:rentguy-unhealthy","tool":"service_restart","args":{"service":"psra"}"#,
    );
    let e = load_err(&s);
    assert!(e.contains("alert_rules.cedar:6: example failed"), "{e}");
    assert!(e.contains(r#""service":"psra""#), "{e}");
    assert!(e.contains("expected: allow"), "{e}");
    assert!(e.contains("got:      deny"), "{e}");
    assert!(e.contains("default deny"), "{e}");

    // Expected policy ids are checked too.
    let s = Scratch::new();
    s.edit(
        "operators.cedar",
        "@example allow by operator-read {",
        "@example allow by operator-write {",
    );
    let e = load_err(&s);
    assert!(e.contains("expected: allow by operator-write"), "{e}");
    assert!(e.contains("got:      allow by operator-read"), "{e}");
}

#[test]
fn a_policy_change_that_breaks_another_files_example_is_refused() {
    // Widening a grant in one file contradicts examples in others: the load stops.
    let s = Scratch::new();
    s.write(
        "zz_wide.cedar",
        "// @example allow {\"principal\":\"role:viewer\",\"tool\":\"respond\",\"args\":{\"text\":\"x\"}}\n\
         @id(\"viewer-everything\")\npermit (principal in Role::\"viewer\", action, resource);\n",
    );
    let e = load_err(&s);
    assert!(e.contains("example failed"), "{e}");
    assert!(e.contains("viewer-everything"), "{e}");
}

#[test]
fn invalid_cedar_is_refused_with_file_and_line() {
    let s = Scratch::new();
    s.write(
        "broken.cedar",
        "// @example deny {\"principal\":\"operator:local\",\"tool\":\"respond\",\"args\":{\"text\":\"x\"}}\n\
         @id(\"broken\")\npermit (principal, action, resource)\nwhen { context.hour >> 3 };\n",
    );
    let e = load_err(&s);
    assert!(e.contains("broken.cedar:4:"), "{e}");
}

#[test]
fn policies_that_do_not_match_the_schema_are_refused() {
    let s = Scratch::new();
    s.edit(
        "alert_rules.cedar",
        "principal.services.contains(resource.name)",
        "principal.service.contains(resource.name)",
    );
    let e = load_err(&s);
    assert!(
        e.contains("do not validate against steward.cedarschema"),
        "{e}"
    );
    assert!(e.contains("alert_rules.cedar:"), "{e}");
    assert!(e.contains("alert-rule-read-own"), "{e}");

    let s = Scratch::new();
    s.write(
        "typo.cedar",
        "// @example deny {\"principal\":\"operator:local\",\"tool\":\"respond\",\"args\":{\"text\":\"x\"}}\n\
         @id(\"typo\")\nforbid (principal, action == Action::\"service_reboot\", resource);\n",
    );
    let e = load_err(&s);
    assert!(e.contains("typo.cedar:"), "{e}");
    assert!(e.contains("service_reboot"), "{e}");
}

#[test]
fn structural_mistakes_are_refused() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "noid.cedar",
            "// @example deny {\"principal\":\"operator:local\",\"tool\":\"respond\",\"args\":{\"text\":\"x\"}}\nforbid (principal, action, resource);\n",
            "has no @id",
        ),
        (
            "dup.cedar",
            "// @example allow {\"principal\":\"operator:local\",\"tool\":\"respond\",\"args\":{\"text\":\"x\"}}\n@id(\"operator-read\")\npermit (principal is Operator, action in Action::\"read\", resource);\n",
            "duplicate policy id \"operator-read\"",
        ),
        (
            "noexamples.cedar",
            "@id(\"quiet\")\npermit (principal is Operator, action in Action::\"read\", resource);\n",
            "no `// @example` lines",
        ),
        (
            "badapproval.cedar",
            "// @example allow {\"principal\":\"operator:local\",\"tool\":\"respond\",\"args\":{\"text\":\"x\"}}\n@id(\"x\")\n@approval(\"maybe\")\npermit (principal, action, resource);\n",
            "@approval(\"maybe\") is not understood",
        ),
        (
            "approvalforbid.cedar",
            "// @example allow {\"principal\":\"operator:local\",\"tool\":\"respond\",\"args\":{\"text\":\"x\"}}\n@id(\"x\")\n@approval(\"required\")\nforbid (principal, action, resource);\n",
            "only applies to permit",
        ),
        (
            "badexample.cedar",
            "// @example allow {\"principal\":\"operator:local\",\"tool\":\"rm_rf\"}\n@id(\"x\")\nforbid (principal, action == Action::\"respond\", resource) when { false };\n",
            "badexample.cedar:1: bad example: unknown tool \"rm_rf\"",
        ),
        (
            "badargs.cedar",
            "// @example allow {\"principal\":\"operator:local\",\"tool\":\"service_status\",\"args\":{\"service\":\"x; DROP\"}}\n@id(\"x\")\nforbid (principal, action == Action::\"respond\", resource) when { false };\n",
            "must be lowercase",
        ),
    ];
    for (file, text, needle) in cases {
        let s = Scratch::new();
        s.write(file, text);
        let e = load_err(&s);
        assert!(e.contains(file), "{file}: {e}");
        assert!(e.contains(needle), "{file}: {e}");
    }
}

#[test]
fn entities_and_schema_problems_are_refused() {
    let s = Scratch::new();
    s.edit(
        "entities.toml",
        "roles = [\"oncall\"]",
        "roles = [\"on-call\"]",
    );
    let e = load_err(&s);
    assert!(e.contains("entities.toml"), "{e}");
    assert!(e.contains("operator:alice names role \"on-call\""), "{e}");

    let s = Scratch::new();
    s.edit("entities.toml", "tenant = \"acme\"", "tenant = 7");
    assert!(load_err(&s).contains("entities.toml"));

    let s = Scratch::new();
    s.edit(
        "entities.toml",
        "\"service_restart\", \"notify\"",
        "\"service_reboot\"",
    );
    assert!(load_err(&s).contains("unknown tool \"service_reboot\""));

    let s = Scratch::new();
    s.edit("steward.cedarschema", "entity Platform;", "entity Platform");
    let e = load_err(&s);
    assert!(e.contains("invalid Cedar schema"), "{e}");

    let s = Scratch::new();
    std::fs::remove_file(s.path().join("entities.toml")).unwrap();
    assert!(matches!(
        PolicySet::load_dir(s.path()),
        Err(PolicyError::Io { .. })
    ));
}

#[test]
fn evaluation_errors_deny() {
    // Overflow is a run-time error the validator cannot see. The example expects Deny,
    // so the set loads, and vet must fail closed for the whole request even though
    // another policy (operator-read) permits it.
    let s = Scratch::new();
    s.write(
        "overflow.cedar",
        "// @example deny by overflow {\"principal\":\"operator:local\",\"tool\":\"service_status\",\"args\":{\"service\":\"rentguy\"},\"hour\":3}\n\
         // @example allow {\"principal\":\"operator:local\",\"tool\":\"service_status\",\"args\":{\"service\":\"rentguy\"},\"hour\":0}\n\
         @id(\"overflow\")\n@reason(\"deliberately broken\")\n\
         forbid (principal == Operator::\"local\", action == Action::\"service_status\", resource)\n\
         when { context.hour * 9223372036854775807 > 1 };\n",
    );
    let set = PolicySet::load_dir(s.path()).unwrap_or_else(|e| panic!("{e}"));
    let c = call("service_status", json!({"service": "rentguy"}));
    let p = Principal::parse("operator:local").unwrap();
    let req = VetRequest {
        principal: &p,
        call: &c,
        origin: Origin::Chat,
        untrusted_text: false,
        hour_utc: 5,
    };
    match set.vet(&req) {
        Decision::Deny { policies, reason } => {
            assert_eq!(policies, ["overflow"]);
            assert!(reason.contains("policy evaluation failed"), "{reason}");
            assert!(reason.contains("overflow"), "{reason}");
            assert!(reason.contains("failing closed"), "{reason}");
        }
        other => panic!("expected deny, got {other:?}"),
    }
}

#[test]
fn unknown_principals_deny_with_a_reason() {
    let set = shipped();
    let c = call("service_status", json!({"service": "rentguy"}));
    let d = vet(&set, "operator:mallory", &c, Origin::Chat, false);
    assert!(
        matches!(&d, Decision::Deny { reason, .. } if reason.contains("unknown principal operator:mallory")),
        "{d:?}"
    );
}

#[test]
fn explain_says_why() {
    let set = shipped();
    let c = call("tenant_destroy", json!({"tenant": "acme"}));
    let p = Principal::parse("operator:alice").unwrap();
    let text = set.explain(&VetRequest {
        principal: &p,
        call: &c,
        origin: Origin::Chat,
        untrusted_text: true,
        hour_utc: 9,
    });
    assert!(text.starts_with("decision: needs_approval by destructive-needs-approval,untrusted-write-needs-approval,operator-destructive"), "{text}");
    assert!(
        text.contains("destructive-needs-approval [approval rule] (approval.cedar:"),
        "{text}"
    );
    assert!(
        text.contains("destructive tools always need a human's approval"),
        "{text}"
    );
    assert!(
        text.contains("operator-destructive (operators.cedar:"),
        "{text}"
    );
    assert!(
        text.contains(r#"request:  operator:alice -> Action::"tenant_destroy" on Tenant::"acme""#),
        "{text}"
    );
    assert!(
        text.contains("origin=chat untrusted=true untrusted_text=true hour=9 effect=destructive"),
        "{text}"
    );
    assert!(text.contains(r#"args:     {"tenant":"acme"}"#), "{text}");
    println!("{text}");
}

#[test]
fn decimals_and_untyped_args_reach_policies() {
    // cpus is a decimal in context.args; origin_check's free-form args are only in args_json.
    let s = Scratch::new();
    s.write(
        "limits.cedar",
        "// @example needs_approval by big-cpu {\"principal\":\"operator:local\",\"tool\":\"service_set_limits\",\"args\":{\"service\":\"rentguy\",\"cpus\":4.5}}\n\
         // @example allow {\"principal\":\"operator:local\",\"tool\":\"service_set_limits\",\"args\":{\"service\":\"rentguy\",\"cpus\":0.5}}\n\
         // @example deny by secret-product {\"principal\":\"operator:local\",\"tool\":\"origin_check\",\"args\":{\"product\":\"secret-1\",\"agreement\":\"uk-eu-tca\"}}\n\
         // @example allow {\"principal\":\"operator:local\",\"tool\":\"origin_check\",\"args\":{\"product\":\"p-1\",\"agreement\":\"uk-eu-tca\"}}\n\
         @id(\"big-cpu\")\n@approval(\"required\")\n\
         permit (principal, action == Action::\"service_set_limits\", resource)\n\
         when { context.args has cpus && context.args.cpus.greaterThan(decimal(\"4.0\")) };\n\
         @id(\"secret-product\")\n\
         forbid (principal, action == Action::\"origin_check\", resource) when { context.args_json like \"*secret*\" };\n",
    );
    let set = PolicySet::load_dir(s.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.examples_checked(), shipped().examples_checked() + 4);
}

#[test]
fn shared_across_tasks() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PolicySet>();
    send_sync::<steward_policy::Guards>();
    send_sync::<steward_policy::Permit>();
}

#[test]
fn check_returns_the_decision_with_its_explanation() {
    let set = shipped();
    let c = call("service_restart", json!({"service": "rentguy"}));
    let p = Principal::parse("alert_rule:rentguy-unhealthy").unwrap();
    let req = VetRequest {
        principal: &p,
        call: &c,
        origin: Origin::Alert,
        untrusted_text: false,
        hour_utc: 3,
    };
    let (d, text) = set.check(&req);
    assert_eq!(d, set.vet(&req));
    assert_eq!(
        d,
        Decision::Allow {
            policies: vec!["alert-rule-write-own".into()]
        }
    );
    assert!(
        text.starts_with("decision: allow by alert-rule-write-own\n"),
        "{text}"
    );
    assert!(set.policy_ids().contains(&"tenant-scope".to_string()));
}
