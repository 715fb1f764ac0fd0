//! The suite never touches the user's steward state: every test's `steward` runs in a
//! [`TestHome`] of its own, and `scripts/state_digest.py` (which `scripts/test` runs around
//! the suite) sees a change to a home's store, audit log and guard locks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn digest(home: &Path) -> String {
    let out = Command::new("python3")
        .arg(repo_root().join("scripts/state_digest.py"))
        .arg("snapshot")
        .arg(home)
        .env_remove("STEWARD_STATE_URL")
        // Other tests start and remove their own containers meanwhile.
        .env("STEWARD_DIGEST_SKIP_CONTAINERS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

fn compare(before: &str, home: &Path) -> std::process::Output {
    let file = std::env::temp_dir().join(format!("steward-digest-{}", unique()));
    std::fs::write(&file, before).unwrap();
    let out = Command::new("python3")
        .arg(repo_root().join("scripts/state_digest.py"))
        .arg("compare")
        .arg(&file)
        .arg(home)
        .env_remove("STEWARD_STATE_URL")
        // Other tests start and remove their own containers meanwhile.
        .env("STEWARD_DIGEST_SKIP_CONTAINERS", "1")
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    out
}

#[test]
fn a_test_home_is_never_the_users_and_takes_every_write() {
    let h = TestHome::new();
    assert_ne!(h.dir, real_home());
    assert!(!h.dir.starts_with(real_home()), "{}", h.dir.display());
    let cfg = h.config();
    assert_eq!(
        cfg.require(steward_cli::config::Key::StateUrl).unwrap(),
        format!("sqlite://{}", h.state_db().display()),
        "the state store defaults to the test home's"
    );

    let users = digest(&real_home());
    let mine = digest(&h.dir);
    // Writes of every kind: an audit record, a pending approval, a guard's lock file.
    let out = h.run(&["call", "audit_search", r#"{"query":"x"}"#, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    h.pending_destroy();

    // The digest sees them (so the check in scripts/test can fail) ...
    let changed = compare(&mine, &h.dir);
    assert_eq!(changed.status.code(), Some(1), "{}", stderr(&changed));
    let report = stderr(&changed);
    assert!(
        report.contains("table approvals") && report.contains("table audit_log"),
        "{report}"
    );
    // ... and the user's home holds none of them.
    let unchanged = compare(&users, &real_home());
    assert!(
        unchanged.status.success(),
        "the user's home changed: {}",
        stderr(&unchanged)
    );
}
