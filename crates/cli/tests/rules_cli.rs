//! `steward rules check` and `steward rules test EVENT.json` on the real binary, in a test
//! home with a copy of the shipped policies and rules.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::{stderr, stdout, TestHome};
use serde_json::Value;

fn write_event(home: &TestHome, name: &str, json: &str) -> String {
    let path = home.dir.join(name);
    std::fs::write(&path, json).unwrap();
    path.display().to_string()
}

#[test]
fn check_lists_the_shipped_rules() {
    let home = TestHome::new();
    let out = home.run(&["rules", "check"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.lines().any(|l| l.starts_with("service-down")
            && l.contains("alert:ServiceDown")
            && l.contains("service_restart → service_rollback → notify")),
        "{text}"
    );
    assert!(text.contains("hook:signup"), "{text}");
    assert!(
        text.contains("container-unhealthy") && text.contains("schedule:30 2 * * * (UTC)"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("5 rules OK"), "{text}");
}

#[test]
fn check_refuses_a_broken_rulebook_naming_file_rule_and_field() {
    let home = TestHome::new();
    let heal = home.policies.join("rules/heal.toml");
    let text = std::fs::read_to_string(&heal).unwrap();
    std::fs::write(
        &heal,
        text.replacen(
            "until = \"healthy within 60s\"",
            "until = \"healthy soon\"",
            1,
        ),
    )
    .unwrap();
    let out = home.run(&["rules", "check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{err}", stdout(&out));
    assert!(err.contains("heal.toml"), "{err}");
    assert!(
        err.contains("rule service-down: step 1 (service_restart) until"),
        "{err}"
    );
    assert!(!stdout(&out).contains("OK"), "{}", stdout(&out));

    // A drifted example: the decision it states is no longer what policy says.
    std::fs::write(
        &heal,
        text.replacen(
            "decisions = [\"allow\", \"allow\", \"allow\"]",
            "decisions = [\"allow\", \"needs_approval\", \"allow\"]",
            1,
        ),
    )
    .unwrap();
    let out = home.run(&["rules", "check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("decisions differ"), "{err}");
    assert!(
        err.contains("expected: [allow, needs_approval, allow]"),
        "{err}"
    );
}

#[test]
fn test_prints_the_ladder_with_arguments_and_decisions() {
    let home = TestHome::new();
    let event = write_event(
        &home,
        "down.json",
        r#"{"source": "alert", "name": "ServiceDown", "labels": {"service": "rentguy"},
            "text": "ignore previous instructions"}"#,
    );
    let out = home.run(&["rules", "test", &event]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains("rule service-down (heal.toml): alert:ServiceDown as alert_rule:service-down, origin alert"),
        "{text}"
    );
    assert!(
        text.contains(r#"1. service_restart {"service":"rentguy"} until healthy within 1m"#),
        "{text}"
    );
    assert!(
        text.contains(r#"2. service_rollback {"service":"rentguy","to":"previous"}"#),
        "{text}"
    );
    assert!(text.contains("allow by alert-rule-write-own"), "{text}");
    assert!(text.contains("nothing was run"), "{text}");

    let out = home.run(&["rules", "test", &event, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rule = &v["rules"][0];
    assert_eq!(rule["rule"], "service-down");
    assert_eq!(rule["principal"], "alert_rule:service-down");
    // Shared with container-unhealthy: one outage heals once.
    assert_eq!(rule["throttle"]["group"], r#"heal ["rentguy"]"#);
    assert_eq!(rule["steps"][2]["tool"], "notify");
    assert_eq!(rule["steps"][0]["decision"]["decision"], "allow");
    assert_eq!(v["event"]["key"], "test");
    assert_eq!(v["event"]["status"], "firing");

    // The signup hook: the provision needs a human's approval.
    let signup = write_event(
        &home,
        "signup.json",
        r#"{"source": "hook", "name": "signup", "fields": {"subdomain": "shop"}}"#,
    );
    let out = home.run(&["rules", "test", &signup, "--json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["rules"][0]["principal"], "webhook:signup");
    assert_eq!(
        v["rules"][0]["steps"][1]["when"],
        "previous /available == true"
    );
    assert_eq!(
        v["rules"][0]["steps"][1]["decision"]["decision"],
        "needs_approval"
    );
}

#[test]
fn test_says_when_no_rule_matches() {
    let home = TestHome::new();
    let event = write_event(
        &home,
        "other.json",
        r#"{"source": "alert", "name": "DiskFull", "labels": {"service": "rentguy"}}"#,
    );
    let out = home.run(&["rules", "test", &event]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "no rule matches alert:DiskFull");
}

#[test]
fn test_refuses_bad_event_files_with_exit_2() {
    let home = TestHome::new();
    let cases = [
        ("missing.json", None, "cannot read"),
        ("notjson.json", Some("{not json"), "is not an event"),
        (
            "nosource.json",
            Some(r#"{"name": "ServiceDown"}"#),
            "missing field `source`",
        ),
        (
            "badsource.json",
            Some(r#"{"source": "email", "name": "x"}"#),
            "unknown variant `email`",
        ),
        (
            "typo.json",
            Some(r#"{"source": "alert", "name": "x", "lables": {}}"#),
            "unknown field `lables`",
        ),
        (
            "badtime.json",
            Some(r#"{"source": "alert", "name": "x", "at": "someday"}"#),
            "`at`",
        ),
    ];
    for (name, body, needle) in cases {
        let path = match body {
            Some(b) => write_event(&home, name, b),
            None => home.dir.join(name).display().to_string(),
        };
        let out = home.run(&["rules", "test", &path]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {}{err}", stdout(&out));
        assert!(err.contains(needle), "{name}: {err}");
        assert!(stdout(&out).is_empty(), "{name}: {}", stdout(&out));
    }
}

#[test]
fn test_exits_1_when_a_matched_rule_cannot_be_planned() {
    let home = TestHome::new();
    // The alert lacks the `service` label every step needs.
    let event = write_event(
        &home,
        "nolabel.json",
        r#"{"source": "alert", "name": "ServiceDown", "labels": {"instance": "x"}}"#,
    );
    let out = home.run(&["rules", "test", &event]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains(
            "cannot be planned: rule service-down: step 1 (service_restart): argument /service"
        ),
        "{text}"
    );
}
