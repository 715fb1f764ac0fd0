//! `steward audit verify` exit codes around checkpoints (issue 15): a store with records but
//! no checkpoint fails until `--first-checkpoint` signs one. Each test has a home and state
//! store of its own, never the user's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Output;

use steward_audit::{AuditLog, Store};
use steward_protocol::{AuditEntry, Timestamp};

/// A temporary home, removed on drop.
struct Home(PathBuf);

impl Home {
    fn new() -> Home {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("steward-audit-cli-{}", &id[..10]));
        std::fs::create_dir_all(&dir).unwrap();
        Home(dir)
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.join("state.db").display())
    }

    fn audit_dir(&self) -> PathBuf {
        self.0.join("audit")
    }

    fn steward(&self, args: &[&str]) -> Output {
        let home = self.0.display().to_string();
        let url = self.url();
        let mut all = vec!["--home", &home, "--state-url", &url];
        all.extend(args);
        std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
            .args(&all)
            .env_remove("STEWARD_HOME")
            .env_remove("STEWARD_STATE_URL")
            .output()
            .unwrap()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn write_records(url: &str, audit_dir: &Path, n: i64) {
    let log = AuditLog::open(url, audit_dir).await.unwrap();
    for i in 0..n {
        log.append(AuditEntry {
            at: Timestamp(1_700_000_000_000 + i),
            tool: Some("service_restart".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_fails_on_records_without_checkpoint_until_the_first_is_signed() {
    let home = Home::new();
    write_records(&home.url(), &home.audit_dir(), 12).await;
    let ok = home.steward(&["audit", "verify"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));

    // Cut the tail and delete the audit folder (checkpoints and key).
    match Store::open(&home.url()).await.unwrap() {
        Store::Sqlite(pool) => {
            sqlx::query("DELETE FROM audit_log WHERE seq > 8")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Store::Postgres(_) => unreachable!(),
    }
    std::fs::remove_dir_all(home.audit_dir()).unwrap();

    let out = home.steward(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("NO CHECKPOINT"), "{}", text(&out));
    assert!(!stdout.contains("checkpoint intact"), "{}", text(&out));
    // Verifying again does not quietly trust it the second time round.
    let again = home.steward(&["audit", "verify"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));

    let first = home.steward(&["audit", "verify", "--first-checkpoint"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("as its first checkpoint"),
        "{}",
        text(&first)
    );
    let after = home.steward(&["audit", "verify"]);
    assert_eq!(after.status.code(), Some(0), "{}", text(&after));
}

#[test]
fn verify_of_an_empty_store_without_checkpoint_succeeds() {
    let home = Home::new();
    let out = home.steward(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
