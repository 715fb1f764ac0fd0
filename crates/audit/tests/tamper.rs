//! Each kind of tampering, on both stores, is detected and pinned to the right record.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[macro_use]
mod common;

use common::{exec, fill, Place};
use steward_audit::chain::record_hash;
use steward_audit::{AuditLog, Backend, ProblemKind, VerifyReport};

async fn log_of(place: &Place, n: u64) -> AuditLog {
    let log = place.open().await;
    fill(&log, n).await;
    log.checkpoint().await.unwrap();
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.records, n);
    log
}

fn kinds_at(report: &VerifyReport) -> Vec<(u64, ProblemKind)> {
    report.problems.iter().map(|p| (p.seq, p.kind)).collect()
}

both!(
    intact_chain_verifies,
    edited_entry,
    edited_and_rehashed,
    edited_column,
    deleted_middle,
    deleted_and_renumbered,
    swapped,
    truncated_tail,
    truncated_tail_periodic_checkpoint,
    rewritten_chain,
    forged_checkpoint,
    missing_checkpoint,
    separator_injected,
);

async fn intact_chain_verifies(p: &Place) {
    let log = log_of(p, 300).await;
    let records = log.records(1, 1000).await.unwrap();
    assert_eq!(records.len(), 300);
    let mut prev = steward_audit::chain::GENESIS.to_string();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.prev_hash, prev);
        let json = steward_audit::chain::canonical_json(&r.entry).unwrap();
        assert_eq!(r.hash, record_hash(r.seq, &r.prev_hash, &json));
        prev = r.hash.clone();
    }
    let report = log.verify().await.unwrap();
    assert_eq!(report.head_seq, Some(300));
    assert_eq!(report.checkpoint.as_ref().map(|c| c.seq), Some(300));
}

async fn edited_entry(p: &Place) {
    let log = log_of(p, 40).await;
    let n = exec(
        log.store(),
        "UPDATE audit_log SET entry = REPLACE(entry, '\"alice\"', '\"mallory\"') WHERE seq = 17",
    )
    .await;
    assert_eq!(n, 1);
    let report = log.verify().await.unwrap();
    assert!(!report.ok);
    assert_eq!(
        kinds_at(&report),
        vec![(17, ProblemKind::Edited)],
        "{report:#?}"
    );
}

async fn edited_and_rehashed(p: &Place) {
    let log = log_of(p, 40).await;
    // The attacker edits record 17 and recomputes its hash so it verifies by itself.
    let r = log.records(17, 1).await.unwrap().remove(0);
    let mut e = r.entry.clone();
    e.tool = Some("db_restore".into());
    let json = steward_audit::chain::canonical_json(&e).unwrap();
    let hash = record_hash(17, &r.prev_hash, &json);
    let json_sql = json.replace('\'', "''");
    exec(
        log.store(),
        &format!("UPDATE audit_log SET entry = '{json_sql}', hash = '{hash}' WHERE seq = 17"),
    )
    .await;
    let report = log.verify().await.unwrap();
    assert_eq!(
        kinds_at(&report),
        vec![(17, ProblemKind::Edited)],
        "{report:#?}"
    );
}

async fn edited_column(p: &Place) {
    let log = log_of(p, 20).await;
    // Hiding an end from open_begins by editing only the copied column.
    exec(
        log.store(),
        "UPDATE audit_log SET kind = 'refused' WHERE seq = 5",
    )
    .await;
    let report = log.verify().await.unwrap();
    assert_eq!(
        kinds_at(&report),
        vec![(5, ProblemKind::Edited)],
        "{report:#?}"
    );
    assert!(report.problems[0].detail.contains("kind"));
}

async fn deleted_middle(p: &Place) {
    let log = log_of(p, 40).await;
    exec(log.store(), "DELETE FROM audit_log WHERE seq = 23").await;
    let report = log.verify().await.unwrap();
    assert_eq!(report.records, 39);
    assert_eq!(
        kinds_at(&report),
        vec![(23, ProblemKind::Deleted)],
        "{report:#?}"
    );

    exec(
        log.store(),
        "DELETE FROM audit_log WHERE seq BETWEEN 30 AND 32",
    )
    .await;
    let report = log.verify().await.unwrap();
    assert_eq!(
        kinds_at(&report),
        vec![(23, ProblemKind::Deleted), (30, ProblemKind::Deleted)],
        "{report:#?}"
    );
    assert!(report.problems[1].detail.contains("30..32"));
}

async fn deleted_and_renumbered(p: &Place) {
    let log = log_of(p, 30).await;
    // Delete 12 and shift everything after it down to close the gap.
    exec(log.store(), "DELETE FROM audit_log WHERE seq = 12").await;
    for s in 13..=30 {
        exec(
            log.store(),
            &format!("UPDATE audit_log SET seq = {} WHERE seq = {s}", s - 1),
        )
        .await;
    }
    let report = log.verify().await.unwrap();
    let kinds = kinds_at(&report);
    assert_eq!(kinds[0], (12, ProblemKind::Deleted), "{report:#?}");
    assert_eq!(kinds[1], (13, ProblemKind::Reordered), "{report:#?}");
    assert!(report.problems[1].detail.contains("13..29"), "{report:#?}");
    // The checkpoint at 30 is now beyond the end.
    assert!(kinds.contains(&(30, ProblemKind::Truncated)), "{report:#?}");
}

