//! `steward call` as a user runs it: bad input is refused with a clear message and exit
//! code 2 before anything happens, and a platform dependency that is down gives one clear
//! error and leaves nothing half-done.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::process::Command;

use common::{stderr, stdout, unique, TestHome};
use serde_json::Value;

fn call(h: &TestHome, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = h.command();
    cmd.arg("call").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn json_error(out: &std::process::Output) -> (String, String) {
    let v: Value = serde_json::from_str(&stdout(out)).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    (
        v["error"]["kind"].as_str().unwrap().to_string(),
        v["error"]["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn bad_input_is_refused_with_exit_code_2_and_the_rule() {
    let h = TestHome::new();
    let cases: &[(&[&str], &str, &str)] = &[
        (&["rm_rf", "{}"], "unknown_tool", "unknown tool"),
        (
            &["service_status", "{\"service\":"],
            "invalid_args",
            "not valid JSON",
        ),
        (&["service_status", "[1,2]"], "invalid_args", "JSON object"),
        (
            &["service_status", "{\"service\": 42}"],
            "invalid_args",
            "invalid type",
        ),
        (
            &["service_status", "{\"service\": \"x; DROP\"}"],
            "invalid_args",
            "lowercase",
        ),
        (
            &["service_status", "{\"service\": \"../etc\"}"],
            "invalid_args",
            "only a-z",
        ),
        (
            &["tenant_provision", "{\"subdomain\": \"www\"}"],
            "invalid_args",
            "reserved",
        ),
        (
            &["tenant_provision", "{\"subdomain\": \"api\"}"],
            "invalid_args",
            "reserved",
        ),
        (
            &["tenant_provision", "{\"subdomain\": \"Acme\"}"],
            "invalid_args",
            "lowercase",
        ),
        (
            &[
                "tenant_provision",
                &format!("{{\"subdomain\": \"{}\"}}", "a".repeat(64)),
            ],
            "invalid_args",
            "at most 40",
        ),
        (
            &[
                "service_deploy",
                "{\"service\": \"rentguy\", \"image\": \"x$(reboot)\"}",
            ],
            "invalid_args",
            "path components must be lowercase",
        ),
        (
            &[
                "service_restart",
                "{\"service\": \"rentguy\", \"force\": true}",
            ],
            "invalid_args",
            "unknown field",
        ),
        (
            &["db_verify_backup", "{\"backup\": \"../../etc/passwd\"}"],
            "invalid_args",
            "backup id",
        ),
    ];
    for (args, kind, needle) in cases {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let out = call(&h, &with_json, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: stdout {:?}, stderr {:?}",
            stdout(&out),
            stderr(&out)
        );
        let (k, message) = json_error(&out);
        assert_eq!(&k, kind, "{args:?}: {message}");
        assert!(message.contains(needle), "{args:?}: {message}");

        // Without --json the same message goes to stderr, one line.
        let out = call(&h, args, &[]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(
            err.contains(needle) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}

#[test]
fn docker_down_gives_one_clear_error() {
    let h = TestHome::new();
    let out = call(
        &h,
        &["service_list", "{}", "--json"],
        &[("DOCKER_HOST", "tcp://127.0.0.1:1")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let (kind, message) = json_error(&out);
    assert_eq!(kind, "unavailable", "{message}");
    assert!(message.contains("Docker Engine"), "{message}");
}

#[test]
fn postgres_down_leaves_nothing_behind() {
    let sub = format!("t{}", unique());
    let args = format!("{{\"subdomain\": \"{sub}\"}}");
    let h = TestHome::new();
    let out = call(
        &h,
        &["tenant_provision", &args, "--json"],
        &[("STEWARD_PG_URL", "postgres://steward:x@127.0.0.1:1/steward")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let (kind, message) = json_error(&out);
    assert_eq!(kind, "unavailable", "{message}");
    assert!(message.contains("PostgreSQL"), "{message}");
    // Nothing was created for the tenant: no container, no route.
    let ps = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=steward.service={sub}"),
            "-q",
        ])
        .output()
        .unwrap();
    assert!(stdout(&ps).trim().is_empty(), "container left behind");
    let cfg = h.config();
    let dynamic = common::get(&cfg, steward_cli::config::Key::TraefikDynamicDir);
    let leftover = std::fs::read_dir(dynamic)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains(&sub));
    assert!(!leftover, "route left behind");
}

/// The whole path through the binary: a destructive call waits for approval (exit 3), the
/// proposer cannot approve it, another operator can, and the audit log holds every step.
#[test]
fn destructive_call_waits_for_another_operator_then_runs_and_is_audited() {
    let tenant = format!("t{}", unique());
    let args = format!("{{\"tenant\": \"{tenant}\"}}");
    let h = TestHome::new();
    let out = call(&h, &["tenant_destroy", &args, "--json"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["status"], "pending_approval", "{v}");
    let id = v["approval"]["id"].as_str().unwrap().to_string();
    assert!(v["decision"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "destructive-needs-approval"));

    let steward = |args: &[&str]| h.run(args);
    let listed = stdout(&steward(&["approvals"]));
    assert!(listed.contains(&id), "{listed}");
    let own = steward(&["approve", &id]);
    assert!(!own.status.success());
    assert!(stderr(&own).contains("cannot approve it"));
    let ok = steward(&["approve", &id, "--as", "operator:alice", "--json"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    let again = steward(&["approve", &id, "--as", "operator:alice"]);
    assert!(!again.status.success(), "an approval runs once only");

    let found = stdout(&steward(&["audit", "search", &tenant, "--json"]));
    let records: Value = serde_json::from_str(&found).unwrap();
    let kinds: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    for k in [
        "approval_requested",
        "approval_answered",
        "exec_begin",
        "exec_end",
    ] {
        assert!(kinds.contains(&k), "{k} missing in {kinds:?}");
    }
    let verify = steward(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));

    // The exported head covers the records just written, and verifies with them.
    let cp: Value = serde_json::from_str(&stdout(&steward(&["audit", "checkpoint"]))).unwrap();
    let head = records.as_array().unwrap()[0]["seq"].as_u64().unwrap();
    assert!(cp["seq"].as_u64().unwrap() >= head, "{cp} vs {head}");
    assert_eq!(cp["mac"].as_str().unwrap().len(), 64, "{cp}");
    assert!(steward(&["audit", "verify"]).status.success());
}

#[test]
fn policy_denies_an_unknown_principal_with_exit_3() {
    let h = TestHome::new();
    let out = call(
        &h,
        &[
            "service_restart",
            "{\"service\": \"rentguy\"}",
            "--as",
            "operator:mallory",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let (kind, message) = json_error(&out);
    assert_eq!(kind, "denied", "{message}");
}
