//! Defects of the `steward` command found by probing (issue 15), each pinned by a test that
//! failed before its fix: a closed stdout pipe, running outside the repository, a zero
//! approval TTL, a bad principal blamed on `--as`, a state store in a missing directory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::process::{Output, Stdio};

use common::*;
use serde_json::Value;
use steward_cli::config::Key;

/// Runs `args` with stdout a pipe whose reader is closed at once.
fn with_closed_stdout(h: &TestHome, args: &[&str]) -> Output {
    let mut child = h
        .command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_pipe_ends_quietly_not_in_a_panic() {
    let h = TestHome::new();
    for args in [&["tools", "list"][..], &["status"], &["config"]] {
        let out = with_closed_stdout(&h, args);
        let err = stderr(&out);
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
    }
}

#[test]
fn policy_check_works_from_outside_the_repository() {
    let h = TestHome::new();
    // Setup writes absolute paths; the defaults are the relative `policies` and `models`.
    h.unset(Key::PoliciesDir);
    h.unset(Key::ModelsDir);
    let elsewhere = h.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = h
        .command()
        .env_remove("STEWARD_POLICIES_DIR") // the shipped policies, found by steward itself
        .current_dir(&elsewhere)
        .args([
            "policy",
            "check",
            "service_status",
            r#"{"service":"rentguy"}"#,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("allow"), "{}", stdout(&out));
    // The planner's model manifests too (doctor lists one line per manifest).
    let out = h
        .command()
        .current_dir(&elsewhere)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let models = checks
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("model "))
        .count();
    assert_eq!(models, 3, "{checks:#?}");
}

#[test]
fn init_makes_a_home_that_works_from_any_directory() {
    let h = TestHome::new();
    let home = h.dir.join("installed");
    let init = |cwd: &std::path::Path| {
        h.command()
            .current_dir(cwd)
            .env_remove("STEWARD_HOME")
            .args(["init", "--home"])
            .arg(&home)
            .output()
            .unwrap()
    };
    let out = init(&h.dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(home.join("config.toml").is_file());
    assert!(home.join("share/policies/steward.cedarschema").is_file());
    assert!(home
        .join("share/models/smollm2-135m-instruct.toml")
        .is_file());

    // Again: nothing changes; an edited file is kept and named.
    let guards = home.join("share/policies/guards.toml");
    let mine = format!("{}\n# my edit\n", std::fs::read_to_string(&guards).unwrap());
    std::fs::write(&guards, &mine).unwrap();
    let out = init(&h.dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("0 installed, 0 updated")
            && stdout(&out).contains("kept your edit of")
            && stdout(&out).contains("guards.toml"),
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read_to_string(&guards).unwrap(), mine);

    let run = |args: &[&str]| {
        h.command()
            .current_dir("/")
            .env("STEWARD_HOME", &home)
            .env_remove("STEWARD_POLICIES_DIR")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["config"]);
    let shown = stdout(&out);
    let root = shown.lines().find(|l| l.starts_with("data root")).unwrap();
    assert!(
        root.contains(&home.join("share").display().to_string()),
        "{shown}"
    );
    let out = run(&[
        "policy",
        "check",
        "service_status",
        r#"{"service":"rentguy"}"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn append_config(h: &TestHome, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(h.dir.join("config.toml"))
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

#[test]
fn an_approval_ttl_under_a_minute_is_refused_naming_its_layer() {
    let h = TestHome::new();
    let call = ["call", "audit_search", r#"{"query":"x"}"#];
    let out = h
        .command()
        .args(call)
        .env("STEWARD_APPROVAL_TTL", "0s")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        err.contains("STEWARD_APPROVAL_TTL") && err.contains("under a minute"),
        "{err}"
    );

    append_config(&h, "approval_ttl = \"59s\"");
    let out = h.run(&call);
    let err = stderr(&out);
    assert!(!out.status.success(), "{}", stdout(&out));
    let file = h.dir.join("config.toml").display().to_string();
    assert!(
        err.contains(&file) && err.contains("under a minute"),
        "{err}"
    );
    let out = h
        .command()
        .args(call)
        .env("STEWARD_APPROVAL_TTL", "1m")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_bad_principal_in_the_config_file_is_blamed_on_the_file() {
    let h = TestHome::new();
    append_config(&h, "principal = \"nobody\"");
    let file = h.dir.join("config.toml").display().to_string();
    for args in [
        &["call", "audit_search", r#"{"query":"x"}"#][..],
        &[
            "policy",
            "check",
            "service_status",
            r#"{"service":"rentguy"}"#,
        ],
    ] {
        let out = h.run(args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.contains(&file) && err.contains("\"nobody\"") && !err.contains("--as"),
            "{args:?}: {err}"
        );
    }
    // From the environment, the variable is named.
    let out = h
        .command()
        .args(["call", "audit_search", r#"{"query":"x"}"#])
        .env("STEWARD_PRINCIPAL", "nobody")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("STEWARD_PRINCIPAL") && !err.contains("--as"),
        "{err}"
    );
    // A bad --as is still input to fix, named as --as.
    let out = h.run(&["call", "audit_search", r#"{"query":"x"}"#, "--as", "nobody"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--as"), "{}", stderr(&out));
}

#[test]
fn a_state_store_in_a_missing_directory_is_refused_not_created() {
    let h = TestHome::new();
    let missing = h.dir.join("no-such-dir").join("deeper");
    let url = format!("sqlite://{}", missing.join("s.db").display());
    let out = h.run(&["--state-url", &url, "approvals"]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("does not exist") && err.contains("--state-url"),
        "{err}"
    );
    assert!(!missing.exists(), "the directory was created");
    assert!(!h.dir.join("no-such-dir").exists());

    // doctor reports it as its state check.
    let out = h.run(&["--state-url", &url, "doctor", "--json"]);
    assert!(!out.status.success());
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let state = checks.iter().find(|c| c["name"] == "state").unwrap();
    assert!(
        state["detail"].as_str().unwrap().contains("does not exist"),
        "{state}"
    );
    assert!(!missing.exists());

    // The home itself may be created, with its default store in it.
    let fresh = h.dir.join("fresh-home");
    let out = h
        .command()
        .env("STEWARD_HOME", &fresh)
        .args(["approvals"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(fresh.join("state.db").is_file());
}
