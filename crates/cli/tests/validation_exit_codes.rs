//! `steward call` refuses invalid input with exit code 2 before anything runs, for the holes
//! probing found: a malformed image reference, times before anything existed, a malformed
//! subdomain to check, and a platform service's name as a new tenant. Each run uses a
//! temporary home of its own (never the user's `.steward/` state).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The user's home, read for its `config.toml` and its Traefik directory only.
fn real_home() -> PathBuf {
    match std::env::var("STEWARD_HOME") {
        Ok(h) if !h.is_empty() => PathBuf::from(h),
        _ => repo_root().join(".steward"),
    }
}

/// A temporary steward home with a copy of the user's `config.toml`, removed on drop.
struct Home(PathBuf);

impl Home {
    fn new() -> Home {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("steward-exit-codes-{}", &id[..10]));
        std::fs::create_dir_all(&dir).unwrap();
        let config = real_home().join("config.toml");
        assert!(
            config.exists(),
            "{} is missing: run scripts/setup before the tests",
            config.display()
        );
        std::fs::copy(&config, dir.join("config.toml")).unwrap();
        Home(dir)
    }

    /// `steward --home <tmp> --state-url sqlite://<tmp>/state.db call <tool> <args> --json`.
    /// Only read-only tools run for real; [`Home::plan`] is for everything else.
    fn call(&self, tool: &str, args: &str) -> Output {
        self.run(tool, args, false)
    }

    /// Like [`Home::call`] with `--dry-run`: validated, vetted and planned, never executed,
    /// so a regression can never deploy, roll back or provision on the real platform.
    fn plan(&self, tool: &str, args: &str) -> Output {
        self.run(tool, args, true)
    }

    fn run(&self, tool: &str, args: &str, dry_run: bool) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
        cmd.arg("--home")
            .arg(&self.0)
            .arg("--state-url")
            .arg(format!("sqlite://{}", self.0.join("state.db").display()))
            .args(["call", tool, args, "--json"]);
        if dry_run {
            cmd.arg("--dry-run");
        }
        cmd.env_remove("STEWARD_HOME")
            .env_remove("STEWARD_STATE_URL")
            .env(
                "STEWARD_TRAEFIK_DYNAMIC_DIR",
                real_home().join("traefik").join("dynamic"),
            )
            .env("STEWARD_POLICIES_DIR", repo_root().join("policies"))
            .current_dir(repo_root())
            .output()
            .unwrap()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn body(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Asserts exit code 2 with an `invalid_args` error whose message contains `needle`; only
/// `tenant_check_subdomain` (read only) runs for real, everything else as a dry run.
fn assert_invalid(h: &Home, tool: &str, args: &str, needle: &str) -> String {
    let out = if tool == "tenant_check_subdomain" {
        h.call(tool, args)
    } else {
        h.plan(tool, args)
    };
    let v = body(&out);
    assert_eq!(out.status.code(), Some(2), "{tool} {args}: {v}");
    assert_eq!(v["error"]["kind"], "invalid_args", "{tool} {args}: {v}");
    let message = v["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains(needle), "{tool} {args}: {message}");
    message
}

#[test]
fn a_malformed_image_reference_exits_2_naming_the_rule() {
    let h = Home::new();
    let digest = format!("sha256:{}", "ab".repeat(32));
    for (image, rule) in [
        ("a:b:c:d@@", "digest"),
        ("a:b:c:d", "tag"),
        ("App:v1", "lowercase"),
        ("a//b:v1", "path components"),
        ("app@sha256:123", "digest"),
    ] {
        let args = format!(r#"{{"service":"rentguy","image":"{image}"}}"#);
        assert_invalid(&h, "service_deploy", &args, rule);
    }
    // Well-formed references pass validation (--dry-run may still fail later, e.g. when the
    // service or image is absent, but never as invalid input).
    for image in [
        "steward-demo:v1".to_string(),
        "registry.example.com:5000/team/app:1.2".into(),
        format!("app@{digest}"),
    ] {
        let args = format!(r#"{{"service":"rentguy","image":"{image}"}}"#);
        let out = h.plan("service_deploy", &args);
        let v = body(&out);
        assert_ne!(v["error"]["kind"], "invalid_args", "{image}: {v}");
        assert_ne!(out.status.code(), Some(2), "{image}: {v}");
    }
}

#[test]
fn times_before_anything_existed_exit_2() {
    let h = Home::new();
    for to in ["0000-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "1970-01-01"] {
        let args = format!(r#"{{"service":"rentguy","to":"{to}"}}"#);
        assert_invalid(&h, "service_rollback", &args, "before 2000");
        let args = format!(r#"{{"service":"rentguy","since":"{to}"}}"#);
        assert_invalid(&h, "service_logs", &args, "before 2000");
    }
}

#[test]
fn checking_a_malformed_subdomain_exits_2_with_suggestions() {
    let h = Home::new();
    let message = assert_invalid(
        &h,
        "tenant_check_subdomain",
        r#"{"subdomain":"Bad_Name!"}"#,
        "must be lowercase",
    );
    assert!(message.contains("try bad-name"), "{message}");
    assert_invalid(
        &h,
        "tenant_check_subdomain",
        r#"{"subdomain":"../etc"}"#,
        "may contain only",
    );
    // A well-formed but reserved name is an answer, not an error.
    let out = h.call("tenant_check_subdomain", r#"{"subdomain":"www"}"#);
    let v = body(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["output"]["available"], false, "{v}");
    assert_eq!(v["output"]["status"], "reserved", "{v}");
}

#[test]
fn a_platform_service_name_is_never_a_new_tenant() {
    let h = Home::new();
    for name in ["wpcs", "rentguy", "trading-dashboard"] {
        let out = h.call(
            "tenant_check_subdomain",
            &format!(r#"{{"subdomain":"{name}"}}"#),
        );
        let v = body(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {v}");
        assert_eq!(v["output"]["available"], false, "{name}: {v}");
        assert_eq!(v["output"]["status"], "reserved", "{name}: {v}");
        assert_eq!(
            v["output"]["suggestions"].as_array().unwrap().len(),
            3,
            "{v}"
        );
    }
    // Refused at dry-run, before any approval or side effect (or by policy already, should
    // policy come to deny it; never planned as a tenant).
    let out = h.plan("tenant_provision", r#"{"subdomain":"wpcs"}"#);
    let v = body(&out);
    assert_ne!(out.status.code(), Some(0), "{v}");
    let kind = v["error"]["kind"].as_str().unwrap_or_default();
    assert!(
        ["invalid_args", "conflict", "denied"].contains(&kind),
        "{v}"
    );
    if kind != "denied" {
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("platform service"), "{v}");
    }
}
