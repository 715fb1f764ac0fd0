//! Guards hold across separate `steward` processes: each CLI call is a new process, so the
//! rate windows must come from the audit log, not from memory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::process::Command;

use common::{home, policies_with_guards, repo_root, stdout, unique};
use serde_json::Value;

#[test]
fn a_tool_rate_limit_trips_on_the_third_separate_call() {
    // An isolated home (own state store and audit dir) with the real platform settings.
    let tmp = std::env::temp_dir().join(format!("steward-guards-{}", unique()));
    let policies = tmp.join("policies");
    policies_with_guards(&policies, "[rate_limit.tools]\naudit_search = 2\n");
    let config = std::fs::read_to_string(home().join("config.toml")).unwrap();
    std::fs::write(tmp.join("config.toml"), config).unwrap();

    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_steward"))
            .args([
                "call",
                "audit_search",
                r#"{"query":"tool:service_restart"}"#,
            ])
            .arg("--json")
            .env("STEWARD_HOME", &tmp)
            .env("STEWARD_POLICIES_DIR", &policies)
            .current_dir(repo_root())
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
    std::fs::remove_dir_all(&tmp).unwrap();
}