async fn swapped(p: &Place) {
    let log = log_of(p, 40).await;
    // Swap records 10 and 11 (move 10 out of the way, 11 down, 10 up).
    exec(
        log.store(),
        "UPDATE audit_log SET seq = 1000 WHERE seq = 10",
    )
    .await;
    exec(log.store(), "UPDATE audit_log SET seq = 10 WHERE seq = 11").await;
    exec(
        log.store(),
        "UPDATE audit_log SET seq = 11 WHERE seq = 1000",
    )
    .await;
    let report = log.verify().await.unwrap();
    assert_eq!(
        kinds_at(&report),
        vec![(10, ProblemKind::Reordered), (11, ProblemKind::Reordered)],
        "{report:#?}"
    );
    assert!(report.problems[0].detail.contains("seq 11"));
    assert!(report.problems[1].detail.contains("seq 10"));
}

async fn truncated_tail(p: &Place) {
    let log = log_of(p, 50).await;
    // The chain that is left is perfectly valid; only the checkpoint shows the loss.
    exec(log.store(), "DELETE FROM audit_log WHERE seq > 44").await;
    let report = log.verify().await.unwrap();
    assert_eq!(report.records, 44);
    assert_eq!(
        kinds_at(&report),
        vec![(45, ProblemKind::Truncated)],
        "{report:#?}"
    );
    assert!(report.problems[0].detail.contains("45..50"));
}

async fn truncated_tail_periodic_checkpoint(p: &Place) {
    // No explicit checkpoint: the one signed after every 100 appends catches it.
    let log = p.open().await;
    fill(&log, 130).await;
    assert_eq!(log.latest_checkpoint().map(|c| c.seq), Some(100));
    let on_disk: steward_audit::Checkpoint = serde_json::from_str(
        &std::fs::read_to_string(log.checkpoint_dir().join("checkpoint.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(on_disk.seq, 100);
    exec(log.store(), "DELETE FROM audit_log WHERE seq > 90").await;
    let report = log.verify().await.unwrap();
    assert_eq!(
        kinds_at(&report),
        vec![(91, ProblemKind::Truncated)],
        "{report:#?}"
    );
}

async fn rewritten_chain(p: &Place) {
    let log = log_of(p, 30).await;
    // Rewrite record 8 and re-hash everything after it: the chain is self-consistent again.
    let records = log.records(1, 100).await.unwrap();
    let mut prev = records[6].hash.clone();
    for r in &records[7..] {
        let mut e = r.entry.clone();
        if r.seq == 8 {
            e.tool = Some("tenant_destroy".into());
        }
        let json = steward_audit::chain::canonical_json(&e).unwrap();
        let hash = record_hash(r.seq, &prev, &json);
        exec(
            log.store(),
            &format!(
                "UPDATE audit_log SET entry = '{}', prev_hash = '{prev}', hash = '{hash}' WHERE seq = {}",
                json.replace('\'', "''"),
                r.seq
            ),
        )
        .await;
        prev = hash;
    }
    let report = log.verify().await.unwrap();
    assert_eq!(
        kinds_at(&report),
        vec![(30, ProblemKind::Rewritten)],
        "{report:#?}"
    );
}

async fn forged_checkpoint(p: &Place) {
    let log = log_of(p, 10).await;
    let path = log.checkpoint_dir().join("checkpoint.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"seq\":10", "\"seq\":5")).unwrap();
    let report = log.verify().await.unwrap();
    assert!(report
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::Checkpoint && p.detail.contains("signature")));
}

async fn missing_checkpoint(p: &Place) {
    let log = log_of(p, 10).await;
    let latest = log.checkpoint_dir().join("checkpoint.json");
    drop(log);
    // Deleting the tail and the checkpoint together is still caught: the history remains.
    std::fs::remove_file(latest).unwrap();
    let log = p.open().await;
    exec(log.store(), "DELETE FROM audit_log WHERE seq > 5").await;
    let report = log.verify().await.unwrap();
    assert!(!report.ok);
    assert!(report
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::Checkpoint));
    // The history file still knows seq 10.
    assert!(report
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::Truncated));
}

async fn separator_injected(p: &Place) {
    // The control characters verify's page format uses, smuggled into a value: the page
    // falls back to row-by-row reading and the edit is still pinned down.
    let log = log_of(p, 30).await;
    let chr = match p.backend {
        Backend::Sqlite => "char",
        Backend::Postgres => "chr",
    };
    exec(
        log.store(),
        &format!(
            "UPDATE audit_log SET entry = entry || {chr}(30) || '5' || {chr}(31) WHERE seq = 12"
        ),
    )
    .await;
    let report = log.verify().await.unwrap();
    assert_eq!(
        kinds_at(&report),
        vec![(12, ProblemKind::Edited)],
        "{report:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wrong_column_type() {
    // SQLite lets an integer column hold text; verify reports it instead of failing.
    common::scoped(Backend::Sqlite, async |p| {
        let log = log_of(p, 20).await;
        exec(
            log.store(),
            "UPDATE audit_log SET at_ms = 'yesterday' WHERE seq = 7",
        )
        .await;
        exec(
            log.store(),
            "UPDATE audit_log SET refers_to = 5.0 WHERE seq = 9",
        )
        .await;
        let report = log.verify().await.unwrap();
        assert_eq!(
            kinds_at(&report),
            vec![(7, ProblemKind::Edited), (9, ProblemKind::Edited)],
            "{report:#?}"
        );
    })
    .await;
}
