//! Guards hold across separate `steward` processes: each CLI call is a new process, so the
//! rate windows must come from the audit log, not from memory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::{stdout, TestHome};
use serde_json::Value;

#[test]
fn a_tool_rate_limit_trips_on_the_third_separate_call() {
    // An isolated home (own state store and audit dir) with the real platform settings.
    let h = TestHome::with_guards(Some("[rate_limit.tools]\naudit_search = 2\n"));

    let run = || {
        let out = h
            .command()
            .args([
                "call",
                "audit_search",
                r#"{"query":"tool:service_restart"}"#,
            ])
            .arg("--json")
            .output()
            .unwrap();
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        (out.status.code(), v)
    };
    for _ in 0..2 {
        let (code, v) = run();
        assert_eq!(code, Some(0), "{v}");
    }
    let (code, v) = run();
    assert_eq!(code, Some(3), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("audit_search was called 2 times in the last 60s (limit 2 per 60s)"),
        "{message}"
    );
}
